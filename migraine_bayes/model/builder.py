"""The PyMC model of the twin (docs/MODEL.md: equations, priors, variables).

For patient i on a day t with a known outcome::

    eta   = alpha_i + sum_k beta_ik z_itk + gamma_i exp(-(d_it - 1) / tau)
            + sum_m delta_im e_itm + f_i(t)
    v     = sum_k beta_ik^2 var(z_itk)              # imputation uncertainty of the features
    y_it  ~ Bernoulli(logit^-1(eta / sqrt(1 + pi v / 8)))

``d`` is days since the last day with the outcome (a refractory dip after an onset; for
headache days the persistence of a headache, with a prior centred on 0:
:meth:`.priors.Hyper.for_outcome`), ``e`` treatment exposure, ``f_i`` the latent
susceptibility (HSGP, :mod:`.hsgp`, with as many basis functions as the diary length needs).
The factor ``1/sqrt(1 + pi v / 8)`` integrates the logistic over Gaussian feature uncertainty
(probit approximation; MacKay 1992), so a day with imputed features has a flatter, honest
probability.

Two prior structures share the likelihood: ``hierarchical`` (alpha, beta, gamma, delta partially
pooled across patients, for a cohort) and fixed :class:`~.priors.PatientPrior` (patients
independent, e.g. one new patient against a saved population posterior).
Every model input is ``pm.Data``, so one compiled model serves every patient of the same shape.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from migraine_bayes.dims import (
    BASIS,
    EFFECT,
    FEATURE,
    INTERVENTION,
    LAG,
    OBS,
    PAIR,
    PATIENT,
    TRIGGER,
)
from migraine_bayes.model import hsgp
from migraine_bayes.model.design import Design
from migraine_bayes.model.features import LagStructure, is_interaction
from migraine_bayes.model.priors import Hyper, PatientPrior

LATENT_VARS = ("gp_coef",)
# patients' deviations from the population trigger effects: Gaussian, or sparse (a regularised
# horseshoe: most patients near the population, a few far from it — "this patient is
# insensitive to this trigger" — without the Gaussian's quadratic pull back to the mean)
DEVIATIONS = ("normal", "horseshoe")  # per-basis latent coefficients: not held to the ESS target


@dataclass
class ModelData:
    """Flattened arrays over the N (patient, day) pairs with a known outcome."""

    patients: list[str]
    features: list[str]
    interventions: list[str]
    patient_index: np.ndarray  # (N,) int
    day_index: np.ndarray  # (N,) int
    z: np.ndarray  # (N, K)
    z_var: np.ndarray  # (N, K)
    exposure: np.ndarray  # (N, M)
    days_since: np.ndarray  # (N,)
    phi: np.ndarray  # (N, B)
    sqrt_eigs: np.ndarray  # (B,)
    y: np.ndarray  # (N,) 0/1
    center: float
    half_width: float
    basis_offset: np.ndarray  # (B,) subtracted from the basis (latent mean 0 over the fit)
    outcome: str = "onset"  # selects the hyperpriors (:meth:`.priors.Hyper.for_outcome`)
    deviations: str = "normal"  # patients' trigger deviations: "normal" or "horseshoe"

    def as_data(self) -> dict[str, np.ndarray]:
        """The ``pm.Data`` values by name (for ``set_data`` / nutpie ``with_data``)."""
        return {"patient_index": self.patient_index, "z": self.z, "z_var": self.z_var,
                "exposure": self.exposure, "days_since": self.days_since, "phi": self.phi,
                "sqrt_eigs": self.sqrt_eigs, "y": self.y}

    def signature(self) -> tuple:
        """What fixes the compiled graph: shapes and names (not the number of days).

        Feature names are in it: they fix the lag structure and the posterior's coordinates.
        """
        return (len(self.patients), tuple(self.features), tuple(self.interventions),
                self.phi.shape[1], self.outcome, self.deviations)


def model_data(design: Design, domain: tuple[float, float, np.ndarray] | None = None,
               deviations: str = "normal") -> ModelData:
    """Flatten a design over its known days.

    ``domain`` = (center, half_width, basis_offset) of the HSGP; default: fitted to the
    design's own days (pass a fitted twin's to score new days on the same latent basis).
    ``deviations``: the cohort prior of patients' trigger deviations (:data:`DEVIATIONS`).
    """
    if deviations not in DEVIATIONS:
        raise ValueError(f"deviations must be one of {DEVIATIONS}, got {deviations!r}")
    known = ~np.isnan(design.y)
    p_idx, t_idx = np.nonzero(known)
    if domain is None:
        n_days = int(design.y.shape[1])
        center, half_width = hsgp.domain(n_days)
        offset = hsgp.basis_offset(n_days, center, half_width)
    else:
        center, half_width, offset = domain
    m = len(offset)
    return ModelData(
        patients=design.patients, features=design.feature_names,
        interventions=design.interventions, patient_index=p_idx.astype("int64"),
        day_index=t_idx.astype("int64"), z=design.z_mean[known], z_var=design.z_var[known],
        exposure=design.exposure[known], days_since=design.days_since[known],
        phi=hsgp.basis(t_idx, center, half_width, m) - offset,
        sqrt_eigs=hsgp.sqrt_eigenvalues(half_width, m), y=design.y[known].astype("int64"),
        center=center, half_width=half_width, basis_offset=np.asarray(offset),
        outcome=design.outcome, deviations=deviations,
    )


def build_model(data: ModelData, prior: PatientPrior | None = None,
                hyper: Hyper | None = None) -> pm.Model:
    """The twin's PyMC model: hierarchical when ``prior`` is None, else fixed patient priors."""
    hyper = hyper or Hyper.for_outcome(data.outcome)
    hyper = dataclasses.replace(hyper, deviations=data.deviations)
    n_basis = data.phi.shape[1]
    coords = {PATIENT: data.patients, FEATURE: data.features, INTERVENTION: data.interventions,
              BASIS: np.arange(n_basis), OBS: np.arange(len(data.y))}
    has_delta = len(data.interventions) > 0
    with pm.Model(coords=coords) as model:
        d = {name: pm.Data(name, value) for name, value in data.as_data().items()}
        if len(data.patients) == 1:  # one patient: broadcast its row (no gather, no scatter)
            def rows(x: pt.TensorVariable) -> pt.TensorVariable:
                return x[0][None]
        else:
            def rows(x: pt.TensorVariable) -> pt.TensorVariable:
                return x[d["patient_index"]]
        if prior is None:
            # patient offsets sum to zero over patients: mu is the cohort's mean patient, and
            # the ridge between mu and the offsets' mean (which stalls non-centred hierarchies
            # whose groups are well identified) is gone
            mu_alpha = pm.Normal("mu_alpha", *hyper.mu_alpha)
            sigma_alpha = pm.LogNormal("sigma_alpha", np.log(hyper.sigma_alpha[0]),
                                       hyper.sigma_alpha[1])
            alpha = pm.Deterministic("alpha", mu_alpha + sigma_alpha * _offsets("alpha_z", ()),
                                     dims=PATIENT)
            beta = _trigger_effects(model, data.features, hyper, None)
            mu_gamma = pm.Normal("mu_gamma", *hyper.mu_gamma)
            sigma_gamma = pm.LogNormal("sigma_gamma", np.log(hyper.sigma_gamma[0]),
                                       hyper.sigma_gamma[1])
            gamma = pm.Deterministic("gamma", mu_gamma + sigma_gamma * _offsets("gamma_z", ()),
                                     dims=PATIENT)
            if has_delta:
                mu_delta = pm.Normal("mu_delta", *hyper.mu_delta, dims=INTERVENTION)
                sigma_delta = pm.LogNormal("sigma_delta", np.log(hyper.sigma_delta[0]),
                                           hyper.sigma_delta[1])
                delta = pm.Deterministic(
                    "delta", mu_delta + sigma_delta * _offsets("delta_z", (INTERVENTION,)),
                    dims=(PATIENT, INTERVENTION))
            log_tau, log_ell, amp_sd = (hyper.log_tau_refractory, hyper.log_lengthscale,
                                        hyper.gp_amplitude)
        else:
            alpha = pm.Normal("alpha", *prior.alpha, dims=PATIENT)
            beta = _trigger_effects(model, data.features, hyper, prior)
            gamma = pm.Normal("gamma", *prior.gamma, dims=PATIENT)
            if has_delta:
                d_mu, d_sd = prior.delta_arrays(data.interventions)
                delta = pm.Normal("delta", d_mu, d_sd, dims=(PATIENT, INTERVENTION))
            log_tau, log_ell, amp_sd = (prior.log_tau_refractory, prior.log_lengthscale,
                                        prior.gp_amplitude)
        tau = pm.LogNormal("tau_refractory", *log_tau)
        lengthscale = pm.LogNormal("lengthscale", *log_ell)
        amplitude = pm.HalfNormal("gp_amplitude", amp_sd, dims=PATIENT)
        coef = pm.Normal("gp_coef", dims=(PATIENT, BASIS))
        weights = hsgp.sqrt_psd(amplitude[:, None], lengthscale, d["sqrt_eigs"][None, :],
                                xp=pt) * coef
        eta = (rows(alpha) + (rows(beta) * d["z"]).sum(-1)
               + rows(gamma) * pt.exp(-(d["days_since"] - 1.0) / tau)
               + (rows(weights) * d["phi"]).sum(-1))
        if has_delta:
            eta = eta + (rows(delta) * d["exposure"]).sum(-1)
        spread = (rows(beta) ** 2 * d["z_var"]).sum(-1)
        pm.Bernoulli("y_obs", logit_p=eta / pt.sqrt(1.0 + np.pi * spread / 8.0),
                     observed=d["y"], dims=OBS)
    return model


