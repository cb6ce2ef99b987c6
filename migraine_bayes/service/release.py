"""Cohort statistics released to researchers: closed months, frozen once released, k-thresholds.

A statistic that is recomputed on every request can be differenced: two snapshots around one
diary post differ by one patient-day, and the change of a bin's count and rate (or of a
patient's Brier score) gives that day's forecast and outcome. So the calibration of the
registry's forecasts is released only

- per **closed calendar month** of the days forecast — a month is released once it ended
  :data:`GRACE_DAYS` days ago (late diary entries have come in) —,
- **once**: the release is computed at the first request after that and kept (sealed with the
  key) in the registry's ``.service/releases.json``; later requests return the same numbers,
  whatever is posted afterwards (a late outcome of a released month is not counted),
- with every cell suppressed unless it holds at least :data:`K` forecasts of at least :data:`K`
  patients; per-patient rows (keyed-hash pseudonyms) only for patients with at least :data:`K`
  forecasts, and only in a month with at least :data:`K` patients.

Two releases therefore differ by whole months of at least :data:`K` patients, never by one
patient-day.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock

from migraine_bayes.store import atomic, audit, crypto

K = 5  # patients and forecasts every released cell holds at least
GRACE_DAYS = 14  # a month is released this long after its last day
BINS = 10
FILE = "releases.json"
RULE = (f"calibration per closed calendar month of the days forecast, released {GRACE_DAYS} "
        f"days after the month ends and frozen from then on; every bin holds ≥ {K} forecasts "
        f"of ≥ {K} patients; per-patient rows only with ≥ {K} forecasts, in months of ≥ {K} "
        "patients")


def released_months(today: dt.date) -> str:
    """The last month (``YYYY-MM``) that may be released on ``today``: ended GRACE_DAYS ago."""
    last = today - dt.timedelta(days=GRACE_DAYS)
    closed = (last + dt.timedelta(days=1)).replace(day=1) - dt.timedelta(days=1)
    return f"{closed:%Y-%m}"


def calibration(twin_dirs: list[Path], folder: Path, secret: bytes,
                today: dt.date | None = None) -> dict:
    """Every released month's calibration (computing and freezing the newly releasable ones).

    ``folder``: the registry's service folder (where releases are kept); ``secret``: the key
    of the patients' pseudonyms.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    last = released_months(today)
    path = folder / FILE
    with FileLock(str(folder / f".{FILE}.lock"), mode=0o600):
        stored = json.loads(crypto.read_text(path)) if path.exists() else {}
        frames = [audit.prediction_outcomes(p) for p in twin_dirs]
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["patient_id", "date", "p_attack", "outcome"])
        months = table["date"].astype(str).str[:7]
        new = sorted(m for m in set(months) if m <= last and m not in stored)
        for month in new:
            stored[month] = _release(month, table[months == month], secret, today)
        if new:
            with atomic.atomic_path(path) as tmp:
                tmp.write_bytes(crypto.encode(json.dumps(stored, indent=1).encode("utf-8"),
                                              FILE))
    return {"rule": RULE, "k": K, "released_through": last,
            "months": [stored[m] for m in sorted(stored)]}


def _release(month: str, table: pd.DataFrame, secret: bytes, today: dt.date) -> dict:
    known = table.dropna(subset=["outcome"])
    patients = known["patient_id"].nunique()
    out: dict = {"month": month, "released": str(today)}
    if patients < K:
        return out | {"suppressed": f"fewer than {K} patients with a known outcome"}
    edges = np.linspace(0, 1, BINS + 1)
    which = np.clip(np.digitize(known["p_attack"].astype(float), edges) - 1, 0, BINS - 1)
    bins = []
    for b in range(BINS):
        sel = known[which == b]
        if len(sel) >= K and sel["patient_id"].nunique() >= K:
            bins.append({"p_low": float(edges[b]), "p_high": float(edges[b + 1]),
                         "forecasts": len(sel), "mean_forecast": float(sel["p_attack"].mean()),
                         "observed_rate": float(sel["outcome"].mean())})
    per = [{"patient": crypto.keyed_hash(str(pid), "service pseudonym", secret),
            "forecasts": len(g), "brier": float(((g["p_attack"] - g["outcome"]) ** 2).mean())}
           for pid, g in known.groupby("patient_id") if len(g) >= K]
    return out | {"forecasts_with_outcome": len(known), "patients": int(patients),
                  "bins": bins, "per_patient": sorted(per, key=lambda r: r["patient"])}
