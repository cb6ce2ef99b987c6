"""Trigger sensitivities of a twin: odds ratios, evidence, population effects, dose-response.

Coefficients are on the model's scale: per standard deviation of a continuous feature (the SD is
in ``twin.json``'s scaling, reported as ``unit_per_step``) or for presence of a 0/1 feature.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from migraine_bayes.dims import CHAIN, DRAW, FEATURE, LAG, PAIR, PATIENT, TRIGGER
from migraine_bayes.model import FeatureSpec
from migraine_bayes.model.features import KNOT, is_hinge, is_interaction, panel_sources
from migraine_bayes.model.labels import feature_label, natural_step
from migraine_bayes.twin.core import DigitalTwin

INTERVAL = (0.05, 0.95)
STRONG, MODERATE = 0.95, 0.80


def evidence_label(p_positive: float) -> str:
    """Words for P(effect > 0): how sure the twin is that a factor raises or lowers risk."""
    if p_positive >= STRONG:
        return "raises risk (strong evidence)"
    if p_positive >= MODERATE:
        return "raises risk (moderate evidence)"
    if p_positive <= 1 - STRONG:
        return "lowers risk (strong evidence)"
    if p_positive <= 1 - MODERATE:
        return "lowers risk (moderate evidence)"
    return "no clear effect"


def _rows(beta: np.ndarray, features: list[FeatureSpec], scaling: dict, prefix: dict
          ) -> list[dict]:
    rows = []
    for k, spec in enumerate(features):
        b = beta[:, k]
        lo, hi = np.quantile(b, INTERVAL)
        p_pos = float((b > 0).mean())
        sd = 1.0 if spec.binary else float(scaling[spec.name][1])
        step = None if spec.binary else natural_step(spec.name)
        per = b * (step[0] / sd) if step else b  # the same effect per natural unit
        n_lo, n_hi = np.quantile(per, INTERVAL)
        rows.append(prefix | {
            "feature": spec.name, "label": feature_label(spec.name), "source": spec.source,
            "lag": int(spec.lag),
            "step": "presence" if spec.binary else "+1 SD",
            "unit_per_step": sd,
            "odds_ratio": float(np.exp(np.median(b))), "or_low": float(np.exp(lo)),
            "or_high": float(np.exp(hi)), "log_or_mean": float(b.mean()),
            "log_or_sd": float(b.std()), "p_positive": p_pos,
            "evidence": evidence_label(p_pos), "kind": _kind(spec.name),
            "natural_step": step[1] if step else "presence",
            "or_natural": float(np.exp(np.median(per))), "or_natural_low": float(np.exp(n_lo)),
            "or_natural_high": float(np.exp(n_hi)),
        })
    return rows


def trigger_sensitivities(twin: DigitalTwin) -> pd.DataFrame:
    """One row per patient and feature.

    Columns: ``patient_id, feature, source`` (the panel feature), ``lag`` (days after the
    source's day at which the effect acts), ``step, unit_per_step, odds_ratio`` (posterior median),
    ``or_low, or_high`` (90% interval), ``log_or_mean, log_or_sd, p_positive`` (P(effect > 0)),
    ``evidence``, ``kind`` (``effect``, a learned shape's ``slope change`` or an
    ``interaction``), ``label`` (the human name, :mod:`migraine_bayes.model.labels`), the same
    effect per natural unit ``natural_step, or_natural, or_natural_low, or_natural_high`` (per
    hour of sleep, per 10 hPa ...; presence for a 0/1 feature) and ``coverage`` (share of the
    patient's diary days on which the feature's source was measured). A feature the patient
    never measured (a cohort twin's wearable feature for a patient without a wearable) carries
    only the population's effect: its ``evidence`` says so instead of claiming the patient's
    own.
    """
    spec = twin.spec  # parsed once, not per patient
    features, scaling = spec.feature_specs, spec.scaling_dict
    beta = twin.posterior.posterior["beta"]
    rows = []
    for pid in twin.patients:
        b = beta.sel({PATIENT: pid}).stack(s=(CHAIN, DRAW)).transpose("s", FEATURE).values
        cover = twin.record.coverage[pid]["feature_coverage"]
        for row, feature in zip(_rows(b, features, scaling, {"patient_id": pid}), features,
                                strict=True):
            row["coverage"] = min(float(cover.get(source, float("nan")))
                                  for source in panel_sources(feature, features))
            if row["coverage"] == 0:
                row["evidence"] = "no data for this patient: the population's effect"
            rows.append(row)
    return pd.DataFrame(rows)


def measured_effects(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of :func:`trigger_sensitivities` that are a patient's own evidence of an effect.

    A feature the patient never measured carries only the population's effect, and slope
    changes and interactions have tables of their own: both are left out.
    """
    return table[(table["coverage"] > 0) & (table["kind"] == "effect")]


def population_effects(twin: DigitalTwin) -> pd.DataFrame:
    """Population-level (mean patient) effects of a cohort twin: ``mu_beta`` as odds ratios."""
    if "mu_beta" not in twin.posterior.posterior:
        raise ValueError("population effects need a cohort (hierarchical) twin")
    spec = twin.spec
    mu = twin.posterior.posterior["mu_beta"].stack(s=(CHAIN, DRAW)).transpose("s", FEATURE)
    return pd.DataFrame(_rows(mu.values, spec.feature_specs, spec.scaling_dict,
                              {"patient_id": "population"}))


def lag_weights(twin: DigitalTwin) -> pd.DataFrame:
    """At which lag each trigger's effect sits (a twin fitted with extra lags, ``--lags``).

    One row per trigger and lag: ``trigger, lag`` (days after the trigger's day), ``weight``
    (posterior median share of the trigger's effect acting at that lag), ``weight_low,
    weight_high`` (90% interval), ``p_peak`` (posterior probability that this lag carries the
    largest share) and ``peak`` (the lag with the highest ``p_peak``). Empty for a twin
    without a distributed lag.
    """
    post = twin.posterior.posterior
    if "lag_weight" not in post:
        return pd.DataFrame(columns=["trigger", "lag", "weight", "weight_low", "weight_high",
                                     "p_peak", "peak"])
    w = post["lag_weight"].stack(s=(CHAIN, DRAW)).transpose("s", TRIGGER, LAG)
    values, lags = w.values, [int(k) for k in w[LAG].values]
    peak_share = np.stack([(values.argmax(-1) == j).mean(0) for j in range(len(lags))], -1)
    rows = []
    for t, trigger in enumerate(w[TRIGGER].values):
        lo, med, hi = np.quantile(values[:, t], (INTERVAL[0], 0.5, INTERVAL[1]), axis=0)
        peak = lags[int(peak_share[t].argmax())]
        rows += [{"trigger": str(trigger), "lag": lag, "weight": float(med[j]),
                  "weight_low": float(lo[j]), "weight_high": float(hi[j]),
                  "p_peak": float(peak_share[t, j]), "peak": peak}
                 for j, lag in enumerate(lags)]
    return pd.DataFrame(rows)


def dose_response(twin: DigitalTwin, patient: str | None, feature: str, points: int = 25
                  ) -> pd.DataFrame:
    """Odds ratio against the usual level across a graded feature's observed range.

    ``patient`` None: the population (a cohort twin's ``mu_beta``, reference the cohort's
    median). The curve sums every column of the feature: its linear term and, with learned
    shapes (``--shapes learned``), its hinges ``max(0, x − knot)``; with a distributed lag,
    each column's effect summed over its lags (the whole effect of a dose, whenever it acts).
    The grid spans the cohort's 1st–99th percentile (in the feature's own units, a pressure
    *fall* in hPa). ``attrs``: ``reference`` (the patient's median), ``raised_from`` (the
    lowest level above the reference where the 90% interval of the odds ratio lies entirely
    above 1, NaN when none) and ``threshold``: for a learned shape the half-effect dose with
    its interval, knee and slopes (:func:`threshold_analysis`), for a fixed shape
    ``raised_from``.
    """
    model = twin.spec
    specs = {f.name: f for f in model.feature_specs}
    spec = specs.get(feature)
    if spec is None or spec.binary or spec.transform == "product" or is_hinge(feature):
        raise ValueError(f"{feature!r} is not a graded feature of this twin; graded: "
                         f"{[n for n, s in specs.items() if _graded(s)]}")
    values = _doses(twin, spec)
    grid = _dose_grid(values, points)
    usual = float(np.nanmedian(values.values if patient is None
                               else values.sel({PATIENT: patient}).values))
    columns, draws = _shape_draws(twin, patient, feature)  # (C,), (S, C) per unit of dose
    log_or = draws @ (_basis(columns, grid) - _basis(columns, np.array([usual]))).T  # (S, G)
    lo, med, hi = np.quantile(log_or, (INTERVAL[0], 0.5, INTERVAL[1]), axis=0)
    out = pd.DataFrame({"value": grid, "odds_ratio": np.exp(med), "or_low": np.exp(lo),
                        "or_high": np.exp(hi)})
    raised = out[(out["value"] > usual) & (out["or_low"] > 1)]
    raised_from = float(raised["value"].iloc[0]) if len(raised) else float("nan")
    out.attrs = {"patient_id": patient or "population", "feature": feature,
                 "reference": usual, "raised_from": raised_from, "threshold": raised_from}
    out.attrs |= _threshold(columns, draws, _dose_grid(values))
    return out


def threshold_analysis(twin: DigitalTwin, patient: str | None, feature: str,
                       points: int = 200) -> dict:
    """Where a learned dose–response acts: its half-effect dose and its sharpest bend.

    Over the cohort's 1st–99th percentile of doses, per posterior draw, the curve's log odds
    ratio against the lowest dose, ``c(x)``, in the direction of the effect (the sign of the
    posterior median curve where it is largest). Returns

    - ``threshold``: the half-effect dose, the lowest dose where ``c`` reaches half its maximum
      (posterior median; draws without a rise are left out) — a step's location, a saturating
      curve's early rise, a linear curve's midpoint — with ``threshold_low``/``threshold_high``
      (90% interval) and ``p_rise`` (share of draws with a rise);
    - ``knee``: the knot whose hinge changes the slope most (posterior mode), ``p_knee`` (its
      probability), and ``slope_below``/``slope_above`` (posterior median slopes just below and
      above it, log-odds per unit of dose).

    Empty for a feature without hinges (a fixed shape).
    """
    spec = {f.name: f for f in twin.spec.feature_specs}[feature]
    columns, draws = _shape_draws(twin, patient, feature)
    return _threshold(columns, draws, _dose_grid(_doses(twin, spec), points))


def _threshold(columns: list[tuple[str, float]], draws: np.ndarray, grid: np.ndarray) -> dict:
    """:func:`threshold_analysis` of a curve's columns and draws (S, C) over a dose grid."""
    knots = np.array([c[1] for c in columns[1:]])
    if not knots.size:
        return {}
    curve = draws @ (_basis(columns, grid) - _basis(columns, grid[:1])).T  # (S, G)
    median = np.median(curve, axis=0)
    direction = np.sign(median[np.abs(median).argmax()]) or 1.0
    rise = direction * curve
    top = rise.max(axis=1)
    rising = top > 0
    first = np.argmax(rise >= top[:, None] / 2, axis=1)
    half = grid[first][rising]
    change = draws[:, 1:]  # (S, J) slope change at each knot, per unit of dose
    pick = np.abs(change).argmax(1)
    share = np.bincount(pick, minlength=knots.size) / pick.size
    mode = int(share.argmax())
    below = draws[:, 0] + change[:, :mode].sum(1)
    nan = float("nan")
    return {"threshold": float(np.median(half)) if half.size else nan,
            "threshold_low": float(np.quantile(half, INTERVAL[0])) if half.size else nan,
            "threshold_high": float(np.quantile(half, INTERVAL[1])) if half.size else nan,
            "p_rise": float(rising.mean()), "knee": float(knots[mode]),
            "p_knee": float(share[mode]), "slope_below": float(np.median(below)),
            "slope_above": float(np.median(below + change[:, mode]))}


def learned_shapes(twin: DigitalTwin) -> pd.DataFrame:
    """Learned dose–responses, one row per graded trigger with hinges.

    The population's for a cohort twin, the patient's own for a one-patient twin
    (``attrs["of"]`` says which). Columns: ``feature`` and the :func:`threshold_analysis`
    keys (``threshold, threshold_low, threshold_high, p_rise, knee, p_knee, slope_below,
    slope_above``). Empty for a twin with fixed shapes.
    """
    cols = ["feature", "threshold", "threshold_low", "threshold_high", "p_rise", "knee",
            "p_knee", "slope_below", "slope_above"]
    population = "mu_beta" in twin.posterior.posterior
    patient = None if population else twin.patients[0]
    names = [f.name for f in twin.spec.feature_specs]
    rows = [{"feature": f} | threshold_analysis(twin, patient, f) for f in names
            if any(n.startswith(f + KNOT) for n in names)]
    table = pd.DataFrame(rows, columns=cols)
    table.attrs["of"] = "population" if population else f"patient {patient}"
    return table


def interactions(twin: DigitalTwin) -> pd.DataFrame:
    """Trigger interactions of a twin fitted with ``--interactions``, strongest first.

    One row per pair: ``pair`` (``<a>:<b>``), ``levels`` (the doses from which each counts as
    high), ``odds_ratio`` (posterior median odds ratio of both being high on one day, on top of
    their own effects), ``or_low, or_high`` (90% interval), ``p_positive`` and ``evidence``.
    The horseshoe shrinks unsupported pairs to OR ≈ 1.
    """
    cols = ["pair", "levels", "odds_ratio", "or_low", "or_high", "p_positive", "evidence"]
    post = twin.posterior.posterior
    if "beta_pair" not in post:
        return pd.DataFrame(columns=cols)
    b = post["beta_pair"].stack(s=(CHAIN, DRAW)).transpose("s", PAIR)
    levels = {f.name: f.levels for f in twin.spec.feature_specs}
    rows = []
    for j, pair in enumerate(b[PAIR].values):
        x = b.values[:, j]
        lo, med, hi = np.quantile(x, (INTERVAL[0], 0.5, INTERVAL[1]))
        p_pos = float((x > 0).mean())
        rows.append({"pair": str(pair), "levels": " & ".join(f"{v:g}" for v in levels[pair]),
                     "odds_ratio": float(np.exp(med)),
                     "or_low": float(np.exp(lo)), "or_high": float(np.exp(hi)),
                     "p_positive": p_pos, "evidence": evidence_label(p_pos)})
    table = pd.DataFrame(rows, columns=cols)
    strength = (table["p_positive"] - 0.5).abs()
    return table.loc[strength.sort_values(ascending=False).index].reset_index(drop=True)


def _kind(name: str) -> str:
    """What a coefficient is: an ``effect``, a ``slope change`` or an ``interaction``.

    A learned shape's slope change "raises risk" when the dose-response steepens at its knot.
    """
    if is_interaction(name):
        return "interaction"
    return "slope change" if is_hinge(name) else "effect"


def _doses(twin: DigitalTwin, spec: FeatureSpec):
    """A feature's panel values (patient, day) in its own units: a pressure *fall* in hPa."""
    values = twin.panel["value"].sel({FEATURE: spec.source})
    return np.clip(-values, 0, None) if spec.transform == "fall" else values


def _dose_grid(values, points: int = 200) -> np.ndarray:
    """``points`` doses spanning the cohort's 1st–99th percentile of ``values``."""
    return np.linspace(*np.nanpercentile(values.values, [1, 99]), points)


def _graded(spec: FeatureSpec) -> bool:
    return not (spec.binary or spec.transform == "product" or is_hinge(spec.name))


def _shape_draws(twin: DigitalTwin, patient: str | None, feature: str
                 ) -> tuple[list[tuple[str, float]], np.ndarray]:
    """A graded feature's columns and their effects per unit of dose, summed over lags.

    Returns ``[(column, knot)]`` (the linear column first, knot NaN; then its hinges by knot)
    and draws (S, C) of each column's log-odds per unit (the model's per-SD effect / SD).
    """
    spec = twin.spec
    names = [f.name for f in spec.feature_specs]
    scale = spec.scaling_dict
    by_name = {f.name: f for f in spec.feature_specs}
    hinges = sorted((n for n in names if n.startswith(feature + KNOT) and "@lag" not in n),
                    key=lambda n: by_name[n].threshold)
    columns = [(feature, float("nan"))] + [(n, by_name[n].threshold) for n in hinges]
    post = twin.posterior.posterior
    beta = post["mu_beta"] if patient is None else post["beta"].sel({PATIENT: patient})
    beta = beta.stack(s=(CHAIN, DRAW)).transpose("s", FEATURE)
    draws = []
    for name, _ in columns:
        lagged = [name] + [n for n in names if n.rpartition("@lag")[0] == name]
        draws.append(sum(beta.sel({FEATURE: n}).values / scale[n][1] for n in lagged))
    return columns, np.stack(draws, axis=1)


def _basis(columns: list[tuple[str, float]], dose: np.ndarray) -> np.ndarray:
    """(G, C) each column's transform of a dose (the feature's own units): x, max(0, x - k)."""
    return np.stack([dose if np.isnan(k) else np.clip(dose - k, 0.0, None)
                     for _, k in columns], axis=1)
