"""Patients a cohort twin has never seen: their parameters drawn from the population posterior.

A cohort twin's posterior holds, for every draw ``s``, the population parameters (``mu_alpha``,
``sigma_alpha``, ``mu_beta``, ``tau_beta`` ...). A new patient's parameters are drawn from the
population predictive, one per draw::

    alpha_new[s] = mu_alpha[s] + sigma_alpha[s] sqrt(1 + 1/P) eps_alpha[s]     (likewise beta,
                                                                             gamma, delta)
    beta_new[s] = mu_beta[s] + tau_beta[s] lambda~_new[s] eps[s]      (horseshoe deviations:
                  a new local scale lambda_new ~ HalfStudentT, regularised by the slab c²[s])
    gp_amplitude_new[s] ~ HalfNormal(hyper),   gp_coef_new[s] ~ Normal(0, 1)

A two-stage twin (:mod:`.two_stage`) holds each patient's own latent lengthscale and refractory
time constant: a new patient's are drawn lognormally around the fitted patients' draws.

(``sqrt(1 + 1/P)``: the patient offsets sum to zero over the P fitted patients, so ``mu`` is
their mean and the population mean lies ``sigma / sqrt(P)`` around it). Stored beside the
fitted patients' draws, these behave like any patient's posterior: a forecast from them is the
population predictive (wide), and the particle filter (:mod:`.filtering`), which weighs draws by
each new diary day, turns them into the patient's own posterior as days arrive.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from migraine_bayes.dims import CHAIN, DRAW, FEATURE, PATIENT
from migraine_bayes.model.features import LagStructure, is_interaction
from migraine_bayes.model.priors import Hyper

# patient parameter -> (population mean, population scale); the others are drawn from priors
POOLED = {"alpha": ("mu_alpha", "sigma_alpha"), "beta": ("mu_beta", "tau_beta"),
          "gamma": ("mu_gamma", "sigma_gamma"), "delta": ("mu_delta", "sigma_delta"),
          "beta_total": ("mu_effect", "tau_effect")}
# effects whose deviations may be sparse (horseshoe): their local-scale variable's suffix
SPARSE = {"beta": "beta", "beta_total": "effect"}
LOCAL_DF = Hyper().local_df
# shared by all patients in a full hierarchy, each patient's own in a two-stage twin
# (:mod:`migraine_bayes.twin.two_stage`): a new patient's drawn lognormally around the fitted ones'
PER_PATIENT = ("lengthscale", "tau_refractory")


def with_new_patients(posterior: xr.Dataset, patients: list[str], gp_amplitude_sd: float,
                      seed: int = 0) -> xr.Dataset:
    """``posterior`` with population-predictive draws for ``patients`` appended (module text).

    Parameters
    ----------
    posterior : xarray.Dataset
        A cohort (hierarchical) twin's posterior, dims ``chain, draw, patient, ...``.
    patients : list of str
        Ids not in ``posterior``.
    gp_amplitude_sd : float
        Scale of the HalfNormal prior of a patient's latent-state amplitude (not pooled).
    seed : int
        Seeds the draws; patient ``k`` of the list depends only on ``seed`` and its id.
    """
    clash = sorted(set(patients) & {str(p) for p in posterior[PATIENT].values})
    if clash:
        raise ValueError(f"patients {clash} are already in the posterior")
    if not patients:
        return posterior
    n_fit = posterior.sizes[PATIENT]
    inflate = np.sqrt(1.0 + 1.0 / max(n_fit, 1))
    from_effects = "beta_total" in posterior  # beta from effects (lag weights, interactions)
    parts = []
    for pid in patients:
        rng = np.random.default_rng([seed, *pid.encode("utf-8")])
        new = {}
        for name, var in posterior.data_vars.items():
            if PATIENT not in var.dims:
                continue
            if name == "beta" and from_effects:
                continue
            template = var.isel({PATIENT: 0})
            eps = rng.standard_normal(template.shape)
            sparse = SPARSE.get(name)
            if sparse is not None and f"lambda_{sparse}" in posterior:  # horseshoe deviations
                lam = np.abs(rng.standard_t(LOCAL_DF, template.shape))
                new[f"lambda_{sparse}"] = (template.dims, lam)
                mu, scale = (posterior[v] for v in POOLED[name])
                c2 = posterior[f"slab_{sparse}"]
                lam = xr.DataArray(lam, dims=template.dims)
                shrunk = np.sqrt(c2 * lam**2 / (c2 + scale**2 * lam**2))
                values = (mu + scale * shrunk * xr.DataArray(eps, dims=template.dims)
                          ).transpose(*template.dims).values
            elif name.startswith("lambda_"):
                continue  # drawn with its effect
            elif name in POOLED:
                mu, scale = (posterior[v] for v in POOLED[name])
                values = (mu + scale * inflate * xr.DataArray(eps, dims=template.dims)
                          ).transpose(*template.dims).values
            elif name in PER_PATIENT:  # a two-stage twin's own (module text)
                logs = np.log(var.values)
                values = np.exp(logs.mean() + logs.std() * eps)
            elif name == "lag_weight":  # a two-stage twin's own: their average
                values = var.mean(PATIENT).transpose(*template.dims).values
            elif name == "gp_amplitude":
                values = np.abs(eps) * gp_amplitude_sd
            elif name == "gp_coef":
                values = eps
            else:
                raise ValueError(f"no population predictive for {name!r}")
            new[name] = (template.dims, values)
        if from_effects:
            new["beta"] = _beta_from_effects(posterior, new["beta_total"][1])
        parts.append(xr.Dataset(new, coords={CHAIN: posterior[CHAIN], DRAW: posterior[DRAW]})
                     .expand_dims({PATIENT: [pid]}))
    added = xr.concat(parts, dim=PATIENT)
    patient_vars = [v for v in posterior.data_vars if PATIENT in posterior[v].dims]
    extended = xr.concat([posterior[patient_vars], added], dim=PATIENT, coords="minimal")
    for v in patient_vars:  # the posterior's own dim order
        extended[v] = extended[v].transpose(*posterior[v].dims)
    shared = posterior.drop_vars(patient_vars).drop_dims(PATIENT, errors="ignore")
    return xr.merge([shared, extended], compat="override", combine_attrs="override")


def _beta_from_effects(posterior: xr.Dataset, effect: np.ndarray
                       ) -> tuple[tuple[str, ...], np.ndarray]:
    """A new patient's ``beta`` from its drawn ``beta_total`` (chain, draw, effect).

    The population's lag weights spread each trigger's effect over its lags, and interaction
    columns take the population's ``beta_pair``, as in the model.
    """
    features = [str(f) for f in posterior[FEATURE].values]
    lags = LagStructure.of(features)
    pairs = np.array([is_interaction(f) for f in features], dtype=bool)
    main = np.flatnonzero(~pairs)
    column_effect = lags.column_effect[main]  # the posterior's effect dim is in the graph's order
    weight = np.ones((posterior.sizes[CHAIN], posterior.sizes[DRAW], len(main)))
    grouped = lags.trigger_index[main] >= 0
    if grouped.any():
        lag_weight = posterior["lag_weight"]
        if PATIENT in lag_weight.dims:  # a two-stage twin: patients' own, averaged
            lag_weight = lag_weight.mean(PATIENT)
        weight[..., grouped] = lag_weight.transpose(CHAIN, DRAW, ...).values[
            ..., lags.trigger_index[main][grouped], lags.lag_index[main][grouped]]
    values = effect[..., column_effect] * weight
    if pairs.any():  # interactions: the population's effect, the same for every patient
        values = np.concatenate(
            [values, posterior["beta_pair"].transpose(CHAIN, DRAW, ...).values], axis=-1)
    dims = posterior["beta"].isel({PATIENT: 0}).dims
    beta = xr.DataArray(values, dims=(CHAIN, DRAW, FEATURE))
    return dims, beta.transpose(*dims).values
