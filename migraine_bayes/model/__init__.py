"""The model of the twin: the PyMC graph and its one numpy likelihood.

Feature design (:mod:`.features`, :mod:`.design`), the HSGP latent state (:mod:`.hsgp`), priors
(:mod:`.priors`, the published drug priors in :mod:`.catalogue`), the configuration
(:mod:`.spec`), the graph (:mod:`.builder`), the numpy likelihood kernel that every caller
outside the graph uses (:mod:`.kernel`), sampling with its checks (:mod:`.inference`) and a new
patient's draws from the population (:mod:`.population`).

The names below are loaded on first use (PEP 562), so importing a light module of this package
(``model.spec``, ``model.kernel``) does not import PyMC: the CLI's ``--help`` and the service's
hot path never pay for it.
"""

from migraine_bayes.lazy import lazy_names

_HOME = {
    "LATENT_VARS": "builder", "ModelData": "builder", "build_model": "builder",
    "model_data": "builder", "Design": "design", "build_design": "design",
    "FeatureOptions": "features", "FeatureSpec": "features",
    "default_feature_specs": "features", "Hyper": "priors", "PatientPrior": "priors",
    "ModelSpec": "spec",
}

__all__ = ["LATENT_VARS", "Design", "FeatureOptions", "FeatureSpec", "Hyper", "ModelData",
           "ModelSpec", "PatientPrior",
           "build_design", "build_model", "default_feature_specs", "model_data"]

__getattr__ = lazy_names(__name__, _HOME, globals())
