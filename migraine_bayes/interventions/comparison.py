"""Compare scenarios against the no-intervention baseline: risk reduction, timing, ranking.

All scenarios of a patient are simulated by one :class:`~.simulation.PatientSimulator`, on
common random numbers. Per posterior draw ``s`` a scenario's expected attacks over the horizon
``A_s`` give the relative risk reduction ``1 - A_s / A_s(baseline)``; its 90% interval is over
draws. ``p_best`` is the share of draws in which a scenario has the fewest expected attacks
(among scenarios not excluded by a clinician). Time to benefit is the first day on which the
daily risk reduction reaches half its largest value; duration of effect, the number of days it
stays at or above that level — both only for a scenario at least 80% likely to reduce attacks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from migraine_bayes import __version__
from migraine_bayes.interventions.encoding import BASELINE, Scenario
from migraine_bayes.interventions.recommend import recommendation
from migraine_bayes.interventions.simulation import (
    PatientSimulator,
    ScenarioRun,
    _summary,
    check_scenarios,
    check_settings,
    daily_table,
)
from migraine_bayes.twin.core import DigitalTwin

MIN_BENEFIT = 0.01  # daily risk reduction below which a scenario has no benefit to time


@dataclass
class PatientComparison:
    """One patient's comparison: the runs (baseline first) and their summaries."""

    patient: str
    simulator: PatientSimulator
    runs: list[ScenarioRun]
    summaries: list[dict]

    def summary(self, name: str) -> dict:
        """The summary of scenario ``name``."""
        return next(s for s in self.summaries if s["name"] == name)


def compare(twin: DigitalTwin, scenarios: list[Scenario], horizon_days: int = 30,
            n_draws: int = 2000, seed: int = 0, patients: list[str] | None = None
            ) -> list[PatientComparison]:
    """Simulate the baseline and every scenario for each patient, and rank them.

    Every scenario is checked for every patient (unknown covariates, a drug already taken)
    before anything is simulated.
    """
    patients = twin.patients if patients is None else patients
    for pid in patients:
        check_settings(twin, pid, horizon_days, n_draws)
        check_scenarios(twin, pid, scenarios)
    return [_compare_one(twin, pid, scenarios, horizon_days, n_draws, seed) for pid in patients]


def _compare_one(twin: DigitalTwin, patient: str, scenarios: list[Scenario], horizon: int,
                 n_draws: int, seed: int) -> PatientComparison:
    sim = PatientSimulator(twin, patient, horizon, n_draws, seed)
    runs = [sim.run(None), *[sim.run(sc) for sc in scenarios]]
    base = runs[0]
    ranked = [r for r in runs if not _excluded(r.scenario)]
    attacks = np.stack([r.attacks for r in ranked])  # (C, S)
    best = np.bincount(attacks.argmin(0), minlength=len(ranked)) / attacks.shape[1]
    p_best = {r.name: float(b) for r, b in zip(ranked, best, strict=True)}
    order = sorted(ranked, key=lambda r: float(r.attacks.mean()))
    rank = {r.name: i + 1 for i, r in enumerate(order)}
    summaries = []
    for run in runs:
        rrr = 1.0 - run.attacks / base.attacks
        daily = 1.0 - run.p.mean(0) / base.p.mean(0)
        reduced = None if run.scenario is None else float((rrr > 0).mean())
        onset, duration = _timing(daily) if reduced is not None and reduced >= 0.8 else (None, 0)
        table = daily_table(sim, run)
        entry = {
            "name": run.name,
            "interventions": [] if run.scenario is None else [
                i.to_dict() for i in run.scenario.interventions],
            "pathways": [] if run.scenario is None else run.scenario.pathways,
            "daily": [{"date": str(d), "day": int(k), "p_attack": float(p), "p_low": float(lo),
                       "p_high": float(hi)} for d, k, p, lo, hi in table.itertuples(
                           index=False)],
            "expected_attacks": _summary(run.attacks),
            "relative_risk_reduction": None if run.scenario is None else _summary(rrr),
            "p_risk_reduced": reduced,
            "time_to_benefit_days": onset, "duration_of_effect_days": duration,
            "p_best": p_best.get(run.name), "rank": rank.get(run.name),
            "evidence": run.evidence,
        }
        if run.pain_free is not None:
            entry["pain_free_2h"] = _summary(run.pain_free)
            entry["expected_pain_free_attacks"] = _summary(run.attacks * run.pain_free)
        if run.scenario is not None and run.scenario.override is not None:
            o = run.scenario.override
            entry["override"] = {"status": o.status, "reason": o.reason, "by": o.by}
        entry["recommendation"] = None if run.scenario is None else recommendation(
            entry, run.scenario, twin, patient)
        summaries.append(entry)
    return PatientComparison(patient, sim, runs, summaries)


def _excluded(scenario: Scenario | None) -> bool:
    return scenario is not None and scenario.override is not None and (
        scenario.override.status == "excluded")


def _timing(daily: np.ndarray) -> tuple[int | None, int]:
    """Days to half the largest daily risk reduction, and days at or above it."""
    top = float(daily.max())
    if top < MIN_BENEFIT:
        return None, 0
    above = daily >= top / 2.0
    return int(np.flatnonzero(above)[0] + 1), int(above.sum())


def comparison_json(comparisons: list[PatientComparison], twin_path: str | None,
                    horizon_days: int, n_draws: int, seed: int) -> dict:
    """The ``migraine-twin simulate`` JSON of docs/SCHEMA.md (plus evidence and overrides)."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    overrides = [
        {"patient_id": c.patient, "scenario": s["name"], **s["override"], "recorded_at": now}
        for c in comparisons for s in c.summaries if "override" in s]
    return {
        "twin": twin_path, "created": now, "package_version": __version__,
        "horizon_days": horizon_days, "n_draws": n_draws, "seed": seed,
        "baseline": BASELINE,
        "method": ("forward simulation over posterior draws; covariates resampled from the "
                   "patient's own diary unless a scenario changes them; common random numbers "
                   "across scenarios; intervals are 90% posterior intervals"),
        "patients": [{
            "patient_id": c.patient,
            "ranking": [s["name"] for s in sorted(
                (s for s in c.summaries if s["rank"] is not None), key=lambda s: s["rank"])],
            "scenarios": c.summaries,
        } for c in comparisons],
        "overrides": overrides,
    }
