"""Generators of cohorts with known truth.

Diaries with wearable and environment streams (:mod:`.cohort`), attack courses
(:mod:`.course`) and study-shaped cohorts of short, staggered diaries (:mod:`.study`).
"""

from migraine_bayes.synthetic.cohort import SyntheticCohort, simulate_cohort

__all__ = ["SyntheticCohort", "simulate_cohort"]
