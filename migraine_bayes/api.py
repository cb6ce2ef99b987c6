"""Python API behind the command line: one function per ``migraine-twin`` command."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd

from . import atomic, audit
from .drift import check_drift
from .evaluation import SBCResult
from .inference import COHORT_SETTINGS, PATIENT_SETTINGS
from .io import Cohort, load_cohort
from .retraining import retrain, retraining_reasons
from .state import build_panel, summarise_panel
from .synthetic import SyntheticCohort, simulate_cohort
from .twin import DigitalTwin


def validate_data(cohort: str | os.PathLike) -> Cohort:
    """Load and validate a cohort folder; raises ``InputDataError`` listing every problem."""
    return load_cohort(cohort)


def generate(out: str | os.PathLike, patients: int = 12, days: int = 365, seed: int = 0,
             observations_format: str = "parquet", **options: object) -> SyntheticCohort:
    """Simulate a synthetic cohort and write it (SCHEMA.md files plus ``truth.json``) to ``out``."""
    sc = simulate_cohort(patients, days, seed, **options)
    sc.write(out, observations_format=observations_format)
    return sc


def cohort_summary(cohort: str | os.PathLike | Cohort) -> pd.DataFrame:
    """Per-patient summary (days, known days, attacks/month, coverage) of a cohort."""
    if not isinstance(cohort, Cohort):
        cohort = load_cohort(cohort)
    return summarise_panel(build_panel(cohort))


def demo(out: str | os.PathLike = "reports/demo", seed: int = 20261125) -> pd.DataFrame:
    """Generate a synthetic cohort under ``out/cohort``, load it and summarise it."""
    folder = Path(out) / "cohort"
    generate(folder, patients=12, days=365, seed=seed)
    return cohort_summary(folder)


def fit(cohort: str | os.PathLike, out: str | os.PathLike, patients: list[str] | None = None,
        seed: int = 0, draws: int | None = None, chains: int | None = None,
        outcome: str = "onset", validate: bool | None = None) -> DigitalTwin:
    """Fit a twin and save it to ``out``: one patient → patient model, several → hierarchy.

    ``validate`` (time-ordered holdout, a second fit) defaults to on for one patient and off
    for a cohort, where it would double the fitting time.
    """
    c = load_cohort(cohort)
    ids = patients or c.patient_ids
    unknown = sorted(set(ids) - set(c.patient_ids))
    if unknown:
        raise KeyError(f"unknown patient ids {unknown}; available: {c.patient_ids}")
    base = PATIENT_SETTINGS if len(ids) == 1 else COHORT_SETTINGS
    settings = dataclasses.replace(base, seed=seed, draws=draws or base.draws,
                                   chains=chains or base.chains)
    if len(ids) == 1:
        twin = DigitalTwin.fit_patient(c, ids[0], outcome=outcome, settings=settings,
                                       validate=True if validate is None else validate)
    else:
        twin = DigitalTwin.fit_cohort(c, ids, outcome=outcome, settings=settings,
                                      validate=bool(validate))
    twin.save(out)
    audit.record_event(out, twin.meta["version"], "fit", {
        "patients": len(ids), "checks_ok": twin.meta["diagnostics"]["ok"]})
    _record_outcomes(out, twin.panel, twin.meta["outcome"])
    return twin


def forecast(twin: str | os.PathLike | DigitalTwin, cohort: str | os.PathLike | None = None,
             date: str | None = None, horizon: int = 1) -> pd.DataFrame:
    """Forecast table (SCHEMA.md) from a twin, optionally on newer cohort data.

    A twin given by its directory records every forecast in its audit trail, with the twin
    version and a hash of the data the forecast used.
    """
    t = twin if isinstance(twin, DigitalTwin) else DigitalTwin.load(twin)
    c = load_cohort(cohort) if cohort is not None else None
    if isinstance(twin, DigitalTwin):
        return t.forecast(c, date=date, horizon=horizon)
    panel = t.data_panel(c, date)  # built once: forecast and the audit's data hash
    table = t.forecast_panel(panel, horizon)
    hashes = {pid: audit.data_hash(panel["imputed"].sel(patient=pid).values,
                                   panel["onset"].sel(patient=pid).values)
              for pid in t.patients}
    audit.record_forecasts(twin, table, t.meta["version"], hashes)
    return table


def update(twin: str | os.PathLike, cohort: str | os.PathLike, seed: int = 0,
           retrain_when_due: bool = True) -> dict:
    """Filter a saved twin over new diary days, save it, audit it; retrain if the policy says.

    Returns the new days' one-step forecasts (``days``), the filter's adaptations, the
    retraining reasons and, when retrained, the new version.
    """
    t = DigitalTwin.load(twin)
    c = load_cohort(cohort)
    table = t.update(c, seed=seed)
    reasons = retraining_reasons(t, recent=table)
    t.save(twin)
    _record_outcomes(twin, t.panel, t.meta["outcome"])
    audit.record_event(twin, t.meta["version"], "update", {
        "new_days": len(table), "adaptations": t.meta["filter"]["adaptations"],
        "retrain_reasons": reasons})
    new_version = None
    if reasons and retrain_when_due:
        new_version = retrain(twin, c, reasons, seed=seed).meta["version"]
    return {"days": table, "adaptations": t.meta["filter"]["adaptations"],
            "retrain_reasons": reasons, "new_version": new_version}


def drift(twin: str | os.PathLike, cohort: str | os.PathLike | None = None,
          window: int = 28, seed: int = 0, out: str | os.PathLike | None = None) -> list[dict]:
    """Drift checks of a saved twin on its last ``window`` days (JSON to ``out``); audited."""
    import json

    t = DigitalTwin.load(twin)
    checks = check_drift(t, load_cohort(cohort) if cohort is not None else None, window,
                         seed=seed)
    audit.record_event(twin, t.meta["version"], "drift", {
        c["patient_id"]: {"alarm": c["alarm"], "category": c["category"]} for c in checks})
    if out is not None:
        atomic.write_text(out, json.dumps(checks, indent=1))
    return checks


def _record_outcomes(twin_dir: str | os.PathLike, panel, outcome: str) -> None:
    """Every known outcome of the panel's diary days into the audit trail (first value wins)."""
    rows = []
    for pid in panel["patient"].values:
        p = panel.sel(patient=pid)
        known = p["in_diary"].values & ~np.isnan(p[outcome].values)
        dates = pd.to_datetime(p["date"].values[known]).date
        rows += [(str(pid), str(d), int(y)) for d, y in zip(dates, p[outcome].values[known],
                                                             strict=True)]
    audit.record_outcomes(twin_dir, pd.DataFrame(rows, columns=["patient_id", "date",
                                                                "outcome"]))


