"""Particle filtering of a fitted twin over new diary days — no refit.

Each particle is one posterior draw (all static parameters, the fitted latent path) plus a
*drift offset* ``x`` on the log-odds that the fit did not know about::

    x[t] = rho * x[t-1] + sd * sqrt(1 - rho^2) * eps[t]          (x = 0 at the end of the fit)
    p[t] = logit^-1((eta_draw[t] + x[t]) / sqrt(1 + pi v / 8))

Day by day, particles move forward (propagate ``x``), are weighted by the day's outcome when it
is known, and are resampled (systematic) when the effective sample size falls below half —
each such resampling is counted as a *drift adaptation*. Stationary persistence ``rho`` (a
30-day time constant) and ``sd`` (0.35 on the log-odds: a doubling of the odds is two sd) are
the filter's assumptions; the static parameters are refitted only by retraining.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy.special import expit

from migraine_bayes.dims import PATIENT
from migraine_bayes.model.kernel import log_likelihood, log_odds
from migraine_bayes.twin.forecast import posterior_terms

RHO = float(np.exp(-1.0 / 30.0))
OFFSET_SD = 0.35
PARTICLE = "particle"


@dataclass
class FilterState:
    """Equally weighted particles per patient after the last update.

    ``index`` (P, S): which flattened posterior draw (chain-major) each particle is;
    ``offset`` (P, S): its drift offset; ``last_day`` (P,): the last diary day filtered (index
    in the panel); ``adaptations`` (P,): resamplings so far.
    """

    patients: list[str]
    index: np.ndarray
    offset: np.ndarray
    last_day: np.ndarray
    adaptations: np.ndarray

    @classmethod
    def start(cls, patients: list[str], n_draws: int, last_day: np.ndarray) -> FilterState:
        """The state right after a fit: every draw once, no offset."""
        p = len(patients)
        return cls(list(patients), np.tile(np.arange(n_draws), (p, 1)),
                   np.zeros((p, n_draws)), np.asarray(last_day, dtype=int).copy(),
                   np.zeros(p, dtype=int))

    def extended(self, patients: list[str], n_draws: int) -> FilterState:
        """The state with ``patients`` appended, before their first diary day (``last_day`` -1).

        Their particles are every draw once (for an admitted patient: the population
        predictive, :mod:`migraine_bayes.model.population`).
        """
        new = FilterState.start(patients, n_draws, np.full(len(patients), -1))
        return FilterState([*self.patients, *patients],
                           np.concatenate([self.index, new.index]),
                           np.concatenate([self.offset, new.offset]),
                           np.concatenate([self.last_day, new.last_day]),
                           np.concatenate([self.adaptations, new.adaptations]))

    def to_dataset(self) -> xr.Dataset:
        """For the twin's netCDF file (group ``filter``)."""
        return xr.Dataset(
            {"index": ((PATIENT, PARTICLE), self.index),
             "offset": ((PATIENT, PARTICLE), self.offset),
             "last_day": (PATIENT, self.last_day), "adaptations": (PATIENT, self.adaptations)},
            coords={PATIENT: np.asarray(self.patients, dtype=str)})

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> FilterState:
        """Inverse of :meth:`to_dataset`."""
        return cls([str(p) for p in ds[PATIENT].values], ds["index"].values.astype(int),
                   ds["offset"].values.astype(float), ds["last_day"].values.astype(int),
                   ds["adaptations"].values.astype(int))

    def propagate(self, i: int, steps: np.ndarray) -> np.ndarray:
        """Expected offset ``steps`` days after the last filtered day, (S, len(steps))."""
        return self.offset[i][:, None] * RHO ** np.asarray(steps, dtype=float)[None, :]


def filter_days(state: FilterState, i: int, posterior: xr.Dataset, design, days: np.ndarray,
                domain, rng: np.random.Generator, terms: dict | None = None,
                predict_terms: dict | None = None) -> dict[str, np.ndarray]:
    """Advance patient ``i``'s particles over ``days`` (consecutive, after ``last_day``).

    Returns the one-step-ahead predictive probability of each day (before its outcome was
    seen; ``p_pred``) with its 90% interval over the weighted particles (``p_low``,
    ``p_high``), the effective sample size after each day (``ess``) and the outcomes (``y``,
    NaN unknown). The particles are weighted with ``design``'s covariates (what was observed;
    ``terms``, its :func:`~.forecast.posterior_terms` on ``days``, when already at hand); the
    prediction uses ``predict_terms`` when given (e.g. the day's covariates as they could be
    known the evening before, :mod:`migraine_bayes.evaluation.backtest`), else the observed
    ones. ``state`` is updated in place and ends equally weighted.
    """
    if terms is None:
        terms = posterior_terms(posterior, design, i, days, domain)
    same = predict_terms is None or predict_terms is terms
    eta, scale = log_odds(terms)
    eta_p, scale_p = (eta, scale) if same else log_odds(predict_terms)
    idx, x = state.index[i].copy(), state.offset[i].copy()
    n = idx.size
    logw = np.zeros(n)
    y = design.y[i, days]
    p_pred, ess = np.empty(days.size), np.empty(days.size)
    p_low, p_high = np.empty(days.size), np.empty(days.size)
    noise = OFFSET_SD * np.sqrt(1.0 - RHO**2)
    for t in range(days.size):
        x = RHO * x + noise * rng.standard_normal(n)
        logit_p = (eta[idx, t] + x) * scale[idx, t]  # the flattened log-odds (model.kernel)
        p = expit(logit_p)
        q = p if same else expit((eta_p[idx, t] + x) * scale_p[idx, t])
        w = np.exp(logw - logw.max())
        w /= w.sum()
        p_pred[t] = float(w @ q)
        p_low[t], p_high[t] = weighted_quantiles(q, w, (0.05, 0.95))
        if not np.isnan(y[t]):
            logw += log_likelihood(y[t], logit_p)
            w = np.exp(logw - logw.max())
            w /= w.sum()
        ess[t] = 1.0 / float(np.sum(w**2))
        if ess[t] < n / 2:
            keep = systematic_resample(w, rng)
            idx, x, logw = idx[keep], x[keep], np.zeros(n)
            state.adaptations[i] += 1
    w = np.exp(logw - logw.max())
    w /= w.sum()
    keep = systematic_resample(w, rng)
    state.index[i], state.offset[i] = idx[keep], x[keep]
    state.last_day[i] = int(days[-1])
    return {"p_pred": p_pred, "p_low": p_low, "p_high": p_high, "ess": ess, "y": y}


def weighted_quantiles(x: np.ndarray, w: np.ndarray, q: tuple[float, ...]) -> list[float]:
    """Quantiles ``q`` of values ``x`` under normalised weights ``w`` (inverse of the CDF)."""
    order = np.argsort(x)
    cdf = np.cumsum(w[order])
    pos = np.minimum(np.searchsorted(cdf, q), x.size - 1)
    return [float(v) for v in x[order][pos]]


def systematic_resample(w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of a systematic resample of normalised weights ``w``."""
    n = w.size
    positions = (rng.random() + np.arange(n)) / n
    return np.minimum(np.searchsorted(np.cumsum(w), positions), n - 1)
