"""The report's first screen: the cohort, how good the twin is, what it found and recommends."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from migraine_bayes.analysis.sensitivity import measured_effects

TOP_TRIGGERS = 3
MIN_EVIDENCE = 0.80  # P(effect > 0) for a trigger to be named on the first screen
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
        val = backtest.get("validation")
        if patient is None and val is not None and len(val) and (val["model"] == "twin").any():
            v = val[val["model"] == "twin"].iloc[0].to_dict()
            value, note = _interval(v, "within_c")
            boxes.append(("within-patient C (median)", value,
                          f"{note}; quartiles over patients {v['within_c_q25']:.2f}–"
                          f"{v['within_c_q75']:.2f}".lstrip("; ")))
            boxes.append(("Brier skill vs own base rate", *_interval(v, "brier_skill")))
            verdicts.append(calibration_verdict(v))
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


def _own(sens: pd.DataFrame) -> pd.DataFrame:
    """A patient's own evidence of effects, bookkeeping features left out."""
    own = measured_effects(sens)
    return own[~own["source"].isin(NOT_TRIGGERS)]


def _triggers(sens: pd.DataFrame, patients: list[str]) -> pd.DataFrame:
    rows = []
    own = _own(sens)
    symptom = own["source"].str.startswith("symptom.")

    def top(t: pd.DataFrame) -> str:
        t = t[t["p_positive"] >= MIN_EVIDENCE].sort_values(["p_positive", "odds_ratio"],
                                                         ascending=False).head(TOP_TRIGGERS)
        return "; ".join(f"{r.feature} OR {r.odds_ratio:.2f} ({r.or_low:.2f}–{r.or_high:.2f}), "
                         f"P {r.p_positive:.2f}" for r in t.itertuples())

    for pid in patients:
        mine = own["patient_id"] == pid
        rows.append({"patient": pid,
                     "top triggers (OR per step, 90% interval, P(raises risk))":
                     top(own[mine & ~symptom]) or f"none with P ≥ {MIN_EVIDENCE:.2f}",
                     "warning signs the day before": top(own[mine & symptom]) or "none"})
    return pd.DataFrame(rows)


def _most_flagged(sens: pd.DataFrame, n_patients: int, n: int = 3) -> str:
    """The triggers (not warning signs) most patients have with P(raises risk) ≥ 0.95."""
    own = _own(sens)
    own = own[~own["source"].str.startswith("symptom.") & (own["p_positive"] >= 0.95)]
    counts = own.groupby("feature")["patient_id"].nunique().sort_values(ascending=False)
    if counts.empty:
        return "No trigger raises risk with P ≥ 0.95 for any patient."
    return ("Triggers most often raising risk (P ≥ 0.95): " + "; ".join(
        f"{f} ({k} of {n_patients} patients)" for f, k in counts.head(n).items()) + ".")


def _recommendations(simulation: dict | None, patient: str | None, limit: int) -> pd.DataFrame:
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
        rows.append({"patient": p["patient_id"],
                     "scenario": best["name"] if recommended else
                     f"none recommended (best: {best['name']}, rank {best['rank']})",
                     "certainty": rec.get("certainty", ""),
                     "risk reduction": rec.get("risk_reduction", ""),
                     "evidence": " ".join(rec.get("evidence", []))})
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
    return Summary(cohort, boxes, verdicts, _triggers(sens, patients[:max_patients]),
                   shown[cols] if len(shown) else pd.DataFrame(),
                   _recommendations(simulation, patient, max_patients))
