"""Scores of backtest forecasts, per model, each with a 90% bootstrap interval.

Discrimination (AUC pooled over patient-days, and within patients), calibration (Brier score,
expected calibration error), the log score, alarm metrics at a stated threshold
(:func:`migraine_bayes.metrics.classification`) and the warning lead time of attacks.
Intervals come from one set of bootstrap resamples of patient-days shared by all models, so
differences between models are paired (percentile intervals; for ECE bias-corrected).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from migraine_bayes.analysis.partner import COMBINATION, PARTNER
from migraine_bayes.metrics import (
    brier,
    classification,
    expected_calibration_error,
    lead_times,
    log_score,
    log_scores,
    roc_auc,
)

N_BOOT = 400
MODEL_ORDER = ("twin", "twin+partner", "running_logistic", "running_rate", "logistic",
               "boosting", "base_rate", "oracle", "oracle_filtered", "oracle_hazard")
ORACLES = ("oracle", "oracle_filtered")  # paired AUC differences against each
# a combination and the models it combines: its log score is compared with the better of them
COMBINED = {COMBINATION: ("twin", PARTNER)}
# days of history at the forecast: (label, first, last) diary days before the forecast day
HISTORY = (("0", 0, 0), ("1-7", 1, 7), ("8-28", 8, 28), (">28", 29, None))


def score_table(predictions: pd.DataFrame, threshold: float, seed: int = 0,
                n_boot: int = N_BOOT) -> pd.DataFrame:
    """One row per model of ``predictions`` (``patient_id, date, model, p_attack, attack``).

    Columns: ``model, days, attacks, auc, auc_low, auc_high, auc_within, brier, brier_low,
    brier_high, ece, ece_low, ece_high, ece_noise`` (:func:`calibrated_ece`), ``log_score``,
    the alarm metrics at ``threshold``, and ``lead_time_days`` (mean over attacks with an
    alarm) — plus paired differences with their intervals (``_low/_high``): ``auc_vs_twin``,
    ``auc_vs_oracle`` and ``auc_vs_oracle_filtered`` (when those oracles are there) and, for a
    combination (:data:`COMBINED`), ``log_score_vs_best``: its log score minus that of the
    better of the models it combines (negative beyond the interval: the combination lost
    information).
    """
    rng = np.random.default_rng(seed)
    wide, attack = paired_days(predictions)
    n = attack.size
    boots = [rng.integers(0, n, n) for _ in range(n_boot)]
    models = [m for m in MODEL_ORDER if m in wide] + sorted(set(wide) - set(MODEL_ORDER))
    auc_boot = {m: np.array([roc_auc(attack[b], wide[m].to_numpy()[b]) for b in boots])
                for m in models}
    day_ls = {m: log_scores(attack, wide[m].to_numpy()) for m in models}
    ls_boot = {m: np.array([v[b].mean() for b in boots]) for m, v in day_ls.items()}
    rows = []
    for model in models:
        p = wide[model].to_numpy()
        auc_b = auc_boot[model]
        brier_b = np.array([brier(attack[b], p[b]) for b in boots])
        ece_b = np.array([expected_calibration_error(attack[b], p[b]) for b in boots])
        row = {"model": model, "days": int(n), "attacks": int(attack.sum()),
               "auc": roc_auc(attack, p), **bootstrap_interval("auc", auc_b),
               "auc_within": _within_auc(wide.index, attack, p),
               "brier": brier(attack, p), **bootstrap_interval("brier", brier_b),
               "ece": (ece := expected_calibration_error(attack, p)),
               **bootstrap_interval("ece", ece_b, around=ece),
               "ece_noise": calibrated_ece(p, rng),
               "log_score": log_score(attack, p)}
        if "twin" in auc_boot:
            row["auc_vs_twin"] = row["auc"] - roc_auc(attack, wide["twin"].to_numpy())
            row |= bootstrap_interval("auc_vs_twin", auc_b - auc_boot["twin"])
        for ref in (r for r in ORACLES if r in auc_boot):
            row[f"auc_vs_{ref}"] = row["auc"] - roc_auc(attack, wide[ref].to_numpy())
            row |= bootstrap_interval(f"auc_vs_{ref}", auc_b - auc_boot[ref])
        parts = [m for m in COMBINED.get(model, ()) if m in day_ls]
        if parts:
            best = max(parts, key=lambda m: day_ls[m].mean())
            row["log_score_best_part"] = best
            row["log_score_vs_best"] = float(day_ls[model].mean() - day_ls[best].mean())
            row |= bootstrap_interval("log_score_vs_best", ls_boot[model] - ls_boot[best])
        row |= classification(attack, p, threshold)
        leads = np.concatenate([lead_times(attack[idx], p[idx], threshold)
                                for idx in _patient_runs(wide.index)])
        detected = leads[leads > 0]
        row["lead_time_days"] = float(detected.mean()) if detected.size else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def paired_days(predictions: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The patient-days every model forecast: probabilities (day × model) and the outcome.

    Scores computed on these days (and bootstrap resamples of them) are paired across models.
    """
    wide = predictions.pivot_table(index=["patient_id", "date"], columns="model",
                                   values="p_attack").dropna()
    attack = predictions.drop_duplicates(["patient_id", "date"]).set_index(
        ["patient_id", "date"])["attack"].reindex(wide.index).to_numpy(dtype=float)
    return wide, attack


