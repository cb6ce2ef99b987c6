"""Within-patient temporal imputation of sporadic gaps, with its uncertainty.

Each patient's daily series of one feature is treated as a stationary Gaussian AR(1) with the
series' own mean ``mu``, standard deviation ``s`` and lag-1 autocorrelation ``r``. A missing day
``a`` days after the previous observation ``x1`` and ``b`` days before the next ``x2`` gets the
exact conditional (Markov bridge) distribution::

    u = r**a, v = r**b, w = u*v
    c1 = (u - v*w) / (1 - w**2),  c2 = (v - u*w) / (1 - w**2)
    mean = mu + c1*(x1 - mu) + c2*(x2 - mu)
    var  = s**2 * (1 - c1*u - c2*v)

(one-sided at the ends: ``mean = mu + u*(x1 - mu)``, ``var = s**2 (1 - u**2)``), so a one-day
hole between two close values is filled tightly, and the middle of a long device-off gap falls
back to the patient's mean with the patient's full variance.
"""

from __future__ import annotations

import numpy as np

MIN_OBSERVED = 5  # fewer observed days than this: the feature is "systematically missing"
MAX_R = 0.98


def ar1_parameters(x: np.ndarray) -> tuple[float, float, float]:
    """Mean, standard deviation and lag-1 autocorrelation (in [0, 0.98]) of a gappy series.

    The autocorrelation uses consecutive observed pairs only; with fewer than 3 pairs it is 0.
    """
    obs = x[~np.isnan(x)]
    mu = float(obs.mean())
    s = float(obs.std())
    return mu, s, float(np.clip(lag1_autocorrelation(x), 0.0, MAX_R))


def lag1_autocorrelation(x: np.ndarray) -> float:
    """Lag-1 autocorrelation of a gappy series from its consecutive observed pairs.

    Centred and scaled by the whole series' mean and sd; 0 with fewer than 3 pairs or no
    spread. Not clipped (a day-to-day change is negatively autocorrelated).
    """
    obs = x[~np.isnan(x)]
    if obs.size == 0:
        return 0.0
    mu, s = obs.mean(), obs.std()
    pair = ~np.isnan(x[:-1]) & ~np.isnan(x[1:])
    if pair.sum() < 3 or s <= 0:
        return 0.0
    a, b = x[:-1][pair] - mu, x[1:][pair] - mu
    return float((a * b).mean() / s**2)


def distance_to_previous(observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each index: distance to the last observed index at or before it, and that index."""
    n = observed.size
    idx = np.where(observed, np.arange(n), -1)
    last = np.maximum.accumulate(idx)
    dist = np.where(last >= 0, np.arange(n) - last, np.inf)
    return dist, last


def impute_series(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Impute the NaNs of one daily series.

    Parameters
    ----------
    x : ndarray, shape (n_days,)
        Daily values, NaN = missing; needs at least :data:`MIN_OBSERVED` observed values.

    Returns
    -------
    mean, sd : ndarray, shape (n_days,)
        Observed values with sd 0, imputed conditional means and sds elsewhere.

    """
    x = np.asarray(x, dtype=float)
    observed = ~np.isnan(x)
    if observed.sum() < MIN_OBSERVED:
        raise ValueError(f"need ≥ {MIN_OBSERVED} observed values, got {int(observed.sum())}")
    mu, s, r = ar1_parameters(x)
    a, prev = distance_to_previous(observed)
    b_rev, nxt_rev = distance_to_previous(observed[::-1])
    b = b_rev[::-1]
    nxt = np.where(nxt_rev[::-1] >= 0, x.size - 1 - nxt_rev[::-1], -1)
    x1 = np.where(prev >= 0, x[np.clip(prev, 0, None)], mu) - mu
    x2 = np.where(nxt >= 0, x[np.clip(nxt, 0, None)], mu) - mu
    # observed days (a = b = 0) give 0/0 below; they are overwritten by their own value
    with np.errstate(all="ignore"):
        u = np.where(np.isfinite(a), r**a, 0.0)
        v = np.where(np.isfinite(b), r**b, 0.0)
        w = u * v
        det = 1.0 - w**2
        c1 = (u - v * w) / det
        c2 = (v - u * w) / det
    mean = mu + c1 * x1 + c2 * x2
    var = s**2 * np.clip(1.0 - c1 * u - c2 * v, 0.0, None)
    mean = np.where(observed, x, mean)
    sd = np.where(observed, 0.0, np.sqrt(var))
    return mean, sd
