"""The report's first screen: the cohort, how good the twin is, what it found and recommends."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from migraine_bayes.analysis.sensitivity import measured_effects
from migraine_bayes.model.labels import model_label

TOP_TRIGGERS = 3
MIN_EVIDENCE = 0.80  # P(effect > 0) for a trigger to be named on the first screen
# Below these a patient's trigger claims and recommendations are withheld, with the reason.
# A patient has about 30 effects (triggers, state, treatments) under partial pooling; the rule
# of thumb of ≥ 10 events per parameter (Peduzzi et al. 1996; Riley et al. 2019 for prediction
# models) cannot be met per patient, so the stated minimum is a floor, not a guarantee: an
# attack a month for a year's diary, and a season of days
MIN_ATTACKS = 12  # attacks with a known day in the patient's own diary (one a month)
MIN_KNOWN_DAYS = 90  # days with a known outcome
# below this many attacks in the backtest, no calibration verdict (the interval of the
# calibration slope spans everything; Riley et al. 2021 ask ≥ 100 events for validation)
MIN_VALIDATION_ATTACKS = 100
BASELINES = ("logistic", "running_logistic", "boosting", "running_rate", "base_rate")
# what the first screen calls a trigger: not a premonitory symptom (a warning sign, listed
# apart) nor the diary's bookkeeping features
NOT_TRIGGERS = ("derived.days_since_attack", "derived.yesterday_unrecorded")


@dataclass
class Summary:
    """What the summary shows.

    ``cohort`` one sentence; ``headline`` (label, value, note) boxes; ``verdicts`` sentences
    (calibration, sampler); ``triggers`` per patient; ``treatments`` (N-of-1 rows);
    ``recommendations`` per simulated patient.
    """

    cohort: str
    headline: list[tuple[str, str, str]]
    verdicts: list[str]
    triggers: pd.DataFrame = field(default_factory=pd.DataFrame)
    treatments: pd.DataFrame = field(default_factory=pd.DataFrame)
    recommendations: pd.DataFrame = field(default_factory=pd.DataFrame)


def _interval(row, key: str, digits: int = 2) -> tuple[str, str]:
    value = row.get(key, np.nan)
    lo, hi = row.get(f"{key}_low", np.nan), row.get(f"{key}_high", np.nan)
    if value is None or not np.isfinite(value):
        return "–", ""
    note = f"90% {lo:.{digits}f} to {hi:.{digits}f}" if np.isfinite(lo) and np.isfinite(hi) else ""
    return f"{value:.{digits}f}", note


def calibration_verdict(row: dict) -> str:
    """Words for a validation row's calibration-in-the-large and slope, by their 90% intervals."""
    bounds = [row.get(k, np.nan) for k in ("citl_low", "citl_high", "cal_slope_low",
                                             "cal_slope_high")]
    if not np.all(np.isfinite(bounds)):
        return ("Calibration: not estimable on these days (too few attacks, or forecasts that "
                "separate them perfectly).")
    parts = []
    if row.get("citl_high", np.nan) < 0:
        parts.append("forecasts too high on average")
    elif row.get("citl_low", np.nan) > 0:
        parts.append("forecasts too low on average")
    if row.get("cal_slope_high", np.nan) < 1:
        parts.append("too extreme (calibration slope < 1)")
    elif row.get("cal_slope_low", np.nan) > 1:
        parts.append("too cautious (calibration slope > 1)")
    oe = row.get("observed_expected", np.nan)
    slope = row.get("cal_slope", np.nan)
    detail = f"observed/expected {oe:.2f}, calibration slope {slope:.2f}"
    if not parts:
        return f"Calibration: no miscalibration shown ({detail}; 90% intervals hold 1)."
    return f"Calibration: {'; '.join(parts)} ({detail})."


