"""A twin walked forward over months as a clinic would run it: update, check, retrain when due.

:func:`monitor` steps from ``start`` over the cohort's days every ``every`` days (the last step
on the cohort's last day). At each step date ``D`` it

1. updates the twin with the days up to ``D`` (particle filter; saved, audited: as ``update``)
   — up to the latent-state horizon (:func:`filter_limit`, ~60 days after the fit) when
   retraining is off: past it the filter would need a refit, and the test goes on without it;
2. runs the sequential drift test (:func:`migraine_bayes.living.drift.check_sequential`: evidence
   accumulated since the fit, false alarms ≤ ``alpha`` per 28 days by construction) and records
   it in the twin's audit trail;
3. applies the retraining policy: retrain after an alarm, or when more than
   ``max_days_since_fit`` (90) diary days have passed since the last fit (the time criterion),
   or when the step reaches past the latent-state horizon.
   Until then the test accumulates evidence against the same fit (past the latent basis's
   horizon, the latent state is integrated out at its stationary distribution). A
   retraining never silently absorbs an unexplained change: its recorded reasons name the alarm
   (category and evidence) or the time criterion together with the drift evidence at that
   moment (statistic against threshold, p-value).

Each step writes one row per patient to ``out`` (:data:`COLUMNS`) and, beside it,
``<out>.walk.json`` (the twin, start, step, last step done). A walk that stops — killed, a
crash — leaves twin, kept versions and audit trail as the last completed write left them
(each is atomic); started again with the same twin, start and step, it continues after the last
step done.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from migraine_bayes.cohort.io import Cohort
from migraine_bayes.cohort.truncate import truncate
from migraine_bayes.errors import MigraineBayesError
from migraine_bayes.living.drift import check_sequential
from migraine_bayes.living.retraining import days_since_fit, retrain
from migraine_bayes.living.transaction import update_saved
from migraine_bayes.store import atomic, audit
from migraine_bayes.store.locking import real_path, twin_lock
from migraine_bayes.twin.core import DigitalTwin

COLUMNS = ["patient_id", "date", "alarm", "category", "statistic", "p_value", "evidence",
           "twin_version", "retrained"]


class MonitorError(MigraineBayesError):
    """A walk cannot start as asked (a start inside the twin's data, another walk's file)."""


@dataclass(frozen=True)
class MonitorPolicy:
    """The walk's step and retraining policy."""

    every: int = 7
    max_days_since_fit: int = 90
    retrain: bool = True
    alpha: float = 0.05


def walk_file(out: str | os.PathLike) -> Path:
    """Where a walk records its progress beside ``out``."""
    out = Path(out)
    return out.with_name(out.name + ".walk.json")


def steps(cohort: Cohort, start: pd.Timestamp, every: int) -> list[pd.Timestamp]:
    """Step dates: ``start``, every ``every`` days, and the cohort's last diary day."""
    last = pd.Timestamp(cohort.diary_periods()["end"].max()).normalize()
    if start > last:
        raise MonitorError(f"--start {start.date()} is after the cohort's last diary day "
                           f"{last.date()}: nothing to walk over")
    dates = list(pd.date_range(start, last, freq=f"{every}D"))
    if dates[-1] < last:
        dates.append(last)
    return dates


def monitor(twin: str | os.PathLike, cohort: Cohort, start: str, out: str | os.PathLike,
            policy: MonitorPolicy | None = None, seed: int = 0, progress=None
            ) -> pd.DataFrame:
    """Walk the twin at ``twin`` forward over ``cohort`` (module text); returns every row.

    ``start`` (YYYY-MM-DD) must be after the last day the twin has seen. ``out`` gets the rows
    (CSV, rewritten atomically after each step); a walk of the same twin, start and step found
    there is continued.
    """
    policy = policy or MonitorPolicy()
    if policy.every < 1:
        raise MonitorError(f"--every must be at least 1 day, got {policy.every}")
    try:
        first = pd.Timestamp(pd.to_datetime(start, format="%Y-%m-%d")).normalize()
    except ValueError:
        raise MonitorError(f"--start must be a date YYYY-MM-DD, got {start!r}") from None
    plan = {"twin": str(real_path(twin)), "start": str(first.date()),
            "every": policy.every, "policy": asdict(policy), "seed": seed}
    rows, done = _resume(out, plan)
    if done is None:
        seen = _last_seen(DigitalTwin.load(twin))
        if first <= seen:
            raise MonitorError(f"--start {first.date()} is not after the last day the twin has "
                               f"seen ({seen.date()}); start the walk after it")
    dates = steps(cohort, first, policy.every)
    say = progress or (lambda *_a: None)
    for k, date in enumerate(dates):
        if done is not None and date <= done:
            continue
        say("monitoring", k, len(dates))
        rows += _step(twin, cohort, date, policy, seed + k)  # step k's seed, rerun or not
        atomic.write_text(out, pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False))
        atomic.write_text(walk_file(out), json.dumps(plan | {"done": str(date.date())}))
    say("monitoring", len(dates), len(dates))
    return pd.DataFrame(rows, columns=COLUMNS)


