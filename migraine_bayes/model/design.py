"""From a panel to the model's design: transformed, standardised features with their variance.

Each model feature is a :class:`~.features.FeatureSpec` over one panel feature: a transform
(identity, the size of a *fall*, a hinge, an indicator) and a lag in days, or an interaction
of two (:mod:`.features` says which a panel gets). The panel gives
each cell as a Gaussian (the value, or its imputation mean and sd); transforms map these
moments exactly (rectified-normal and normal-tail formulas), so imputation uncertainty flows
into the model, where it is marginalised (:mod:`.builder`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from scipy import stats

from migraine_bayes.dims import DAY, FEATURE, INTERVENTION, PATIENT
from migraine_bayes.model.features import FeatureOptions, FeatureSpec, default_feature_specs
from migraine_bayes.state.derived import days_since_attack

NO_ATTACK_YET = 1.0e4  # days_since_attack before the first attack: refractory term vanishes
_RESIDUALISED = "physiological"  # adjusted for same-day triggers, see residualised_means

def transform_moments(spec: FeatureSpec, mean: np.ndarray, sd: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``transform(x)`` for ``x ~ Normal(mean, sd)`` (sd 0 = known)."""
    if spec.transform == "identity":
        return mean, sd**2
    safe = np.where(sd > 0, sd, 1.0)
    if spec.transform in ("fall", "above"):  # max(0, u) for u ~ N(±mean − threshold, sd²)
        u = (-mean if spec.transform == "fall" else mean) - spec.threshold
        a = u / safe
        m1 = u * stats.norm.cdf(a) + safe * stats.norm.pdf(a)
        m2 = (u**2 + safe**2) * stats.norm.cdf(a) + u * safe * stats.norm.pdf(a)
        m = np.where(sd > 0, m1, np.maximum(u, 0.0))
        v = np.where(sd > 0, np.clip(m2 - m1**2, 0.0, None), 0.0)
        return m, v
    if spec.transform == "at_least":
        q = np.where(sd > 0, stats.norm.sf((spec.threshold - mean) / safe),
                     (mean >= spec.threshold).astype(float))
        return q, q * (1 - q)
    raise ValueError(f"unknown transform {spec.transform!r}")


def residualised_means(panel: xr.Dataset) -> xr.DataArray:
    """The panel's imputed means, with physiological series residualised on triggers.

    Heart rate, HRV and the like respond to stress, sleep and alcohol as well as to an
    upcoming attack. Used as they are, a physiological feature partly re-measures the
    triggers, and the triggers' own coefficients bend to cancel that echo (biased sensitivities).
    Per patient, each physiological series is regressed (least squares, over its observed
    days) on the same-day trigger features and replaced by its residual plus its mean: the
    physiological signal the reported triggers do not explain.
    """
    out = panel["imputed"].copy()
    cats = panel["feature_category"].values
    names = panel[FEATURE].values
    triggers = [n for n, c in zip(names, cats, strict=True) if c == "trigger"]
    physio = [n for n, c in zip(names, cats, strict=True) if c == _RESIDUALISED]
    if not triggers or not physio:
        return out
    for pid in panel[PATIENT].values:
        p = panel.sel({PATIENT: pid})
        usable = [t for t in triggers if not bool(p["systematic_missing"].sel({FEATURE: t}))]
        x = p["imputed"].sel({FEATURE: usable}).values  # (T, J)
        span = p["in_diary"].values | p["future"].values
        design = np.column_stack([np.ones(span.sum()), np.nan_to_num(x[span])])
        for f in physio:
            if bool(p["systematic_missing"].sel({FEATURE: f})):
                continue
            y = p["imputed"].sel({FEATURE: f}).values[span]
            fit_rows = p["present"].sel({FEATURE: f}).values[span]
            if fit_rows.sum() <= design.shape[1] + 2:
                continue
            coef, *_ = np.linalg.lstsq(design[fit_rows], y[fit_rows], rcond=None)
            adjusted = y - design[:, 1:] @ coef[1:]
            values = out.sel({PATIENT: pid, FEATURE: f}).values.copy()
            values[span] = adjusted
            out.loc[{PATIENT: pid, FEATURE: f}] = values
    return out


