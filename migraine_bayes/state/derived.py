"""Derived daily features (``derived.<name>``), computed per patient from daily arrays.

All functions take arrays of shape (n_patients, n_days) with NaN for missing days and return the
same shape; nothing looks into the future, so every derived value is available at the end of
its own day (forecasting tomorrow never uses tomorrow).
"""

from __future__ import annotations

import numpy as np

SLEEP_WINDOW = 14  # days of personal sleep history that define "usual" sleep
SLEEP_MIN_HISTORY = 3


def _lag(x: np.ndarray, k: int = 1) -> np.ndarray:
    out = np.full_like(x, np.nan)
    out[:, k:] = x[:, :-k]
    return out


def pressure_change(pressure: np.ndarray) -> np.ndarray:
    """Day-to-day change in mean barometric pressure, hPa (negative = falling).

    Attacks cluster after falls of more than 5 hPa (Kimoto et al. 2011; Okuma et al. 2015).
    """
    return pressure - _lag(pressure)


def stress_letdown(stress: np.ndarray) -> np.ndarray:
    """Drop in self-rated stress from yesterday to today, points on the 0–10 scale (≥ 0).

    A decline in stress raised onset risk in the next 6–18 h, OR 1.5–1.9 (Lipton et al. 2014).
    """
    return np.clip(_lag(stress) - stress, 0.0, None)


def sleep_debt(sleep: np.ndarray) -> np.ndarray:
    """Hours slept below the patient's usual amount (median of the previous 14 days), ≥ 0.

    Deviation from usual sleep matters more than hours slept (Stanyer et al. 2023). Needs at least
    3 nights of history, else NaN.
    """
    n_pat, n_days = sleep.shape
    padded = np.concatenate([np.full((n_pat, SLEEP_WINDOW), np.nan), sleep], axis=1)
    window = np.lib.stride_tricks.sliding_window_view(padded, SLEEP_WINDOW, axis=1)[:, :n_days]
    enough = np.sum(~np.isnan(window), axis=-1) >= SLEEP_MIN_HISTORY  # (P, T): night t's 14
    usual = np.full(sleep.shape, np.nan)
    usual[enough] = np.nanmedian(window[enough], axis=-1)
    return np.clip(usual - sleep, 0.0, None)


def days_since_attack(onset: np.ndarray) -> np.ndarray:
    """Days since the last recorded attack onset before today (1 = yesterday); NaN before any.

    ``onset`` is 1/0/NaN; unknown days count as attack-free here (the last *recorded* attack).
    """
    n_pat, n_days = onset.shape
    out = np.full(onset.shape, np.nan)
    last = np.full(n_pat, np.nan)
    for t in range(n_days):
        out[:, t] = t - last
        last = np.where(onset[:, t] == 1, t, last)
    return out


def yesterday_unrecorded(outcome: np.ndarray) -> np.ndarray:
    """1 where yesterday's outcome is unknown (no diary that day, or before the diary), else 0.

    ``outcome`` is 1/0/NaN. The days since the last recorded event count an unrecorded day
    as event-free; on the day after one, this indicator lets the model learn what that hides
    (an unrecorded headache yesterday makes one today likelier, when headaches persist).
    """
    out = np.ones(outcome.shape)
    out[:, 1:] = np.isnan(outcome[:, :-1]).astype(float)
    return out


def cycle_day(menstruation: np.ndarray) -> np.ndarray:
    """Day of the menstrual cycle (1 = first recorded day of bleeding); NaN before the first.

    A cycle starts on a day with menstruation = 1 whose previous day was not 1.
    """
    n_pat, n_days = menstruation.shape
    out = np.full(menstruation.shape, np.nan)
    start = np.full(n_pat, np.nan)
    prev = np.zeros(n_pat, dtype=bool)
    for t in range(n_days):
        bleeding = menstruation[:, t] == 1
        start = np.where(bleeding & ~prev, t, start)
        out[:, t] = t - start + 1
        prev = bleeding
    return out


# Medication overuse headache (ICHD-3 8.2): acute drugs on ≥ 10 days a month (triptans, ergots,
# opioids, combination analgesics) or ≥ 15 days (simple analgesics) for more than 3 months
OVERUSE_WINDOW = 30
OVERUSE_MIN_HISTORY = 14
ICHD3_OVERUSE_DAYS = {"triptan, ergot, opioid or combination analgesic": 10,
                      "simple analgesic": 15}


def acute_use_days(use: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Days with acute medication in the 30 days before today (today excluded), per 30 days.

    ``use`` is 1 on a day the diary records an acute dose (at its ``acute_time``, else on the
    attack's onset day), else 0; ``known`` marks the days the diary covers. The window is the
    30 days *before* today, so a dose taken for today's attack — which follows its onset —
    cannot explain that attack (no reverse causation). Where fewer of the 30 days are known
    (the diary's first month, days after its end) the count is scaled to 30 days; with fewer
    than 14 known days it is NaN. Compare with the ICHD-3 overuse thresholds
    (:data:`ICHD3_OVERUSE_DAYS`: 10 or 15 days a month).
    """
    used = np.where(known, np.nan_to_num(use), 0.0)
    n_pat, n_days = use.shape
    pad = np.zeros((n_pat, OVERUSE_WINDOW))
    c_use = np.cumsum(np.concatenate([pad, used], axis=1), axis=1)
    c_known = np.cumsum(np.concatenate([pad, known.astype(float)], axis=1), axis=1)
    t = np.arange(n_days) + OVERUSE_WINDOW  # column of day t-1 in the padded sums
    n_use = c_use[:, t - 1] - c_use[:, t - 1 - OVERUSE_WINDOW]
    n_known = c_known[:, t - 1] - c_known[:, t - 1 - OVERUSE_WINDOW]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = n_use / n_known * OVERUSE_WINDOW
    return np.where(n_known >= OVERUSE_MIN_HISTORY, out, np.nan)


# derived name -> (function, registry input it needs, or None when it needs the outcome)
DERIVED = {
    "pressure_change": (pressure_change, "pressure"),
    "stress_letdown": (stress_letdown, "stress"),
    "sleep_debt": (sleep_debt, "sleep_duration"),
    "days_since_attack": (days_since_attack, None),
    "cycle_day": (cycle_day, "menstruation"),
}
# derived features that are counters, not noisy measurements: never imputed
NOT_IMPUTED = frozenset({"derived.days_since_attack", "derived.cycle_day",
                         "derived.yesterday_unrecorded", "derived.acute_use_days"})
# features whose value on a day after the diary end is known in advance (calendar, counters)
KNOWN_AHEAD = frozenset({"derived.days_since_attack", "derived.cycle_day", "temporal.weekend",
                         "derived.yesterday_unrecorded", "derived.acute_use_days"})
