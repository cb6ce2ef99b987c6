"""The one place a saved twin changes: a fit saved as a new version, or new diary days filtered.

Every front end — the Python API (``migraine-twin fit`` and ``update``), the service's diary
posts and the ``monitor`` walk — goes through these two transactions, so the rules live once:

- :func:`save_fit`: under the twin's lock, the target is checked again
  (:func:`~migraine_bayes.twin.store.twin_target`: the same patients' twin becomes the
  previous version, anything else needs ``force``), and the twin is saved with its ``fit``
  audit row and every known outcome it was fitted on, committed together.
- :func:`update_saved`: under the twin's lock, the twin is loaded, filtered over the new days
  (:meth:`~migraine_bayes.twin.DigitalTwin.update`), offered to the caller's ``accept`` (which
  may refuse the days before anything is written), saved with its ``update`` audit row, and
  retrained when the policy says so (:mod:`.retraining`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from migraine_bayes.cohort.io import Cohort
from migraine_bayes.living.retraining import retrain, retraining_reasons
from migraine_bayes.store import audit
from migraine_bayes.store.locking import twin_lock
from migraine_bayes.twin import DigitalTwin
from migraine_bayes.twin.store import twin_target

REWRITTEN = "the history the twin was fitted on was rewritten"


@dataclass
class UpdateResult:
    """What :func:`update_saved` did.

    ``days``: the new days' one-step forecasts (:meth:`~migraine_bayes.twin.DigitalTwin.update`);
    ``adaptations``: the filter's resamplings per patient; ``retrain_reasons``; the history
    changes accepted (``history_rewritten``); ``new_version`` when retrained, else None.
    """

    twin: DigitalTwin
    days: pd.DataFrame
    adaptations: dict
    retrain_reasons: list[str]
    history_rewritten: list[dict]
    new_version: float | None

    def as_dict(self) -> dict:
        """The result without the twin (what ``api.update`` returns)."""
        return {"days": self.days, "adaptations": self.adaptations,
                "retrain_reasons": self.retrain_reasons,
                "history_rewritten": self.history_rewritten, "new_version": self.new_version}


def outcome_rows(panel: xr.Dataset, outcome: str) -> list[tuple[str, str, int]]:
    """Every known outcome of the panel's diary days, for the audit trail (first value wins)."""
    rows = []
    for pid in panel["patient"].values:
        p = panel.sel(patient=pid)
        known = p["in_diary"].values & ~np.isnan(p[outcome].values)
        dates = pd.to_datetime(p["date"].values[known]).date
        rows += [(str(pid), str(d), int(y)) for d, y in zip(dates, p[outcome].values[known],
                                                             strict=True)]
    return rows


def save_fit(twin: DigitalTwin, out: str | os.PathLike, patients: list[str],
             force: bool = False) -> DigitalTwin:
    """Save a freshly fitted ``twin`` of ``patients`` to ``out``, audited (module text)."""
    with twin_lock(out):
        previous = twin_target(out, patients, force)
        if previous is not None:
            twin.record = twin.record.replace(version=float(int(previous.version)) + 1.0,
                                              previous_version=previous.version)
        record = twin.record
        detail = {"patients": len(patients), "checks_ok": record.diagnostics["ok"],
                  "previous_version": record.previous_version}
        twin.save(out, keep_previous=previous is not None, journal=audit.journal(
            uuid.uuid4().hex, [(record.version, "fit", detail)],
            outcome_rows(twin.panel, record.outcome)))
    return twin


def update_saved(path: str | os.PathLike, cohort: Cohort | Callable[[], Cohort],
                 seed: int = 0, rewrite_history: bool = False, retrain_when_due: bool = True,
                 accept: Callable[[DigitalTwin, pd.DataFrame], dict | None] | None = None,
                 detail: dict | None = None) -> UpdateResult:
    """Filter the saved twin at ``path`` over ``cohort``'s new days, save and audit it.

    ``cohort`` may be a function, called under the lock (the service combines the diary
    posted so far with the new post there). ``accept(twin, days)`` sees the updated twin
    before it is saved: it raises to refuse the update (nothing is written), or returns more
    fields for the audit row. ``detail``: fields added to the audit row (who, via what).
    A cohort whose past days differ from what the twin has seen is refused
    (:class:`~migraine_bayes.twin.HistoryError`, naming the first difference) unless
    ``rewrite_history``; the changes accepted are recorded in the audit row.
    """
    with twin_lock(path):
        data = cohort() if callable(cohort) else cohort
        twin = DigitalTwin.load(path)
        table = twin.update(data, seed=seed, rewrite_history=rewrite_history)
        changes = table.attrs.get("history_changes", [])
        extra = (accept(twin, table) if accept is not None else None) or {}
        reasons = retraining_reasons(twin, recent=table)
        if any(ch.get("fitted") for ch in changes):
            reasons.append(REWRITTEN)
        record = twin.record
        row = {"new_days": len(table), "adaptations": record.filter["adaptations"],
               "retrain_reasons": reasons, "history_rewritten": changes,
               **(detail or {}), **extra}
        twin.save(path, journal=audit.journal(uuid.uuid4().hex,
                                              [(record.version, "update", row)],
                                              outcome_rows(twin.panel, record.outcome)))
        new_version = None
        if reasons and retrain_when_due:
            new_version = retrain(path, data, reasons, seed=seed).record.version
    return UpdateResult(twin, table, record.filter["adaptations"], reasons, changes,
                        new_version)
