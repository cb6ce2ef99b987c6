"""The model of the twin: the PyMC graph and its one numpy likelihood.

Feature design (:mod:`.features`, :mod:`.design`), the HSGP latent state (:mod:`.hsgp`), priors
(:mod:`.priors`, the published drug priors in :mod:`.catalogue`), the configuration
(:mod:`.spec`), the graph (:mod:`.builder`), the numpy likelihood kernel that every caller
outside the graph uses (:mod:`.kernel`), sampling with its checks (:mod:`.inference`) and a new
patient's draws from the population (:mod:`.population`).
"""

from migraine_bayes.model.builder import LATENT_VARS, ModelData, build_model, model_data
from migraine_bayes.model.design import Design, build_design
from migraine_bayes.model.features import FeatureOptions, FeatureSpec, default_feature_specs
from migraine_bayes.model.priors import Hyper, PatientPrior
from migraine_bayes.model.spec import ModelSpec

__all__ = ["LATENT_VARS", "Design", "FeatureOptions", "FeatureSpec", "Hyper", "ModelData",
           "ModelSpec", "PatientPrior",
           "build_design", "build_model", "default_feature_specs", "model_data"]