def _headline(twin, backtest: dict | None, patient: str | None
              ) -> tuple[list[tuple[str, str, str]], list[str]]:
    boxes, verdicts = [], []
    if backtest is not None:
        scores = backtest["scores"].set_index("model")
        if patient is None and "twin" in scores.index:
            row = scores.loc["twin"].to_dict()
            boxes.append(("AUC, forecasts walked forward", *_interval(row, "auc")))
            base = _best_baseline(scores)
            if base is not None:
                boxes.append(base)
        val = backtest.get("validation")
        if patient is None and val is not None and len(val) and (val["model"] == "twin").any():
            v = val[val["model"] == "twin"].iloc[0].to_dict()
            value, note = _interval(v, "within_c")
            boxes.append(("within-patient C (median)", value,
                          f"{note}; quartiles over patients {v['within_c_q25']:.2f}–"
                          f"{v['within_c_q75']:.2f}".lstrip("; ")))
            boxes.append(("Brier skill vs own base rate", *_interval(v, "brier_skill")))
            attacks = int(scores.loc["twin", "attacks"]) if "twin" in scores.index else 0
            verdicts.append(calibration_verdict(v) if attacks >= MIN_VALIDATION_ATTACKS else (
                f"Calibration: no verdict from {attacks} attacks in the backtest (fewer than "
                f"{MIN_VALIDATION_ATTACKS}: the calibration slope's interval spans every "
                "answer)."))
        if patient is not None:
            by = backtest.get("by_patient")
            mine = by[(by["patient_id"] == patient) & (by["model"] == "twin")] if by is not None \
                else pd.DataFrame()
            if len(mine):
                r = mine.iloc[0]
                auc = f"{r['auc']:.2f}" if np.isfinite(r["auc"]) else "–"
                boxes.append(("AUC of own forecasts", auc,
                              f"{int(r['days'])} days, {int(r['events'])} attacks"))
    else:
        v = twin.record.validation or {}
        if v.get("auc") is not None and np.isfinite(v.get("auc", np.nan)):
            boxes.append(("AUC, held-out last days", f"{v['auc']:.2f}",
                          f"{v['n_days']} days, {v['events']} attacks"))
    d = twin.record.diagnostics
    boxes.append(("sampler checks", "passed" if d["ok"] else "FAILED",
                  f"R-hat ≤ {d['max_rhat']:.3f}, {d['divergences']} divergences"))
    if not d["ok"]:
        verdicts.append("WARNING: the sampler checks failed (" + "; ".join(d["failures"])
                        + "): do not use these posteriors before refitting.")
    return boxes, verdicts


def _best_baseline(scores: pd.DataFrame) -> tuple[str, str, str] | None:
    """The headline's baseline box: the best baseline's AUC and the twin's paired difference."""
    there = [m for m in BASELINES if m in scores.index and np.isfinite(scores.at[m, "auc"])]
    if not there or "auc_vs_twin" not in scores:
        return None
    best = max(there, key=lambda m: scores.at[m, "auc"])
    r = scores.loc[best]
    diff, lo, hi = -r["auc_vs_twin"], -r["auc_vs_twin_high"], -r["auc_vs_twin_low"]
    verdict = ("better than" if lo > 0 else "worse than" if hi < 0 else "within noise of")
    name = model_label(best)
    return (f"AUC of the best baseline ({name[:1].lower() + name[1:]})", f"{r['auc']:.2f}",
            f"twin − baseline {diff:+.3f} (90% {lo:+.3f} to {hi:+.3f}): the twin is {verdict} "
            "it")


def withheld(twin, patient: str) -> str | None:
    """Why a patient's trigger claims and recommendations are withheld, or None."""
    cov = twin.record.coverage[patient]
    attacks, days = int(cov["events"]), int(cov["known_days"])
    if attacks >= MIN_ATTACKS and days >= MIN_KNOWN_DAYS:
        return None
    return (f"withheld: {attacks} attacks over {days} known days, below the stated minimum "
            f"({MIN_ATTACKS} attacks and {MIN_KNOWN_DAYS} days per patient) for naming a "
            "trigger")


def _own(sens: pd.DataFrame) -> pd.DataFrame:
    """A patient's own evidence of effects, bookkeeping features left out."""
    own = measured_effects(sens)
    return own[~own["source"].isin(NOT_TRIGGERS)]


def effect_words(r) -> str:
    """``Sleep debt: OR 1.4 per 1 h (1.1–1.8), P 0.97`` from a sensitivity row."""
    per = "if present" if r.natural_step == "presence" else f"per {r.natural_step}"
    return (f"{r.label}: OR {r.or_natural:.2g} {per} ({r.or_natural_low:.2g}–"
            f"{r.or_natural_high:.2g}), P {r.p_positive:.2f}")


def _triggers(twin, sens: pd.DataFrame, patients: list[str]) -> pd.DataFrame:
    rows = []
    own = _own(sens)
    symptom = own["source"].str.startswith("symptom.")

    def top(t: pd.DataFrame) -> str:
        t = t[t["p_positive"] >= MIN_EVIDENCE].sort_values(["p_positive", "odds_ratio"],
                                                         ascending=False).head(TOP_TRIGGERS)
        return "; ".join(effect_words(r) for r in t.itertuples())

    for pid in patients:
        mine = own["patient_id"] == pid
        reason = withheld(twin, pid)
        rows.append({"Patient": pid,
                     "Top triggers (odds ratio, 90% interval, P(raises risk))":
                     reason or top(own[mine & ~symptom]) or f"none with P ≥ {MIN_EVIDENCE:.2f}",
                     "Warning signs the day before":
                     reason or top(own[mine & symptom]) or "none"})
    return pd.DataFrame(rows)