def history_band(days: np.ndarray) -> np.ndarray:
    """The :data:`HISTORY` label of each number of diary days before a forecast (object)."""
    days = np.asarray(days)
    band = np.full(days.shape, None, dtype=object)
    for label, lo, hi in HISTORY:
        band[(days >= lo) & ((days <= hi) if hi is not None else True)] = label
    return band


def calibrated_ece(p: np.ndarray, rng: np.random.Generator, n_sim: int = 200) -> float:
    """ECE a perfectly calibrated forecaster scores on these days by chance alone.

    The mean ECE over ``n_sim`` outcome sets drawn as ``Bernoulli(p)``: the floor that sampling
    noise puts under a reported ECE on this many days (with 10 bins of ~30 days it is ~0.05).
    """
    return float(np.mean([expected_calibration_error((rng.random(p.size) < p).astype(float), p)
                          for _ in range(n_sim)]))


def bootstrap_interval(name: str, values: np.ndarray, around: float | None = None
              ) -> dict[str, float]:
    """90% percentile interval of bootstrap ``values``, bias-corrected around ``around``.

    With ``around`` (the estimate), the bootstrap distribution is first shifted so that its
    mean is the estimate (clipped at 0): right for a statistic that resampling inflates, like
    the expected calibration error — duplicated days make every bin look noisier, and the
    plain percentile interval can sit entirely above the estimate.
    """
    if np.isnan(values).all():  # e.g. AUC with no attack in the backtest days
        return {f"{name}_low": float("nan"), f"{name}_high": float("nan")}
    if around is not None:
        values = np.clip(values - (np.nanmean(values) - around), 0.0, None)
    lo, hi = np.nanquantile(values, [0.05, 0.95])
    return {f"{name}_low": float(lo), f"{name}_high": float(hi)}


def _patient_runs(index: pd.MultiIndex) -> list[np.ndarray]:
    """Positions of each patient's rows, in date order (the index is sorted)."""
    pids = index.get_level_values(0).to_numpy()
    return [np.flatnonzero(pids == pid) for pid in pd.unique(pids)]


def _within_auc(index: pd.MultiIndex, y: np.ndarray, p: np.ndarray) -> float:
    """Event-weighted mean of per-patient AUCs (patients with both outcomes)."""
    aucs, weights = [], []
    for idx in _patient_runs(index):
        a = roc_auc(y[idx], p[idx])
        if not np.isnan(a):
            aucs.append(a)
            weights.append(y[idx].sum())
    return float(np.average(aucs, weights=weights)) if aucs else float("nan")


def scores_by_history(predictions: pd.DataFrame, history: pd.Series, threshold: float,
                      seed: int = 0, n_boot: int = N_BOOT) -> pd.DataFrame:
    """:func:`score_table` per band of :data:`HISTORY`, with a ``history`` column first.

    ``history`` maps (patient_id, date) to the patient's diary days before that day.
    """
    days = history.reindex(pd.MultiIndex.from_frame(predictions[["patient_id", "date"]]))
    band = history_band(days.to_numpy())
    parts = []
    for label, _, _ in HISTORY:
        sub = predictions[band == label]
        if sub.empty:
            continue
        parts.append(score_table(sub, threshold, seed=seed, n_boot=n_boot)
                     .assign(history=label))
    if not parts:
        return pd.DataFrame()
    table = pd.concat(parts, ignore_index=True)
    return table[["history", *[c for c in table.columns if c != "history"]]]


def within_patient_aucs(predictions: pd.DataFrame) -> pd.DataFrame:
    """AUC within each patient and model: ``patient_id, model, days, events, auc``.

    Patients without both outcomes in their forecast days have no AUC and are left out.
    """
    rows = []
    for (pid, model), g in predictions.groupby(["patient_id", "model"], sort=False):
        a = roc_auc(g["attack"].to_numpy(), g["p_attack"].to_numpy())
        if not np.isnan(a):
            rows.append({"patient_id": pid, "model": model, "days": len(g),
                         "events": int(g["attack"].sum()), "auc": a})
    return pd.DataFrame(rows, columns=["patient_id", "model", "days", "events", "auc"])