@dataclass
class Design:
    """Model-ready arrays of a panel (dims: patient P, day T, feature K, intervention M).

    ``z_mean``/``z_var`` (P, T, K): standardised features and their variance (0 where known);
    ``exposure`` (P, T, M); ``days_since`` (P, T) days since the last day with the outcome
    (onset or headache day; large before any);
    ``y`` (P, T): the outcome, NaN where unknown; ``scaling``: feature → (cohort center,
    scale); ``centers``: patient → feature → the center used for that patient (continuous
    features are centred on the patient's own mean: their coefficients are within-patient
    effects, as in multilevel diary analyses, e.g. Holsteen et al. 2020).
    """

    patients: list[str]
    features: list[FeatureSpec]
    interventions: list[str]
    scaling: dict[str, tuple[float, float]]
    z_mean: np.ndarray
    z_var: np.ndarray
    exposure: np.ndarray
    days_since: np.ndarray
    y: np.ndarray
    centers: dict[str, dict[str, float]] = field(default_factory=dict)
    outcome: str = "onset"
    # feature → cells its scaling was computed from (known, not imputed): how a federation
    # weighs each site's scaling (:mod:`migraine_bayes.twin.federation`)
    observed: dict[str, int] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        """Model feature names, in order."""
        return [f.name for f in self.features]


