"""Online baselines: what a statistician computes first, updated every day like the twin.

- ``running_rate``: the patient's outcome rate on their known days before the forecast day,
  shrunk towards the training population's rate ``r0`` with a prior worth ``m`` days::

      p = (k + m r0) / (n + m)

  (a new patient starts at ``r0``). ``m`` is the empirical-Bayes estimate: the beta-binomial
  marginal likelihood of the training patients' counts, maximised over ``m`` with mean ``r0``.
- ``running_logistic``: a logistic regression, fitted on the training days of all patients,
  on ``logit(running_rate)``, yesterday's outcome (``r0`` when yesterday is unknown or before
  the diary) and the treatment phase (a non-acute treatment's exposure has begun).

Both use only outcomes before the forecast day; the training days are the days up to the
backtest's first origin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy.optimize import minimize_scalar
from scipy.special import betaln, logit

from migraine_bayes.dims import INTERVENTION, PATIENT

PRIOR_DAYS_RANGE = (0.5, 1000.0)  # search range of the prior strength m (days)


def online_forecasts(panel: xr.Dataset, outcome: str, train_days: np.ndarray,
                     days: pd.DataFrame) -> pd.DataFrame:
    """Forecasts of both online baselines for the rows of ``days`` (``patient_id, day, date``).

    ``train_days`` (P,): each patient's diary days up to the first origin. Returns the long
    table ``patient_id, date, model, p_attack, attack``.
    """
    ids = [str(p) for p in panel[PATIENT].values]
    y = np.where(panel["in_diary"].values, panel[outcome].values, np.nan)  # (P, T)
    n_day = y.shape[1]
    train = np.arange(n_day)[None, :] < np.asarray(train_days)[:, None]
    r0 = float(np.nanmean(np.where(train, y, np.nan)))
    known = ~np.isnan(y)
    k_train = np.nansum(np.where(train, y, 0.0), axis=1)
    n_train = (train & known).sum(axis=1)
    m = prior_days(k_train[n_train > 0], n_train[n_train > 0], r0)
    k_before, n_before = counts_before(y)
    rate = (k_before + m * r0) / (n_before + m)
    yesterday = np.full_like(y, r0)
    yesterday[:, 1:] = np.where(known[:, :-1], y[:, :-1], r0)
    kinds = panel["intervention_kind"].values
    exposure = panel["exposure"].sel({INTERVENTION: panel[INTERVENTION].values[kinds != "acute"]}
                                     ).fillna(0.0).values
    phase = (exposure.max(axis=-1) > 0).astype(float) if exposure.shape[-1] else np.zeros_like(y)
    x = np.stack([logit(np.clip(rate, 1e-4, 1 - 1e-4)), yesterday, phase], axis=-1)
    fit_rows = train & known
    p_logistic = _logistic(x[fit_rows], y[fit_rows], x)
    out = []
    for pid, rows in days.groupby("patient_id", sort=False):
        i = ids.index(pid)
        d = rows["day"].to_numpy()
        for name, p in (("running_rate", rate[i, d]), ("running_logistic", p_logistic[i, d])):
            out.append(pd.DataFrame({"patient_id": pid, "date": rows["date"].to_numpy(),
                                     "model": name, "p_attack": p,
                                     "attack": rows["attack"].to_numpy()}))
    return pd.concat(out, ignore_index=True)


def counts_before(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Events and known days before each day: ``k, n`` (P, T).

    ``y`` (P, T): outcomes, NaN where unknown.
    """
    known = ~np.isnan(y)
    zeros = np.zeros((y.shape[0], 1))
    k = np.concatenate([zeros, np.cumsum(np.nan_to_num(y), axis=1)], axis=1)[:, :-1]
    n = np.concatenate([zeros, np.cumsum(known, axis=1)], axis=1)[:, :-1]
    return k, n


def prior_days(k: np.ndarray, n: np.ndarray, r0: float) -> float:
    """Empirical-Bayes prior strength ``m`` (days) of a Beta(m r0, m (1 - r0)) patient rate.

    Maximises the beta-binomial log likelihood of counts ``k`` of ``n`` known days per
    patient over ``m`` in :data:`PRIOR_DAYS_RANGE` (log scale).
    """
    if k.size == 0 or not 0 < r0 < 1:
        return 10.0

    def negative(log_m: float) -> float:
        m = np.exp(log_m)
        a, b = m * r0, m * (1 - r0)
        return -float(np.sum(betaln(k + a, n - k + b) - betaln(a, b)))

    lo, hi = np.log(PRIOR_DAYS_RANGE)
    return float(np.exp(minimize_scalar(negative, bounds=(lo, hi), method="bounded").x))


def _logistic(x_fit: np.ndarray, y_fit: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Fit an L2 logistic regression (C = 1) and predict ``x`` (..., F) → (...)."""
    from sklearn.linear_model import LogisticRegression

    flat = x.reshape(-1, x.shape[-1])
    if np.unique(y_fit).size < 2:
        return np.full(x.shape[:-1], float(np.mean(y_fit)) if y_fit.size else 0.5)
    lr = LogisticRegression(C=1.0, max_iter=2000).fit(x_fit, y_fit.astype(int))
    return lr.predict_proba(flat)[:, 1].reshape(x.shape[:-1])