def _trigger_effects(model: pm.Model, features: list[str], hyper: Hyper,
                     prior: PatientPrior | None) -> pt.TensorVariable:
    """Patients' trigger coefficients ``beta`` (patient, feature).

    Plain features: per feature, partially pooled ``beta = mu_beta + tau_beta * offset``
    (``prior`` None) or a fixed normal prior; hinge columns of a learned dose–response
    (``<f>@over<knot>``) get tighter priors (:meth:`Hyper.column_priors`): linear is the
    default shape. With a distributed lag (:class:`~.features.LagStructure`) each trigger has one
    effect per patient and column, ``beta_total`` (over the ``effect`` dim: features that are
    not lagged copies), spread over its lags by weights ``lag_weight`` (a Dirichlet per trigger
    that favours the same day, shared by the model's patients), ``beta[i, t@lag k] =
    beta_total[i, t] lag_weight[t, k]``. Interaction columns (``<a>:<b>``, last) carry one
    population effect each, ``beta_pair`` (``pair`` dim), the same for every patient, under a
    regularised horseshoe (or a fixed prior). Whenever there are lags or interactions, a cohort
    model's ``mu_beta``/``tau_beta`` per feature are deterministic (population mean and scale
    of each column), so every later reader of ``beta`` sees one layout.
    """
    lags = LagStructure.of(features)
    pairs = np.array([is_interaction(f) for f in features], dtype=bool)
    if pairs.any() and not pairs[-int(pairs.sum()):].all():
        raise ValueError("interaction columns must come after every other feature")
    if not lags.triggers and not pairs.any():
        if prior is not None:
            return pm.Normal("beta", *prior.beta_arrays(features), dims=(PATIENT, FEATURE))
        mu_sd, tau_median = hyper.column_priors(features)
        mu_beta = pm.Normal("mu_beta", 0.0, mu_sd, dims=FEATURE)
        # between-patient scale per trigger: heterogeneity differs by trigger (a third of
        # women are insensitive to menses, most patients to weather); one shared scale
        # pulls every patient onto the population mean
        tau_beta = pm.LogNormal("tau_beta", np.log(tau_median), hyper.tau_beta[1],
                                dims=FEATURE)
        return pm.Deterministic("beta", mu_beta + _deviations("beta", tau_beta, FEATURE, hyper),
                                dims=(PATIENT, FEATURE))
    main = np.flatnonzero(~pairs)
    effects = [k for k in lags.effects if not pairs[k]]
    effect_names = [features[k] for k in effects]
    model.add_coords({EFFECT: effect_names})
    weight = np.ones(len(main))
    if lags.triggers:
        model.add_coords({TRIGGER: lags.triggers, LAG: lags.lags})
        if prior is None:
            conc = np.tile(hyper.lag_prior(len(lags.lags)), (len(lags.triggers), 1))
        else:
            conc = prior.lag_arrays(lags.triggers, hyper.lag_prior(len(lags.lags)))
        w = pm.Dirichlet("lag_weight", a=conc, dims=(TRIGGER, LAG))
        padded = pt.concatenate([w, pt.ones((1, len(lags.lags)))], axis=0)
        weight = padded[np.where(lags.trigger_index >= 0, lags.trigger_index,
                                 len(lags.triggers))[main], lags.lag_index[main]]
    column_effect = lags.column_effect[main]  # (K main,) index into EFFECT
    if prior is None:
        mu_sd, tau_median = hyper.column_priors(effect_names)
        mu = pm.Normal("mu_effect", 0.0, mu_sd, dims=EFFECT)
        tau = pm.LogNormal("tau_effect", np.log(tau_median), hyper.tau_beta[1], dims=EFFECT)
        total = pm.Deterministic("beta_total", mu + _deviations("effect", tau, EFFECT, hyper),
                                 dims=(PATIENT, EFFECT))
        mu_columns, tau_columns = mu[column_effect] * weight, tau[column_effect] * weight
    else:
        total = pm.Normal("beta_total", *prior.beta_arrays(effect_names),
                          dims=(PATIENT, EFFECT))
    beta = total[:, column_effect] * weight
    if pairs.any():
        pair_names = [f for f, is_pair in zip(features, pairs, strict=True) if is_pair]
        model.add_coords({PAIR: pair_names})
        pair = (_pair_effects(hyper) if prior is None
                else pm.Normal("beta_pair", *prior.beta_arrays(pair_names), dims=PAIR))
        beta = pt.concatenate([beta, pt.ones((len(model.coords[PATIENT]), 1)) * pair[None, :]],
                              axis=1)
        if prior is None:
            mu_columns = pt.concatenate([mu_columns, pair])
            tau_columns = pt.concatenate([tau_columns, pt.zeros(len(pair_names))])
    if prior is None:
        pm.Deterministic("mu_beta", mu_columns, dims=FEATURE)
        pm.Deterministic("tau_beta", tau_columns, dims=FEATURE)
    return pm.Deterministic("beta", beta, dims=(PATIENT, FEATURE))


