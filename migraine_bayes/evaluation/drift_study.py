"""How well drift checks find drift on synthetic patients with known drift (and stay quiet).

Each patient of a cohort simulated with the generator's drift option (half drifting: a baseline
doubling of the odds or a trigger sensitivity appearing, OR 2.5, on a known day ``D``) gets a
twin fitted on its diary up to ``D - lead`` (stationary patients: a cut drawn from the same
range). Drift checks then run every ``step`` days on the last ``window`` days, the window end
moving from ``cut + step`` to ``D + within``. A drifting patient is *detected* when a window
ending in ``(D, D + within]`` raises the alarm; every window of a stationary patient, and every
window of a drifting one that ends before ``D``, counts towards the false-alarm rate.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..drift import check_drift
from ..inference import InferenceWarning
from ..model import build_design
from ..state import build_panel
from ..synthetic import simulate_cohort
from ..twin import HORIZON_DAYS, DigitalTwin, truncate


def drift_detection_study(n_patients: int, seed: int, window: int = 28, within: int = 42,
                          step: int = 7, lead: int = 14, n_days: int = 365,
                          cache: str | os.PathLike | None = None
                          ) -> tuple[pd.DataFrame, dict]:
    """Run the study; returns one row per check and the summary figures.

    ``cache``: a folder where fitted twins are saved and, on a rerun, loaded.
    """
    sc, full, patients = _study(n_patients, seed, lead, n_days, cache)
    rows = []
    for pid, drift, day, cut, start, twin in patients:
        for end in range(cut + step, day + within + 1, step):
            res = check_drift(twin, full, window=window, seed=seed + end,
                              end=str((start + pd.Timedelta(days=end - 1)).date()))[0]
            rows.append({"patient_id": pid, "drift": drift["kind"] or "none",
                         "drift_day": day if drift["kind"] else None, "window_end_day": end,
                         "after_drift": bool(drift["kind"]) and end > day,
                         "alarm": res["alarm"], "category": res["category"],
                         "checks_ok": twin.meta["diagnostics"]["ok"]})
    table = pd.DataFrame(rows)
    summary = summarise(table)
    bound = oracle_power(sc.truth, full, within)
    summary["oracle_power_within"] = float(np.mean(list(bound.values()))) if bound else None
    return table, summary


def oracle_power(truth: dict, panel, within: int = 42, alpha: float = 0.05) -> dict[str, float]:
    """Per drifting patient, the power of the best possible test of its drift.

    A Neyman-Pearson test that knows the patient's true daily probabilities with and without
    the drift, and the day it starts, looks once at the ``within`` days after it (known outcomes
    only): the log-likelihood ratio is compared with its null distribution (normal
    approximation, one-sided level ``alpha``). No drift check can beat it; the mean over
    patients bounds the detection rate any method can reach on these diaries.
    """
    from scipy import stats
    from scipy.special import expit, logit

    out = {}
    for patient in truth["patients"]:
        drift = patient["drift"]
        if not drift["kind"]:
            continue
        pid, d = patient["patient_id"], drift["day"]
        q = panel.sel(patient=pid)
        days = np.arange(d, min(d + within, q.sizes["day"]))
        y = q["onset"].values[days]
        days = days[~np.isnan(y)]
        p1 = np.clip(np.asarray(patient["p_attack"], dtype=float)[days], 1e-6, 1 - 1e-6)
        if drift["kind"] == "baseline":
            shift = np.full(days.size, drift["log_odds_shift"])
        else:
            trig = next(t for t in patient["triggers"] if t["feature"] == drift["feature"])
            x = np.nan_to_num(q["value"].sel(feature=drift["feature"]).values[days])
            unit = np.log(drift["odds_ratio_after"]) / trig["contrast"]
            shape = {"threshold": (x >= trig["threshold"]).astype(float),
                     "fall": np.clip(-x, 0.0, None)}.get(trig["shape"], x)
            shift = unit * shape
        p0 = expit(logit(p1) - shift)
        a, b = np.log(p1 / p0), np.log((1 - p1) / (1 - p0))
        mean0, mean1 = np.sum(p0 * a + (1 - p0) * b), np.sum(p1 * a + (1 - p1) * b)
        var0 = np.sum(p0 * (1 - p0) * (a - b) ** 2)
        var1 = np.sum(p1 * (1 - p1) * (a - b) ** 2)
        if var0 <= 0 or var1 <= 0:
            out[pid] = 0.0
            continue
        crit = mean0 + stats.norm.ppf(1 - alpha) * np.sqrt(var0)
        out[pid] = float(stats.norm.sf((crit - mean1) / np.sqrt(var1)))
    return out


def summarise(table: pd.DataFrame) -> dict:
    """Detection within the window, delay, categorisation and false-alarm rate."""
    drifting = table[table["drift"] != "none"]
    post = drifting[drifting["after_drift"]]
    per_patient = post.groupby("patient_id").agg(
        kind=("drift", "first"), detected=("alarm", "any"),
        first=("window_end_day", lambda s: s[post.loc[s.index, "alarm"]].min()),
        day=("drift_day", "first"))
    quiet = table[~table["after_drift"]]
    first_alarm = post[post["alarm"]].groupby("patient_id").first()
    right = {"baseline": "baseline shift"}
    categorised = [
        (row["category"] == right.get(row["drift"], "")) if row["drift"] == "baseline"
        else row["category"] in ("new association", "changed trigger sensitivity")
        for _, row in first_alarm.iterrows()]
    out = {
        "drifting_patients": len(per_patient),
        "detected_within": float(per_patient["detected"].mean()) if len(per_patient) else None,
        "detected_by_kind": per_patient.groupby("kind")["detected"].mean().to_dict(),
        "median_delay_days": float((per_patient["first"] - per_patient["day"]).median())
        if per_patient["detected"].any() else None,
        "categorised_right": float(np.mean(categorised)) if categorised else None,
        "stationary_windows": len(quiet),
        "false_alarm_rate": float(quiet["alarm"].mean()) if len(quiet) else None,
    }
    return out


WITHIN = (42, 90, 120)


def sequential_study(n_patients: int, seed: int, within: tuple[int, ...] = WITHIN,
                     lead: int = 14, n_days: int = 365, alpha: float = 0.05,
                     cache: str | os.PathLike | None = None) -> tuple[pd.DataFrame, dict]:
    """The sequential test (:mod:`migraine_bayes.sequential`) on the study's patients.

    Each patient's twin is fitted on its diary up to ``D - lead`` (as in
    :func:`drift_detection_study`); the CUSUM then runs over every later day up to ``D +
    max(within)``, restarted after each alarm (as a retraining would). Per patient: the days
    after ``D`` to the first alarm; false alarms are alarms before ``D`` (every alarm of a
    stationary patient), counted per 28 monitored days. The oracle's power (a test that knows
    the true probabilities and the drift day) is computed at the false-alarm rate measured.

    Returns one row per patient and the summary (detection within each of ``within`` by drift
    kind and overall, false alarms per 28-day window by kind, the oracle's power).
    """
    from ..drift import monitored_probabilities
    from ..sequential import BLOCK_DAYS, sequential_check

    sc, full, patients = _study(n_patients, seed, lead, n_days, cache)
    rows = []
    for pid, drift, day, cut, _start, twin in patients:
        design = twin.design(full.sel(patient=[pid]))
        end = min(day + max(within), int(full["in_diary"].sel(patient=pid).sum()))
        days = np.arange(cut, end)
        days = days[~np.isnan(design.y[0, days])]
        p = monitored_probabilities(twin, design, 0, days)
        beta = twin.posterior.posterior["beta"].sel(patient=pid).stack(
            s=("chain", "draw")).transpose("s", "feature").values
        res = sequential_check(p, design.y[0, days], design.z_mean[0, days],
                               design.feature_names, beta, np.random.default_rng([seed, 1]),
                               alpha)
        alarm_days = [int(days[a]) for a in res["alarm_days"]]
        before = [a for a in alarm_days if a < day] if drift["kind"] else alarm_days
        after = [a for a in alarm_days if a >= day] if drift["kind"] else []
        quiet_days = int(np.sum(days < day)) if drift["kind"] else int(days.size)
        rows.append({"patient_id": pid, "drift": drift["kind"] or "none",
                     "drift_day": day if drift["kind"] else None, "cut": cut,
                     "false_alarms": len(before), "quiet_windows": quiet_days / BLOCK_DAYS,
                     "first_alarm_after": (after[0] - day + 1) if after else None,
                     "category": res["category"] if after and res["alarm_day"] is not None
                     and int(days[res["alarm_day"]]) >= day else None,
                     "threshold": res["threshold"],
                     "checks_ok": twin.meta["diagnostics"]["ok"]})
    table = pd.DataFrame(rows)
    fa = float(table["false_alarms"].sum() / table["quiet_windows"].sum())
    summary = {"patients": len(table), "drifting_patients": int((table["drift"] != "none").sum()),
               "alpha": alpha, "false_alarms_per_28_days": fa,
               "false_alarms_by_kind": {
                   k: float(g["false_alarms"].sum() / g["quiet_windows"].sum())
                   for k, g in table.groupby("drift")}}
    drifting = table[table["drift"] != "none"]
    for w in within:
        hit = drifting["first_alarm_after"].notna() & (drifting["first_alarm_after"] <= w)
        bound = oracle_power(sc.truth, full, w, alpha=max(fa, 1e-3))
        summary[f"detected_within_{w}"] = float(hit.mean())
        summary[f"detected_within_{w}_by_kind"] = hit.groupby(drifting["drift"]).mean().to_dict()
        summary[f"oracle_power_within_{w}"] = float(np.mean(list(bound.values())))
        summary[f"oracle_power_within_{w}_by_kind"] = {
            k: float(np.mean([bound[p] for p in g["patient_id"] if p in bound]))
            for k, g in drifting.groupby("drift")}
        summary[f"ratio_to_oracle_{w}"] = (summary[f"detected_within_{w}"]
                                           / max(summary[f"oracle_power_within_{w}"], 1e-9))
    first = drifting[drifting["category"].notna()]
    right = [(r.category == "baseline shift") == (r.drift == "baseline")
             for r in first.itertuples()]
    summary["categorised_right"] = float(np.mean(right)) if right else None
    return table, summary


def _study(n_patients: int, seed: int, lead: int, n_days: int,
           cache: str | os.PathLike | None):
    """The studies' cohort (half drifting), its panel, and its patients (lazily).

    Per patient: ``(id, drift, drift day D, cut D - lead, diary start, twin fitted up to the
    cut)``; a stationary patient's D is drawn from the drifts' range.
    """
    sc = simulate_cohort(n_patients, n_days, seed, drift_fraction=0.5,
                         drift_kinds=("baseline", "trigger"))
    rng = np.random.default_rng(seed)
    full = build_panel(sc.cohort, horizon_days=HORIZON_DAYS)
    shared = build_design(full)
    starts = sc.cohort.patients.set_index("patient_id")["diary_start"]

    def patients():
        for truth in sc.truth["patients"]:
            pid, drift = truth["patient_id"], truth["drift"]
            day = drift["day"] if drift["kind"] else int(rng.integers(int(0.4 * n_days),
                                                                      int(0.7 * n_days)))
            start = pd.Timestamp(starts[pid])
            twin = _patient_twin(sc.cohort, pid, day - lead, start, shared, seed, cache)
            yield pid, drift, day, day - lead, start, twin

    return sc, full, patients()


def _patient_twin(cohort, pid: str, cut: int, start: pd.Timestamp, shared, seed: int,
                  cache: str | os.PathLike | None) -> DigitalTwin:
    """The patient's twin fitted on its first ``cut`` days (saved to / read from ``cache``)."""
    stored = None if cache is None else Path(cache) / f"{seed}-{pid}-{cut}"
    if stored is not None and (stored / "twin.json").is_file():
        return DigitalTwin.load(stored)
    with warnings.catch_warnings():  # a failed check is recorded (checks_ok) instead
        warnings.simplefilter("ignore", InferenceWarning)
        twin = DigitalTwin.fit_patient(  # the patient's own tables: its course alone
            truncate(cohort.subset([pid]), start + pd.Timedelta(days=cut - 1)), pid,
            validate=False, features=shared.features, scaling=shared.scaling,
            interventions=shared.interventions)
    if stored is not None:
        twin.save(stored)
    return twin
