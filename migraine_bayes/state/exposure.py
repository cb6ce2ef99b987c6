"""Exposure profiles: how much of a treatment's effect is present on each day (0–1).

A course starting on day ``s`` and ending on day ``e`` has exposure
``1 - exp(-(t - s + 1) / tau_on)`` from ``s`` (ramp-up) and decays as
``E(e) * exp(-(t - e) / tau_off)`` after ``e`` (wash-out). Default time constants per kind:
preventives act over weeks (CGRP antibodies separate from placebo within the first month;
topiramate is titrated over about 4 weeks — MIGR-001), behavioural programmes over about a week,
acute drugs are exposure only on the days of use.
"""

from __future__ import annotations

import numpy as np

# kind -> (tau_on, tau_off) in days; 0 means a step
TIME_CONSTANTS: dict[str, tuple[float, float]] = {
    "preventive": (14.0, 30.0),
    "behavioral": (7.0, 14.0),
    "acute": (0.0, 0.0),
}


def exposure_profile(days: np.ndarray, start: float, end: float | None,
                     tau_on: float, tau_off: float) -> np.ndarray:
    """Exposure on integer ``days`` for one course (``end`` inclusive; ``None`` = ongoing).

    Parameters
    ----------
    days : ndarray of int, shape (n,)
        Day indices.
    start, end : float
        First and last day of the course, on the same axis as ``days``.
    tau_on, tau_off : float
        Ramp-up and wash-out time constants in days (0 = step).

    """
    days = np.asarray(days, dtype=float)
    since = days - start + 1.0
    if tau_on > 0:
        ramp = 1.0 - np.exp(-np.clip(since, 0.0, None) / tau_on)
    else:
        ramp = np.ones_like(days)
    ramp = np.where(since > 0, ramp, 0.0)
    if end is None:
        return ramp
    at_end = (1.0 - np.exp(-(end - start + 1.0) / tau_on)) if tau_on > 0 else 1.0
    after = days - end
    if tau_off > 0:
        decay = at_end * np.exp(-np.clip(after, 0, None) / tau_off)
    else:
        decay = np.zeros_like(days)
    return np.where(after > 0, decay, ramp)