def _pair_effects(hyper: Hyper) -> pt.TensorVariable:
    """Interaction effects (pair,) under a regularised horseshoe (Piironen & Vehtari 2017).

    ``beta_pair = tau_pair lambda~ z``: global scale ``tau_pair ~ HalfStudentT(local_df,
    pair_global)``, local scales ``lambda_pair ~ HalfStudentT(local_df)`` regularised by a slab
    ``slab_pair`` = c² (InverseGamma(2, 2 slab_scale²)): ``lambda~² = c² lambda² / (c² + tau²
    lambda²)``.
    """
    tau = pm.HalfStudentT("tau_pair", nu=hyper.local_df, sigma=hyper.pair_global)
    lam = pm.HalfStudentT("lambda_pair", nu=hyper.local_df, dims=PAIR)
    shrunk = _regularised(lam, tau, pm.InverseGamma("slab_pair", 2.0,
                                                     2.0 * hyper.slab_scale**2))
    return pm.Deterministic("beta_pair", tau * shrunk * pm.Normal("pair_z", dims=PAIR),
                            dims=PAIR)


def _deviations(prefix: str, tau: pt.TensorVariable, dim: str, hyper: Hyper
                ) -> pt.TensorVariable:
    """Patients' deviations (patient, dim) from population effects with scale ``tau`` (dim,).

    ``normal``: ``tau * offset`` with offsets summing to zero over patients. ``horseshoe``
    (Piironen & Vehtari 2017): ``tau * lambda~ * z`` with local scales ``lambda_<prefix> ~
    HalfStudentT(local_df)`` per patient and effect, regularised by a slab
    (``slab_<prefix>`` = c², InverseGamma(2, 2 slab_scale²)): ``lambda~² = c² lambda² / (c² +
    tau² lambda²)``; the population effect is then the typical patient, not the mean.
    """
    if hyper.deviations == "normal":
        return tau * _offsets(f"{prefix}_z", (dim,))
    lam = pm.HalfStudentT(f"lambda_{prefix}", nu=hyper.local_df, dims=(PATIENT, dim))
    shrunk = _regularised(lam, tau, pm.InverseGamma(f"slab_{prefix}", 2.0,
                                                     2.0 * hyper.slab_scale**2))
    return tau * shrunk * pm.Normal(f"{prefix}_z", dims=(PATIENT, dim))


def _regularised(lam: pt.TensorVariable, tau: pt.TensorVariable, c2: pt.TensorVariable
                 ) -> pt.TensorVariable:
    """A regularised horseshoe's local scale ``lambda~ = sqrt(c² λ² / (c² + τ² λ²))``."""
    return pt.sqrt(c2 * lam**2 / (c2 + tau**2 * lam**2))


def _offsets(name: str, other_dims: tuple[str, ...]) -> pt.TensorVariable:
    """Standardised patient offsets summing to zero over patients, shape (patient, *other).

    ``ZeroSumNormal`` constrains its last axis, so the patient axis is put last and moved back.
    With one patient the offset is 0 (the cohort mean is that patient).
    """
    z = pm.ZeroSumNormal(name, dims=(*other_dims, PATIENT))
    return z.T if other_dims else z
