"""Counterfactual interventions: encode, simulate, compare, recommend.

A researcher asks the twin "what would happen to this patient over the next 30 days if …?":
:func:`parse_scenarios` / :func:`encode_intervention` check the question,
:func:`simulate` answers it for one scenario, :func:`compare` ranks several against the
no-intervention baseline on common random numbers, with recommendations that explain their
basis.
"""

from migraine_bayes.interventions.comparison import PatientComparison, compare, comparison_json
from migraine_bayes.interventions.encoding import (
           BASELINE,
           Intervention,
           Override,
           Scenario,
           encode_intervention,
           parse_scenarios,
)
from migraine_bayes.interventions.simulation import PatientSimulator, simulate
from migraine_bayes.model.catalogue import catalogue, medications

__all__ = ["BASELINE", "Intervention", "Override", "PatientComparison", "PatientSimulator",
           "Scenario", "catalogue", "compare", "comparison_json", "encode_intervention",
           "medications", "parse_scenarios", "simulate"]
