"""Has the past changed? Compare the days a twin has seen with the same days in new data.

An update must extend a diary, not rewrite it: a deleted attack or an edited measurement in days
the twin has already used would leave the twin disagreeing with its own audit trail. The
comparison covers the outcomes (``onset``, ``headache_day``) and every measured variable's
daily value (registry categories; derived and calendar features follow from those).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from migraine_bayes.cohort.registry import CATEGORIES
from migraine_bayes.dims import DAY, FEATURE, PATIENT

OUTCOMES = ("onset", "headache_day")


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise equality with NaN equal to NaN and a relative tolerance of 1e-9."""
    both_nan = np.isnan(a) & np.isnan(b)
    close = np.isclose(a, b, rtol=1e-9, atol=1e-12)
    return both_nan | np.where(np.isnan(a) | np.isnan(b), False, close)


def _show(x: float) -> str:
    return "missing" if np.isnan(x) else f"{x:g}"


def first_changes(old: xr.Dataset, new: xr.Dataset, seen: dict[str, int],
                  fitted: dict[str, int]) -> list[dict]:
    """The first differing day of each patient within the days the twin has seen.

    Parameters
    ----------
    old, new : Dataset
        The twin's daily panel and the panel of the new data (:func:`build_panel`).
    seen : dict
        Patient → number of diary days the twin has seen (days ``0 … seen - 1`` compared).
    fitted : dict
        Patient → number of diary days the posterior was fitted on (a change there makes the
        posterior itself stale).

    Returns
    -------
    list of dict
        ``patient_id, date, what, was, now, fitted`` — one per patient whose past changed.

    """
    measured = [f for f in old[FEATURE].values if str(f).partition(".")[0] in CATEGORIES]
    out = []
    for pid, n in seen.items():
        if n <= 0 or pid not in new[PATIENT].values:
            continue
        o, w = old.sel({PATIENT: pid}).isel({DAY: slice(0, n)}), new.sel({PATIENT: pid})
        w = w.isel({DAY: slice(0, min(n, w.sizes[DAY]))})
        n = min(n, w.sizes[DAY])
        columns = [(name, o[name].values[:n], w[name].values[:n]) for name in OUTCOMES]
        new_features = set(w[FEATURE].values)
        for f in measured:
            was = o["value"].sel({FEATURE: f}).values[:n]
            now = (w["value"].sel({FEATURE: f}).values[:n] if f in new_features
                   else np.full(n, np.nan))
            columns.append((str(f), was, now))
        first = None
        for name, was, now in columns:
            bad = np.flatnonzero(~_same(np.asarray(was, float), np.asarray(now, float)))
            if bad.size and (first is None or bad[0] < first[0]):
                first = (int(bad[0]), name, float(was[bad[0]]), float(now[bad[0]]))
        if first is not None:
            day, name, was_v, now_v = first
            out.append({"patient_id": str(pid),
                        "date": str(pd.Timestamp(o["date"].values[day]).date()),
                        "what": name, "was": _show(was_v), "now": _show(now_v),
                        "fitted": day < fitted.get(pid, 0)})
    return out


def describe(change: dict) -> str:
    """One change in words."""
    return (f"patient {change['patient_id']}, {change['date']}: {change['what']} was "
            f"{change['was']}, the new data say {change['now']}")