def _resume(out: str | os.PathLike, plan: dict) -> tuple[list[dict], pd.Timestamp | None]:
    """Rows already written by this walk and its last step done (None: a new walk)."""
    record = walk_file(out)
    if not record.is_file() or not Path(out).is_file():
        return [], None
    stored = json.loads(record.read_text())
    if {k: stored.get(k) for k in plan} != plan:
        raise MonitorError(f"{out} holds another walk (twin, start, step or policy differ: "
                           f"{record}); choose another --out or remove both files")
    done = pd.Timestamp(stored["done"])
    table = pd.read_csv(out, dtype={"patient_id": str})
    table = table[pd.to_datetime(table["date"]) <= done]  # rows of a step killed mid-write
    return table.to_dict(orient="records"), done


def _last_seen(twin: DigitalTwin) -> pd.Timestamp:
    """The last diary day the twin has seen (fitted or filtered), over its patients."""
    panel = twin.panel
    days = panel["in_diary"].sum("day").values - 1
    dates = panel["date"].values
    return max(pd.Timestamp(dates[i, d]) for i, d in enumerate(days) if d >= 0)


def _step(twin: str | os.PathLike, cohort: Cohort, date: pd.Timestamp, policy: MonitorPolicy,
          seed: int) -> list[dict]:
    """One step of the walk at ``date`` (module text); its rows."""
    now = truncate(cohort, date)
    with twin_lock(twin):
        limit = filter_limit(DigitalTwin.load(twin))
        update_saved(twin, now if date <= limit else truncate(cohort, limit), seed=seed,
                     retrain_when_due=False)
        t = DigitalTwin.load(twin)
        checks = check_sequential(t, now, end=str(date.date()), alpha=policy.alpha, seed=seed)
        version = float(t.record.version)
        audit.record_event(twin, version, "monitor", {
            "date": str(date.date()), "checks": {c["patient_id"]: {
                k: c[k] for k in ("alarm", "category", "statistic", "threshold", "p_value")}
                for c in checks}})
        reasons = _reasons(t, checks, policy, horizon=limit if date > limit else None)
        retrained = bool(reasons) and policy.retrain
        if retrained:
            retrain(twin, now, reasons, seed=seed)
    return [{"patient_id": c["patient_id"], "date": str(date.date()), "alarm": c["alarm"],
             "category": c["category"], "statistic": c["statistic"], "p_value": c["p_value"],
             "evidence": c["evidence"], "twin_version": version, "retrained": retrained}
            for c in checks]


def _reasons(twin: DigitalTwin, checks: list[dict], policy: MonitorPolicy,
             horizon: pd.Timestamp | None = None) -> list[str]:
    """Why the twin is retrained at this step (empty: it is not), in words for the audit.

    ``horizon``: the twin's latent-state horizon (:func:`filter_limit`, which only a refit
    moves) when the step's date is past it, else None.
    """
    alarms = [c for c in checks if c["alarm"]]
    if alarms:
        return [f"drift alarm ({c['category']}) for a patient: {c['evidence']}"
                for c in alarms]
    since = days_since_fit(twin)
    if since <= policy.max_days_since_fit and horizon is None:
        return []
    worst = max(checks, key=lambda c: c["statistic"] / c["threshold"]
                if c["threshold"] == c["threshold"] else 0.0)
    why = (f"time criterion: {since} diary days since the last fit (policy: "
           f"{policy.max_days_since_fit})" if since > policy.max_days_since_fit else
           f"latent-state horizon: the filter cannot go past {horizon.date()} "
           "without a refit")
    return [f"{why}; drift evidence absorbed by this retraining: the "
            f"largest CUSUM {worst['statistic']:.2f} against its alarm threshold "
            f"{worst['threshold']:.2f} (p = {worst['p_value']:.2f}), no alarm"]


def filter_limit(twin: DigitalTwin) -> pd.Timestamp:
    """The last date to which the twin's filter can follow every patient without a refit.

    The latent basis covers ``center + half`` days from each diary's start
    (:attr:`DigitalTwin.domain`); :meth:`DigitalTwin.update` refuses days past it. Without
    retraining, a walk filters up to this date and tests every later day against the fit
    (the sequential test carries each draw's latent state forward as an AR(1) there).
    """
    center, half, _ = twin.domain
    last = int(np.floor(center + half - 1))
    starts = pd.to_datetime(twin.panel["date"].isel(day=0).values)
    return min(starts) + pd.Timedelta(days=last)


__all__ = ["COLUMNS", "MonitorError", "MonitorPolicy", "filter_limit", "monitor", "steps",
           "walk_file"]
