"""Trigger sensitivities of a twin: odds ratios, evidence, population effects, dose-response.

Coefficients are on the model's scale: per standard deviation of a continuous feature (the SD is
in ``twin.json``'s scaling, reported as ``unit_per_step``) or for presence of a 0/1 feature.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .dims import CHAIN, DRAW, FEATURE, LAG, PATIENT, TRIGGER
from .model import FeatureSpec
from .twin import DigitalTwin

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
        rows.append(prefix | {
            "feature": spec.name, "source": spec.source, "lag": int(spec.lag),
            "step": "presence" if spec.binary else "+1 SD",
            "unit_per_step": 1.0 if spec.binary else float(scaling[spec.name][1]),
            "odds_ratio": float(np.exp(np.median(b))), "or_low": float(np.exp(lo)),
            "or_high": float(np.exp(hi)), "log_or_mean": float(b.mean()),
            "log_or_sd": float(b.std()), "p_positive": p_pos,
            "evidence": evidence_label(p_pos),
        })
    return rows


def trigger_sensitivities(twin: DigitalTwin) -> pd.DataFrame:
    """One row per patient and feature.

    Columns: ``patient_id, feature, source`` (the panel feature), ``lag`` (days after the
    source's day at which the effect acts), ``step, unit_per_step, odds_ratio`` (posterior median),
    ``or_low, or_high`` (90% interval), ``log_or_mean, log_or_sd, p_positive`` (P(effect > 0)),
    ``evidence`` and ``coverage`` (share of the patient's diary days on which the feature's
    source was measured). A feature the patient never measured (a cohort twin's wearable
    feature for a patient without a wearable) carries only the population's effect: its
    ``evidence`` says so instead of claiming the patient's own.
    """
    spec = twin.spec  # parsed once, not per patient
    features, scaling = spec.feature_specs, spec.scaling_dict
    beta = twin.posterior.posterior["beta"]
    rows = []
    for pid in twin.patients:
        b = beta.sel({PATIENT: pid}).stack(s=(CHAIN, DRAW)).transpose("s", FEATURE).values
        cover = twin.meta["coverage"][pid]["feature_coverage"]
        for row, feature in zip(_rows(b, features, scaling, {"patient_id": pid}), features,
                                strict=True):
            row["coverage"] = float(cover.get(feature.source, float("nan")))
            if row["coverage"] == 0:
                row["evidence"] = "no data for this patient: the population's effect"
            rows.append(row)
    return pd.DataFrame(rows)


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


def dose_response(twin: DigitalTwin, patient: str, feature: str, points: int = 25
                  ) -> pd.DataFrame:
    """Odds ratio against the patient's usual level across a graded feature's observed range.

    The reference is the patient's median value; the grid spans the cohort's 1st–99th
    percentile (in the feature's own units). ``threshold`` marks the lowest level above the
    median where the 90% interval of the odds ratio lies entirely above 1: the dose beyond which
    this patient's risk is credibly raised (NaN when there is none).
    """
    model = twin.spec
    specs = {f.name: f for f in model.feature_specs}
    spec = specs.get(feature)
    if spec is None or spec.binary:
        raise ValueError(f"{feature!r} is not a graded feature of this twin; graded: "
                         f"{[n for n, s in specs.items() if not s.binary]}")
    scale = model.scaling_dict[feature][1]
    values = twin.panel["value"].sel({FEATURE: spec.source})
    if spec.transform == "fall":
        values = np.clip(-values, 0, None)
    grid = np.linspace(*np.nanpercentile(values.values, [1, 99]), points)
    usual = float(np.nanmedian(values.sel({PATIENT: patient}).values))
    b = twin.posterior.posterior["beta"].sel({PATIENT: patient, FEATURE: feature}).values.ravel()
    log_or = np.outer(b, (grid - usual) / scale)
    lo, med, hi = np.quantile(log_or, (INTERVAL[0], 0.5, INTERVAL[1]), axis=0)
    out = pd.DataFrame({"value": grid, "odds_ratio": np.exp(med), "or_low": np.exp(lo),
                        "or_high": np.exp(hi)})
    raised = out[(out["value"] > usual) & (out["or_low"] > 1)]
    out.attrs = {"patient_id": patient, "feature": feature, "reference": usual,
                 "threshold": float(raised["value"].iloc[0]) if len(raised) else float("nan")}
    return out
