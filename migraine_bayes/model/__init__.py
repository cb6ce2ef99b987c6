"""PyMC model of the twin: feature design, HSGP latent state, priors and the model builder."""

from .builder import LATENT_VARS, ModelData, build_model, model_data
from .design import Design, build_design
from .features import FeatureOptions, FeatureSpec, default_feature_specs
from .priors import Hyper, PatientPrior
from .spec import ModelSpec

__all__ = ["LATENT_VARS", "Design", "FeatureOptions", "FeatureSpec", "Hyper", "ModelData",
           "ModelSpec", "PatientPrior",
           "build_design", "build_model", "default_feature_specs", "model_data"]
