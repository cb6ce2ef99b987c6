"""Which model features a panel gets: their specs, the opt-in learned structures, the lag map.

A model feature (:class:`FeatureSpec`) is one panel feature transformed (identity, the size of
a *fall*, a hinge beyond a knot, an indicator) and lagged, or an interaction of two. The
defaults follow the literature (:func:`default_feature_specs`); :class:`FeatureOptions` adds a
distributed lag, learned dose–responses and interactions, and :class:`LagStructure` reads
which columns are lagged copies of one trigger. :mod:`.design` turns the specs into arrays.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from migraine_bayes.dims import FEATURE, PATIENT

if TYPE_CHECKING:  # xarray only in annotations: importing the spec stays light
    import xarray as xr


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
        ``identity``; ``fall`` = ``max(0, -x - threshold)`` (e.g. hPa of pressure drop beyond
        ``threshold``); ``above`` = ``max(0, x - threshold)`` (a hinge: the dose beyond a
        knot); ``at_least`` = indicator ``x ≥ threshold``; ``product`` = an interaction of two
        model features: the indicator that both doses (as transformed) are high, ``a ≥
        levels[0]`` and ``b ≥ levels[1]`` (``source`` is ``"<feature a>*<feature b>"``, both
        earlier in the feature list).
    lag : int
        Days of lag (1 = yesterday's value).
    threshold : float
        Threshold of ``at_least``, knot of ``above`` and ``fall``.
    binary : bool
        0/1 feature: centred but not scaled, so its coefficient is the log odds ratio of
        presence.
    levels : tuple of float
        An interaction's two "high" doses (empty otherwise).
    """

    name: str
    source: str
    transform: str = "identity"
    lag: int = 0
    threshold: float = 0.0
    binary: bool = False
    levels: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", tuple(float(v) for v in self.levels))

    def to_dict(self) -> dict:
        """Plain dict for ``twin.json`` (no ``levels`` key outside interactions)."""
        d = asdict(self)
        if not self.levels:
            del d["levels"]
        else:
            d["levels"] = list(self.levels)
        return d

    @property
    def parts(self) -> tuple[str, ...]:
        """The two model features an interaction (``product``) multiplies; ``()`` otherwise."""
        return tuple(self.source.split(PRODUCT)) if self.transform == "product" else ()


PRODUCT = "*"  # joins the two model features of an interaction's source
INTERACTION = ":"  # joins them in an interaction's name, ``<feature a>:<feature b>``
KNOT = "@over"  # a hinge column's name: ``<feature>@over<knot>``
KNOT_QUANTILES = (0.25, 0.5, 0.75)  # of a graded trigger's observed doses above its minimum
SHAPES = ("fixed", "learned")


@dataclass(frozen=True)
class FeatureOptions:
    """Which model features a panel gets beyond one column per feature (all opt-in).

    Attributes
    ----------
    lags : tuple of int
        Extra days (e.g. ``(1, 2)``) at which every trigger and derived feature may also act: a
        distributed lag (:class:`LagStructure`).
    shapes : str
        ``fixed``: the literature's transforms (alcohol as ≥ 5 drinks, the others linear).
        ``learned``: every graded trigger enters linearly *plus* hinges ``max(0, x − knot)`` at
        the quartiles of its observed doses above its minimum (:data:`KNOT_QUANTILES`): a
        piecewise-linear dose–response whose slope changes are shrunk towards 0 (linear) and
        pooled across patients, so a threshold or a saturation is learned, not assumed.
    interactions : bool
        Add, for every pair of same-day triggers, the indicator that both are high on the
        same day (``<a>:<b>``; each above the upper quartile of its doses above the minimum, a
        0/1 trigger present): population effects under a regularised horseshoe, so only pairs
        the data support move away from 0.
    overuse : bool
        Add the days of acute medication in the 30 days before (``derived.acute_use_days``,
        medication overuse) when the diaries record acute medication. Opt-in: the count
        follows the patient's recent attack frequency, so it competes with the latent state
        for the same persistence, and with it on by default the `monitor` study's stationary
        cohort raised false alarms (3 of 8 patients against none without it).
    """

    lags: tuple[int, ...] = ()
    shapes: str = "fixed"
    interactions: bool = False
    overuse: bool = False

    def __post_init__(self) -> None:
        if self.shapes not in SHAPES:
            raise ValueError(f"shapes must be one of {SHAPES}, got {self.shapes!r}")
        object.__setattr__(self, "lags", tuple(int(k) for k in self.lags))

    @classmethod
    def of(cls, features: list[FeatureSpec]) -> FeatureOptions:
        """The options a fitted twin's feature list was built with (what a retraining reuses)."""
        return cls(lags=tuple(LagStructure.of([f.name for f in features]).lags[1:]),
                   shapes="learned" if any(KNOT in f.name for f in features) else "fixed",
                   interactions=any(f.transform == "product" for f in features),
                   overuse=any(f.source == OVERUSE for f in features))

    def to_dict(self) -> dict:
        """Plain dict (JSON)."""
        return {"lags": list(self.lags), "shapes": self.shapes,
                "interactions": self.interactions, "overuse": self.overuse}


