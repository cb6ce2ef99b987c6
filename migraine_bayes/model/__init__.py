"""PyMC model of the twin: feature design, HSGP latent state, priors and the model builder."""

from migraine_bayes.model.builder import LATENT_VARS, ModelData, build_model, model_data
from migraine_bayes.model.design import Design, build_design
from migraine_bayes.model.features import FeatureOptions, FeatureSpec, default_feature_specs
from migraine_bayes.model.priors import Hyper, PatientPrior
from migraine_bayes.model.spec import ModelSpec

__all__ = ["LATENT_VARS", "Design", "FeatureOptions", "FeatureSpec", "Hyper", "ModelData",
           "ModelSpec", "PatientPrior",
           "build_design", "build_model", "default_feature_specs", "model_data"]