def build_design(panel: xr.Dataset, outcome: str = "onset",
                 features: list[FeatureSpec] | None = None,
                 interventions: list[str] | None = None,
                 scaling: dict[str, tuple[float, float]] | None = None,
                 centers: dict[str, dict[str, float]] | None = None,
                 options: FeatureOptions | None = None) -> Design:
    """Turn a panel into a :class:`Design`.

    ``features``, ``interventions``, ``scaling`` and per-patient ``centers`` default to what
    this panel supports (with ``options``, :func:`default_feature_specs`); pass a fitted twin's
    own to score new data on the same scale. An interaction column is the probability that
    both parts' doses (as transformed, before centring) reach their ``levels`` — "short sleep
    *and* high stress" — from each part's Gaussian moments (1/0 where both are known), a 0/1
    feature centred on the cohort mean.
    """
    if outcome not in ("onset", "headache_day"):
        raise ValueError(f"outcome must be 'onset' or 'headache_day', got {outcome!r}")
    features = default_feature_specs(panel, options) if features is None else features
    if interventions is None:
        kinds = dict(zip(panel[INTERVENTION].values, panel["intervention_kind"].values,
                         strict=True))
        used = panel["exposure"].fillna(0).max((PATIENT, DAY)) > 0
        interventions = [str(n) for n in panel[INTERVENTION].values
                         if kinds[n] != "acute" and bool(used.sel({INTERVENTION: n}))]
    in_span = panel["in_diary"].values | panel["future"].values
    systematic = panel["systematic_missing"]
    n_pat, n_day = in_span.shape
    z_mean = np.zeros((n_pat, n_day, len(features)))
    z_var = np.zeros_like(z_mean)
    new_scaling = {}
    counts = {}
    patient_ids = [str(p) for p in panel[PATIENT].values]
    new_centers: dict[str, dict[str, float]] = {pid: {} for pid in patient_ids}
    means = residualised_means(panel)
    valid_of: dict[str, np.ndarray] = {}
    raw_of: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # transformed moments, for products
    by_name = {f.name: f for f in features}
    for k, spec in enumerate(features):
        if spec.transform == "product":  # both doses high: P(a high) P(b high)
            qa, qb = (_p_high(by_name[n], *raw_of[n], level)
                      for n, level in zip(spec.parts, spec.levels, strict=True))
            m = qa * qb
            v = m * (1.0 - m)
            valid = valid_of[spec.parts[0]] & valid_of[spec.parts[1]]
        elif spec.source in panel[FEATURE].values:
            mean = means.sel({FEATURE: spec.source}).values
            sd = panel["imputed_sd"].sel({FEATURE: spec.source}).values
            absent = systematic.sel({FEATURE: spec.source}).values
        else:  # a feature the fitted twin has and this panel lacks: absent for everyone
            mean = sd = np.full((n_pat, n_day), np.nan)
            absent = np.ones(n_pat, dtype=bool)
        if spec.transform != "product":
            m, v = transform_moments(spec, np.nan_to_num(mean), np.nan_to_num(sd))
            valid = in_span & ~np.isnan(mean) & ~absent[:, None]
        if spec.lag:
            m = _shift(m, spec.lag)
            v = _shift(v, spec.lag)
            valid = _shift(valid.astype(float), spec.lag).astype(bool)
        observed = valid & (v == 0)
        if scaling is not None and spec.name in scaling:
            center, scale = scaling[spec.name]
        else:
            center = float(m[observed].mean()) if observed.any() else 0.0
            scale = 1.0
        own = np.full(n_pat, center)  # 0/1 features: centred on the cohort's mean
        if not spec.binary:
            for i in range(n_pat):
                given = (centers or {}).get(patient_ids[i], {}).get(spec.name)
                if given is not None:
                    own[i] = given
                elif observed[i].sum() >= 2:
                    own[i] = m[i][observed[i]].mean()
            if scaling is None or spec.name not in scaling:
                dev = (m - own[:, None])[observed]
                scale = float(dev.std()) if dev.size > 1 and dev.std() > 0 else 1.0
        new_scaling[spec.name] = (center, scale)
        counts[spec.name] = int(observed.sum())
        valid_of[spec.name] = valid
        raw_of[spec.name] = (np.where(valid, m, 0.0), np.where(valid, v, 0.0))
        for i in range(n_pat):
            new_centers[patient_ids[i]][spec.name] = float(own[i])
        z_mean[:, :, k] = np.where(valid, (m - own[:, None]) / scale, 0.0)
        z_var[:, :, k] = np.where(valid, v / scale**2, 0.0)
    exposure = np.stack([panel["exposure"].sel({INTERVENTION: n}).fillna(0.0).values
                         if n in panel[INTERVENTION].values else np.zeros((n_pat, n_day))
                         for n in interventions], axis=-1) if interventions else np.zeros(
        (n_pat, n_day, 0))
    # days since the last day with the modelled outcome: the refractory dip after an onset, or
    # the persistence of headache days (its sign is learned), from the outcome itself
    ds = days_since_attack(np.where(in_span, np.nan_to_num(panel[outcome].values), np.nan))
    days_since = np.where(np.isnan(ds), NO_ATTACK_YET, ds)
    y = np.where(panel["in_diary"].values, panel[outcome].values, np.nan)
    return Design(
        patients=[str(p) for p in panel[PATIENT].values], features=list(features),
        interventions=list(interventions), scaling=new_scaling, z_mean=z_mean, z_var=z_var,
        exposure=exposure, days_since=days_since, y=y, centers=new_centers, outcome=outcome,
        observed=counts,
    )


def _p_high(spec: FeatureSpec, mean: np.ndarray, var: np.ndarray, level: float) -> np.ndarray:
    """P(dose ≥ level) of a feature's cells: a 0/1 feature's mean is that probability."""
    if spec.binary:
        return np.clip(mean, 0.0, 1.0) if level <= 1.0 else np.zeros_like(mean)
    sd = np.sqrt(var)
    return np.where(sd > 0, stats.norm.sf((level - mean) / np.where(sd > 0, sd, 1.0)),
                    (mean >= level).astype(float))


def _shift(x: np.ndarray, lag: int) -> np.ndarray:
    out = np.zeros_like(x)
    out[:, lag:] = x[:, :-lag]
    return out
