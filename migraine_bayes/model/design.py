"""From a panel to the model's design: transformed, standardised features with their variance.

Each model feature is a :class:`FeatureSpec` over one panel feature: a transform (identity, the
size of a *fall*, or an indicator of reaching a threshold) and a lag in days. The panel gives
each cell as a Gaussian (the value, or its imputation mean and sd); transforms map these
moments exactly (rectified-normal and normal-tail formulas), so imputation uncertainty flows
into the model, where it is marginalised (:mod:`.builder`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import xarray as xr
from scipy import stats

from ..dims import DAY, FEATURE, INTERVENTION, PATIENT
from ..state.derived import days_since_attack

NO_ATTACK_YET = 1.0e4  # days_since_attack before the first attack: refractory term vanishes


@dataclass(frozen=True)
class FeatureSpec:
    """One model feature.

    Attributes
    ----------
    name : str
        Model feature name, ``<part>.<name>``; lagged ones end in ``@lag<k>``.
    source : str
        Panel feature it is computed from.
    transform : str
        ``identity``; ``fall`` = ``max(0, -x)`` (e.g. hPa of pressure drop); ``at_least`` =
        indicator ``x ≥ threshold``.
    lag : int
        Days of lag (1 = yesterday's value).
    threshold : float
        Threshold of ``at_least``.
    binary : bool
        0/1 feature: centred but not scaled, so its coefficient is the log odds ratio of
        presence.
    """

    name: str
    source: str
    transform: str = "identity"
    lag: int = 0
    threshold: float = 0.0
    binary: bool = False

    def to_dict(self) -> dict:
        """Plain dict for ``twin.json``."""
        return asdict(self)


# Transforms grounded in the literature (docs/REFERENCES.md): attacks follow pressure *falls*
# (Kimoto 2011, Okuma 2015); heavy drinking (≥ 5 drinks), not moderate intake, raises risk
# (Vives-Mestres 2022). Physiology and premonitory symptoms enter with a one-day lag: on the
# onset day they are consequences of the attack, the day before they are its prodrome
# (Giffin 2003).
_SPECIAL = {
    "derived.pressure_change": FeatureSpec("derived.pressure_fall", "derived.pressure_change",
                                           "fall"),
    "trigger.alcohol": FeatureSpec("trigger.alcohol_5plus", "trigger.alcohol", "at_least",
                                   threshold=5.0, binary=True),
}
_LAGGED_CATEGORIES = ("physiological", "symptom")
_RESIDUALISED = "physiological"  # adjusted for same-day triggers, see residualised_means
_NOT_FEATURES = ("derived.days_since_attack", "derived.cycle_day")
# features that may act on later days (``lags``): what a patient does or goes through
_LAGGABLE_CATEGORIES = ("trigger", "derived")
_NOT_LAGGABLE = ("derived.yesterday_unrecorded",)  # already about the day before


def default_feature_specs(panel: xr.Dataset, lags: tuple[int, ...] = ()) -> list[FeatureSpec]:
    """Model features for a panel: every panel feature any patient has, transformed/lagged.

    ``lags``: extra lags (days, e.g. ``(1, 2)``) at which every trigger and derived feature
    may also act — a distributed lag: each lagged copy ``<name>@lag<k>`` has its own
    coefficient, pooled across patients and shrunk to 0 like every coefficient, so the
    sensitivity table shows at which lag an effect sits.
    """
    specs = []
    usable = ~panel["systematic_missing"].all(PATIENT)
    for name, cat, unit, ok in zip(panel[FEATURE].values, panel["feature_category"].values,
                                   panel["feature_unit"].values, usable.values, strict=True):
        name = str(name)
        if name in _NOT_FEATURES or not ok:
            continue
        if name in _SPECIAL:
            specs.append(_SPECIAL[name])
        elif cat in _LAGGED_CATEGORIES:
            specs.append(FeatureSpec(f"{name}@lag1", name, lag=1, binary=unit == "0/1"))
        else:
            specs.append(FeatureSpec(name, name, binary=unit == "0/1"))
    extra = []
    for spec in specs:
        cat = str(panel["feature_category"].sel({FEATURE: spec.source}).item())
        if spec.lag or cat not in _LAGGABLE_CATEGORIES or spec.source in _NOT_LAGGABLE:
            continue
        extra += [FeatureSpec(f"{spec.name}@lag{k}", spec.source, spec.transform, k,
                              spec.threshold, spec.binary) for k in lags if k > 0]
    return specs + extra


@dataclass(frozen=True)
class LagStructure:
    """Which model features are lagged copies of one trigger (a distributed lag).

    ``triggers``: base features that have copies ``<name>@lag<k>``; ``lags``: ``[0, k1, ...]``
    (the same for every trigger); per model feature, ``trigger_index`` (-1 for a feature
    without copies) and ``lag_index`` (position in ``lags``).
    """

    triggers: list[str]
    lags: list[int]
    trigger_index: np.ndarray  # (K,) int
    lag_index: np.ndarray  # (K,) int

    @classmethod
    def of(cls, features: list[str]) -> LagStructure:
        """Read the structure from model feature names (see :func:`default_feature_specs`)."""
        names = set(features)
        copies: dict[str, dict[int, int]] = {}
        for k, name in enumerate(features):
            base, sep, lag = name.rpartition("@lag")
            if sep and base in names:
                copies.setdefault(base, {0: features.index(base)})[int(lag)] = k
        triggers = [f for f in features if f in copies]
        lag_sets = {tuple(sorted(copies[t])) for t in triggers}
        if len(lag_sets) > 1:
            raise ValueError(f"triggers are lagged at different days: {sorted(lag_sets)}")
        lags = list(lag_sets.pop()) if lag_sets else [0]
        t_idx = np.full(len(features), -1, dtype="int64")
        l_idx = np.zeros(len(features), dtype="int64")
        for j, t in enumerate(triggers):
            for pos, lag in enumerate(lags):
                t_idx[copies[t][lag]], l_idx[copies[t][lag]] = j, pos
        return cls(triggers, lags, t_idx, l_idx)

    @property
    def base_index(self) -> np.ndarray:
        """(K,) per model feature, the index of its lag-0 column (itself if it has no copies)."""
        base = np.arange(len(self.trigger_index))
        for k in np.nonzero(self.trigger_index >= 0)[0]:
            base[k] = np.nonzero((self.trigger_index == self.trigger_index[k])
                                 & (self.lag_index == 0))[0][0]
        return base

    @property
    def effects(self) -> np.ndarray:
        """Indices of the columns that carry an effect of their own (not lagged copies)."""
        return np.nonzero(self.base_index == np.arange(len(self.base_index)))[0]

    @property
    def column_effect(self) -> np.ndarray:
        """(K,) per model feature, the position of its effect among :attr:`effects`."""
        return np.searchsorted(self.effects, self.base_index)


def transform_moments(spec: FeatureSpec, mean: np.ndarray, sd: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``transform(x)`` for ``x ~ Normal(mean, sd)`` (sd 0 = known)."""
    if spec.transform == "identity":
        return mean, sd**2
    safe = np.where(sd > 0, sd, 1.0)
    if spec.transform == "fall":
        u = -mean
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

    @property
    def feature_names(self) -> list[str]:
        """Model feature names, in order."""
        return [f.name for f in self.features]


def build_design(panel: xr.Dataset, outcome: str = "onset",
                 features: list[FeatureSpec] | None = None,
                 interventions: list[str] | None = None,
                 scaling: dict[str, tuple[float, float]] | None = None,
                 centers: dict[str, dict[str, float]] | None = None,
                 lags: tuple[int, ...] = ()) -> Design:
    """Turn a panel into a :class:`Design`.

    ``features``, ``interventions``, ``scaling`` and per-patient ``centers`` default to what
    this panel supports (with ``lags``, :func:`default_feature_specs`); pass a fitted twin's
    own to score new data on the same scale.
    """
    if outcome not in ("onset", "headache_day"):
        raise ValueError(f"outcome must be 'onset' or 'headache_day', got {outcome!r}")
    features = default_feature_specs(panel, lags) if features is None else features
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
    patient_ids = [str(p) for p in panel[PATIENT].values]
    new_centers: dict[str, dict[str, float]] = {pid: {} for pid in patient_ids}
    means = residualised_means(panel)
    for k, spec in enumerate(features):
        if spec.source in panel[FEATURE].values:
            mean = means.sel({FEATURE: spec.source}).values
            sd = panel["imputed_sd"].sel({FEATURE: spec.source}).values
            absent = systematic.sel({FEATURE: spec.source}).values
        else:  # a feature the fitted twin has and this panel lacks: absent for everyone
            mean = sd = np.full((n_pat, n_day), np.nan)
            absent = np.ones(n_pat, dtype=bool)
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
    )


def _shift(x: np.ndarray, lag: int) -> np.ndarray:
    out = np.zeros_like(x)
    out[:, lag:] = x[:, :-lag]
    return out