def sbc(out: str | os.PathLike, replicates: int = 200, seed: int = 0,
        cohort: str | os.PathLike = "data/synthetic", days: int = 180) -> SBCResult:
    """Simulation-based calibration of the single-patient model; histogram and ranks to ``out``."""
    from .evaluation import run_sbc
    from .model import FeatureSpec, build_design, model_data

    c = load_cohort(cohort)
    panel = build_panel(c, patients=c.patient_ids[:1]).isel(day=slice(0, days))
    features = [f for f in (FeatureSpec("trigger.stress", "trigger.stress"),
                            FeatureSpec("derived.sleep_debt", "derived.sleep_debt"))
                if f.source in panel["feature"].values]
    design = build_design(panel, features=features)
    result = run_sbc(model_data(design), design, replicates=replicates, seed=seed)
    out = Path(out)
    result.histogram(out / "sbc_ranks.png")
    with atomic.atomic_path(out / "sbc_ranks.csv") as tmp:
        result.ranks.to_csv(tmp, index=False)
    return result


def simulate(twin: str | os.PathLike, scenarios: str | os.PathLike | list[dict],
             horizon: int = 30, draws: int = 2000, seed: int = 0,
             patients: list[str] | None = None, out: str | os.PathLike | None = None) -> dict:
    """Compare scenarios with the no-intervention baseline (SCHEMA.md's simulate JSON).

    Every scenario is checked before anything is simulated; with ``out`` the JSON is written
    atomically.
    """
    import json

    from .interventions import compare, comparison_json, parse_scenarios

    model = DigitalTwin.load(twin)
    parsed = parse_scenarios(scenarios)
    result = comparison_json(compare(model, parsed, horizon, draws, seed, patients), str(twin),
                             horizon, draws, seed)
    if out is not None:
        atomic.write_text(out, json.dumps(result, indent=1))
    return result