def _most_flagged(sens: pd.DataFrame, n_patients: int, n: int = 3) -> str:
    """The triggers (not warning signs) most patients have with P(raises risk) ≥ 0.95."""
    own = _own(sens)
    own = own[~own["source"].str.startswith("symptom.") & (own["p_positive"] >= 0.95)]
    counts = own.groupby("label")["patient_id"].nunique().sort_values(ascending=False)
    if counts.empty:
        return "No trigger raises risk with P ≥ 0.95 for any patient."
    return ("Triggers most often raising risk (P ≥ 0.95): " + "; ".join(
        f"{f} ({k} of {n_patients} patients)" for f, k in counts.head(n).items()) + ".")


def _recommendations(twin, simulation: dict | None, patient: str | None, limit: int
                     ) -> pd.DataFrame:
    rows = []
    simulated = (simulation or {}).get("patients", [])
    for p in simulated if patient is None else [p for p in simulated
                                                 if p["patient_id"] == patient]:
        if len(rows) == limit:
            break
        recommended = [s for s in p["scenarios"]
                       if (s.get("recommendation") or {}).get("recommended")]
        best = min(recommended or [s for s in p["scenarios"] if s["name"] != "baseline"]
                   or p["scenarios"], key=lambda s: s["rank"])
        rec = best.get("recommendation") or {}
        reason = withheld(twin, p["patient_id"]) if p["patient_id"] in twin.patients else None
        if reason:
            rows.append({"Patient": p["patient_id"], "Scenario": "none",
                         "Why": reason.replace("naming a trigger", "a recommendation"),
                         "Change in attacks": "", "Basis": ""})
            continue
        why = (rec.get("certainty", "") if recommended else
               f"none recommended; best is {best['name']} (rank {best['rank']}): "
               + (rec.get("why_not") or "no scenario beats no change"))
        rows.append({"Patient": p["patient_id"],
                     "Scenario": best["name"] if recommended else "none",
                     "Why": why,
                     "Change in attacks": rec.get("risk_reduction", ""),
                     "Basis": " ".join(rec.get("evidence", []))})
    return pd.DataFrame(rows)


def summarise(twin, sens: pd.DataFrame, backtest: dict | None, simulation: dict | None,
              treatments: pd.DataFrame, patient: str | None = None,
              max_patients: int = 12) -> Summary:
    """The :class:`Summary` of a twin's report (of one ``patient`` when given).

    A cohort's summary names the triggers flagged most often over all patients, and lists the
    top triggers of its first ``max_patients`` patients (the first screen stays one screen).
    """
    cov = twin.record.coverage
    patients = [patient] if patient is not None else list(twin.patients)
    days = sum(cov[p]["diary_days"] for p in patients)
    known = sum(cov[p]["known_days"] for p in patients)
    attacks = sum(cov[p]["events"] for p in patients)
    who = f"Patient {patient}" if patient is not None else f"{len(patients)} patient(s)"
    cohort = (f"{who}: {days} diary days ({known} with a known outcome), {attacks} attacks "
              f"({28 * attacks / max(known, 1):.1f} per 28 days).")
    boxes, verdicts = _headline(twin, backtest, patient)
    if patient is None:
        verdicts.append(_most_flagged(sens, len(patients)))
        if len(patients) > max_patients:
            verdicts.append(f"Top triggers below: the first {max_patients} of {len(patients)} "
                            "patients; every patient's are in the trigger sensitivities.")
    # one patient's report lists their treatments here; a cohort's has its own section
    shown = (treatments[treatments["patient_id"] == patient]
             if patient is not None and len(treatments) else pd.DataFrame())
    cols = ["patient_id", "treatment", "start", "rate_before", "rate_after", "rate_ratio",
            "rr_low", "rr_high", "p_benefit"]
    if any(withheld(twin, p) for p in patients):
        few = sum(bool(withheld(twin, p)) for p in patients)
        verdicts.append(f"Small data: {few} of {len(patients)} patient(s) have fewer than "
                        f"{MIN_ATTACKS} attacks or {MIN_KNOWN_DAYS} known days; their trigger "
                        "claims and recommendations are withheld (the estimates stay in the "
                        "tables below, with intervals as wide as the data leave them).")
    return Summary(cohort, boxes, verdicts, _triggers(twin, sens, patients[:max_patients]),
                   shown[cols] if len(shown) else pd.DataFrame(),
                   _recommendations(twin, simulation, patient, max_patients))
