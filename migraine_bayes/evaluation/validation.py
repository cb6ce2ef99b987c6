"""Validation of backtest forecasts as TRIPOD+AI asks (Collins et al., BMJ 2024, item 23).

:func:`validation_table`: per model, discrimination (AUC, area under the precision–recall
curve, within-patient C and its spread over patients), calibration (observed/expected events,
calibration-in-the-large intercept, calibration slope and intercept) and overall performance
(Brier score, Brier skill against each patient's own running base rate), each with a 90%
bootstrap interval over patient-days shared by all models; :func:`validation_by_subgroup` the
same within subgroups. :func:`decision_curve`: net benefit of alarming at each threshold
beside alarm-everyone and alarm-no-one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from migraine_bayes.evaluation.scores import (
    N_BOOT,
    bootstrap_interval,
    paired_days,
    within_patient_aucs,
)
from migraine_bayes.metrics import (
    average_precision,
    brier,
    expected_calibration_error,
    logistic_recalibration,
    net_benefit,
    observed_expected,
    roc_auc,
)

REFERENCE = "base_rate"  # Brier skill is against this model: each patient's own running rate
THRESHOLDS = np.round(np.arange(0.02, 0.51, 0.02), 2)  # alarm thresholds of the decision curve


def validation_table(predictions: pd.DataFrame, seed: int = 0, n_boot: int = N_BOOT
                     ) -> pd.DataFrame:
    """One row per model of ``predictions`` (``patient_id, date, model, p_attack, attack``).

    Columns (each with ``_low``/``_high``, a 90% bootstrap interval): ``auc, auprc,
    observed_expected, citl`` (calibration-in-the-large: the intercept with ``logit(p)`` as
    offset), ``cal_intercept, cal_slope`` (``attack ~ a + b logit(p)``), ``brier,
    brier_skill`` (1 − Brier / Brier of :data:`REFERENCE`; NaN without it), ``ece`` (expected
    calibration error over 10 equal-width bins); and without
    intervals ``days, attacks, prevalence``; ``within_c`` (median within-patient AUC; its
    ``_low``/``_high`` resample patients), ``within_c_q25, within_c_q75`` (its spread over
    patients) and ``within_c_patients``.
    """
    rng = np.random.default_rng(seed)
    wide, y = paired_days(predictions)
    boots = [rng.integers(0, y.size, y.size) for _ in range(n_boot)]
    within = within_patient_aucs(predictions)
    ref = wide[REFERENCE].to_numpy() if REFERENCE in wide else None

    def measures(yy: np.ndarray, p: np.ndarray, r: np.ndarray | None) -> dict[str, float]:
        intercept, slope = logistic_recalibration(yy, p)
        score = brier(yy, p)
        reference = brier(yy, r) if r is not None else 0.0
        return {"auc": roc_auc(yy, p), "auprc": average_precision(yy, p),
                "observed_expected": observed_expected(yy, p),
                "citl": logistic_recalibration(yy, p, offset_only=True)[0],
                "cal_intercept": intercept, "cal_slope": slope, "brier": score,
                "ece": expected_calibration_error(yy, p),
                "brier_skill": 1.0 - score / reference if reference > 0 else np.nan}

    rows = []
    for model in wide.columns:
        p = wide[model].to_numpy()
        row = {"model": model, "days": int(y.size), "attacks": int(y.sum()),
               "prevalence": float(y.mean())} | measures(y, p, ref)
        boot = [measures(y[b], p[b], None if ref is None else ref[b]) for b in boots]
        for key in list(row):
            if key in boot[0]:
                row |= bootstrap_interval(key, np.array([m[key] for m in boot], dtype=float))
        w = within.loc[within["model"] == model, "auc"]
        if len(w) > 1:  # the median over patients, with patients resampled
            v = w.to_numpy()
            row |= bootstrap_interval("within_c", np.array(
                [np.median(v[rng.integers(0, v.size, v.size)]) for _ in range(n_boot)]))
        row |= {"within_c": float(w.median()) if len(w) else np.nan,
                "within_c_q25": float(w.quantile(0.25)) if len(w) else np.nan,
                "within_c_q75": float(w.quantile(0.75)) if len(w) else np.nan,
                "within_c_patients": len(w)}
        rows.append(row)
    return pd.DataFrame(rows)


def decision_curve(predictions: pd.DataFrame, model: str = "twin",
                   thresholds: np.ndarray = THRESHOLDS, seed: int = 0,
                   n_boot: int = N_BOOT) -> pd.DataFrame:
    """Net benefit of ``model``'s alarms at each threshold (Vickers & Elkin 2006).

    Columns ``threshold, net_benefit, net_benefit_low, net_benefit_high`` (90% bootstrap
    interval over patient-days), ``alarm_everyone, alarm_no_one`` (Med Decis Making 2006).
    """
    g = predictions[predictions["model"] == model]
    y, p = g["attack"].to_numpy(dtype=float), g["p_attack"].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    boot = np.array([net_benefit(y[b], p[b], thresholds)
                     for b in (rng.integers(0, y.size, y.size) for _ in range(n_boot))])
    lo, hi = (np.quantile(boot, (0.05, 0.95), axis=0) if y.size
              else (np.full(len(thresholds), np.nan),) * 2)
    return pd.DataFrame({"threshold": thresholds,
                         "net_benefit": net_benefit(y, p, thresholds),
                         "net_benefit_low": lo, "net_benefit_high": hi,
                         "alarm_everyone": net_benefit(y, np.ones_like(p), thresholds),
                         "alarm_no_one": np.zeros(len(thresholds))})


def validation_by_subgroup(predictions: pd.DataFrame, groups: dict[str, pd.Series],
                           seed: int = 0, n_boot: int = N_BOOT) -> pd.DataFrame:
    """:func:`validation_table` within each subgroup (TRIPOD+AI: performance by subgroup).

    ``groups`` maps a subgroup kind (e.g. ``sex``, ``history``) to a Series from
    ``(patient_id, date)`` — or from ``patient_id`` alone — to the subgroup's label. Returns
    the tables stacked, with ``subgroup`` (the kind) and ``level`` (the label) first.
    """
    parts = []
    keys = pd.MultiIndex.from_frame(predictions[["patient_id", "date"]])
    for kind, labels in groups.items():
        if labels.index.nlevels == 1:
            level = labels.reindex(predictions["patient_id"]).to_numpy()
        else:
            level = labels.reindex(keys).to_numpy()
        for value in pd.unique(level[pd.notna(level)]):
            sub = predictions[level == value]
            if sub["attack"].nunique() < 2:
                continue  # one outcome only: no discrimination, no calibration fit
            parts.append(validation_table(sub, seed=seed, n_boot=n_boot)
                         .assign(subgroup=kind, level=str(value)))
    if not parts:
        return pd.DataFrame()
    table = pd.concat(parts, ignore_index=True)
    return table[["subgroup", "level", *[c for c in table if c not in ("subgroup", "level")]]]