def is_interaction(name: str) -> bool:
    """Whether a model feature name is an interaction column ``<a>:<b>``."""
    return INTERACTION in name


def is_hinge(name: str) -> bool:
    """Whether a model feature name is a hinge (slope change) column ``<f>@over<knot>``."""
    return KNOT in name


def panel_sources(spec: FeatureSpec, features: list[FeatureSpec]) -> set[str]:
    """The panel features a model feature is computed from (both parts of an interaction)."""
    if spec.transform != "product":
        return {spec.source}
    by_name = {f.name: f for f in features}
    return set().union(*(panel_sources(by_name[n], features) for n in spec.parts))


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
_NOT_FEATURES = ("derived.days_since_attack", "derived.cycle_day")
# features that may act on later days (``lags``): what a patient does or goes through
_LAGGABLE_CATEGORIES = ("trigger", "derived")
# already about the days before
OVERUSE = "derived.acute_use_days"  # a feature only with FeatureOptions.overuse
_NOT_LAGGABLE = ("derived.yesterday_unrecorded", OVERUSE)


def default_feature_specs(panel: xr.Dataset, options: FeatureOptions | None = None
                          ) -> list[FeatureSpec]:
    """Model features for a panel: every panel feature any patient has, transformed/lagged.

    ``options`` (:class:`FeatureOptions`): learned shapes add hinge columns
    ``<name>@over<knot>`` after the base features; extra lags add lagged copies
    ``<name>@lag<k>`` of every trigger and derived column (hinges included) — a distributed
    lag whose copies share their trigger's effect (:class:`LagStructure`); interactions add
    ``<a>:<b>`` columns, last.
    """
    options = options or FeatureOptions()
    specs = []
    usable = ~panel["systematic_missing"].all(PATIENT)
    for name, cat, unit, ok in zip(panel[FEATURE].values, panel["feature_category"].values,
                                   panel["feature_unit"].values, usable.values, strict=True):
        name = str(name)
        if name in _NOT_FEATURES or not ok or (name == OVERUSE and not options.overuse):
            continue
        if name == "trigger.alcohol" and options.shapes == "learned":
            specs.append(FeatureSpec(name, name))  # graded: its threshold is learned
        elif name in _SPECIAL:
            specs.append(_SPECIAL[name])
        elif cat in _LAGGED_CATEGORIES:
            specs.append(FeatureSpec(f"{name}@lag1", name, lag=1, binary=unit == "0/1"))
        else:
            specs.append(FeatureSpec(name, name, binary=unit == "0/1"))
    triggers = [s for s in specs if _laggable(panel, s)]  # no hinge yet
    if options.shapes == "learned":
        specs += [hinge for s in triggers if not s.binary for hinge in _hinges(panel, s)]
    extra = []
    for spec in specs:
        if not _laggable(panel, spec):
            continue
        extra += [FeatureSpec(f"{spec.name}@lag{k}", spec.source, spec.transform, k,
                              spec.threshold, spec.binary) for k in options.lags if k > 0]
    pairs = []
    if options.interactions:
        high = {s.name: _high_dose(panel, s) for s in triggers}
        pairs = [FeatureSpec(f"{a.name}{INTERACTION}{b.name}", f"{a.name}{PRODUCT}{b.name}",
                             "product", binary=True, levels=(high[a.name], high[b.name]))
                 for i, a in enumerate(triggers) for b in triggers[i + 1:]
                 if np.isfinite(high[a.name]) and np.isfinite(high[b.name])]
    return specs + extra + pairs


def _laggable(panel: xr.Dataset, spec: FeatureSpec) -> bool:
    """A same-day column of what a patient does or goes through (may be lagged or shaped)."""
    cat = str(panel["feature_category"].sel({FEATURE: spec.source}).item())
    return not spec.lag and cat in _LAGGABLE_CATEGORIES and spec.source not in _NOT_LAGGABLE


def _doses(panel: xr.Dataset, spec: FeatureSpec) -> np.ndarray:
    """A trigger's observed doses as transformed (a pressure *fall*), all patients and days."""
    x = panel["value"].sel({FEATURE: spec.source}).values
    x = x[~np.isnan(x)]
    if spec.transform == "fall":
        x = np.clip(-x - spec.threshold, 0.0, None)
    elif spec.transform == "at_least":
        x = (x >= spec.threshold).astype(float)
    return x


def _high_dose(panel: xr.Dataset, spec: FeatureSpec) -> float:
    """The dose from which a trigger counts as high in an interaction (NaN: never varies).

    0/1 triggers: present. Graded: the upper quartile of the doses above the minimum, rounded
    to two significant digits (as the hinge knots).
    """
    x = _doses(panel, spec)
    if spec.binary:
        return 0.5 if x.size and x.max() > x.min() else float("nan")
    above = x[x > x.min()] if x.size else x
    if above.size < 10:
        return float("nan")
    return float(f"{np.quantile(above, KNOT_QUANTILES[-1]):.2g}")


def _hinges(panel: xr.Dataset, spec: FeatureSpec) -> list[FeatureSpec]:
    """Hinge columns of a graded trigger at the quartiles of its doses above the minimum.

    Knots are on the feature's own scale after its transform (a pressure *fall* in hPa) and
    rounded to two significant digits; ties and knots at the minimum are dropped.
    """
    x = _doses(panel, spec)
    if x.size == 0:
        return []
    above = x[x > x.min()]
    if above.size < 10:
        return []
    knots = sorted({float(f"{q:.2g}") for q in np.quantile(above, KNOT_QUANTILES)})
    transform = "fall" if spec.transform == "fall" else "above"
    return [FeatureSpec(f"{spec.name}{KNOT}{k:g}", spec.source, transform, 0, k)
            for k in knots if k > x.min()]


@dataclass(frozen=True)
class LagStructure:
    """Which model features are lagged copies of one trigger (a distributed lag).

    ``triggers``: the triggers with copies ``<name>@lag<k>`` — a graded trigger's hinge columns
    (``<name>@over<knot>``) belong to it, so its whole dose–response moves between lags with
    one set of weights; ``lags``: ``[0, k1, ...]`` (the same for every trigger); per model
    feature, ``trigger_index`` (-1 for a feature without copies), ``lag_index`` (position in
    ``lags``) and ``base_index`` (the lag-0 column whose effect it carries; itself if none).
    """

    triggers: list[str]
    lags: list[int]
    trigger_index: np.ndarray  # (K,) int
    lag_index: np.ndarray  # (K,) int
    base_index: np.ndarray  # (K,) int

    @classmethod
    def of(cls, features: list[str]) -> LagStructure:
        """Read the structure from model feature names (see :func:`default_feature_specs`)."""
        names = set(features)
        copies: dict[str, dict[int, int]] = {}
        for k, name in enumerate(features):
            base, sep, lag = name.rpartition("@lag")
            if sep and base in names:
                copies.setdefault(base, {0: features.index(base)})[int(lag)] = k
        families = [f.split(KNOT)[0] for f in features]
        triggers = list(dict.fromkeys(families[k] for k, f in enumerate(features)
                                      if f in copies))
        lag_sets = {tuple(sorted(c)) for c in copies.values()}
        if len(lag_sets) > 1:
            raise ValueError(f"triggers are lagged at different days: {sorted(lag_sets)}")
        lags = list(lag_sets.pop()) if lag_sets else [0]
        t_idx = np.full(len(features), -1, dtype="int64")
        l_idx = np.zeros(len(features), dtype="int64")
        base = np.arange(len(features))
        for name, columns in copies.items():
            j = triggers.index(families[features.index(name)])
            for pos, lag in enumerate(lags):
                t_idx[columns[lag]], l_idx[columns[lag]] = j, pos
                base[columns[lag]] = columns[0]
        return cls(triggers, lags, t_idx, l_idx, base)

    @property
    def effects(self) -> np.ndarray:
        """Indices of the columns that carry an effect of their own (not lagged copies)."""
        return np.nonzero(self.base_index == np.arange(len(self.base_index)))[0]

    @property
    def column_effect(self) -> np.ndarray:
        """(K,) per model feature, the position of its effect among :attr:`effects`."""
        return np.searchsorted(self.effects, self.base_index)
