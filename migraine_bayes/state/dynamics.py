"""How a patient's measured state evolves: a pooled Bayesian VAR(1) filtered over missing days.

Each patient's measured features (sleep, stress, HRV, weather, symptoms ...; everything of the
panel except what is known ahead) are standardised with the patient's training mean and sd,
``z[t]`` (K,), and follow::

    z[t] = c[i, weekday(t)] + A_i z[t-1] + e[t],    e[t] ~ N(0, diag(s_i^2))

— a vector autoregression whose cross-effects (a short night raising tomorrow's caffeine) and
weekly rhythm are the patient's own, partially pooled across patients: every row ``k`` of
``[c_i | A_i]`` is ``N(b_k, T_k)`` around a population row ``b_k ~ N(0, I)`` with
``T_k = diag(tau_day^2 (weekdays), tau^2 (lags))`` — one ``tau`` for the feature's own lag, one
for its cross-effects. Given the noise variances (plug-in, from each patient's ridge residuals)
and the three scales (type-II maximum likelihood over grids), the
posterior of ``b_k`` and of every patient's row is Gaussian and exact — no sampler.
A lagged value missing on a training day enters carried forward from the last observed one
(decaying to the patient's mean at the feature's own AR(1) rate; never from a later day).

Prediction runs a Kalman filter through each patient's days: missing days and items are
simply not observed, so the state is carried across gaps with growing uncertainty, and the
one-step predictive of day ``t`` uses data up to ``t - 1`` only (parameter uncertainty added).
A patient with too little training data of their own (a new patient) gets the population rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from migraine_bayes.cohort.registry import Registry
from migraine_bayes.dims import DAY, FEATURE, PATIENT
from migraine_bayes.state.derived import KNOWN_AHEAD
from migraine_bayes.state.imputation import (
    MAX_R,
    MIN_OBSERVED,
    distance_to_previous,
    lag1_autocorrelation,
)

WEEKDAYS = 7
TAU_WEEKDAY = (0.03, 0.1, 0.3)  # between-patient sd of a weekday's level (standardised)
TAU_GRID = (0.01, 0.03, 0.1, 0.3)  # between-patient sd of a lag coefficient: own, cross
OBS_VAR = 1e-4  # measurement noise of an observed (standardised) value
INTERVAL_Z = 1.6448536269514722  # 90% normal interval


@dataclass
class StateModel:
    """A fitted state model (arrays over the patients and features it was fitted on).

    ``coef_mean`` (P, K, 7 + K) and ``coef_cov`` (P, K, 7 + K, 7 + K): posterior of each
    patient's rows ``[c | A]`` on the standardised scale; ``noise_var`` (P, K); ``center``,
    ``scale`` (P, K): standardisation; ``own`` (P, K): the patient had enough training data
    of the feature (else population rows and pooled scaling); ``pop_mean`` (K, 7 + K),
    ``pop_cov`` (K, 7 + K, 7 + K), ``pop_noise`` (K,), ``tau`` (K, 3): the between-patient
    sd of the feature's weekday levels, own lag and cross-effects.
    """

    features: list[str]
    patients: list[str]
    center: np.ndarray
    scale: np.ndarray
    own: np.ndarray
    coef_mean: np.ndarray
    coef_cov: np.ndarray
    noise_var: np.ndarray
    pop_mean: np.ndarray
    pop_cov: np.ndarray
    pop_noise: np.ndarray
    pop_center: np.ndarray
    pop_scale: np.ndarray
    tau: np.ndarray

    def rows(self, patient: str, features: list[str]) -> tuple[np.ndarray, ...]:
        """Coefficient means/covs, noise, centre, scale of ``patient`` on ``features``.

        Unknown patients (or features the patient had too few values of) get the population.
        """
        idx = [self.features.index(f) for f in features]
        cols = list(range(WEEKDAYS)) + [WEEKDAYS + j for j in idx]
        mean = self.pop_mean[np.ix_(idx, cols)].copy()
        cov = self.pop_cov[np.ix_(idx, cols, cols)].copy()
        noise, center, scale = (self.pop_noise[idx].copy(), self.pop_center[idx].copy(),
                                self.pop_scale[idx].copy())
        if patient in self.patients:
            i = self.patients.index(patient)
            for a, k in enumerate(idx):
                if self.own[i, k]:
                    mean[a] = self.coef_mean[i, k][cols]
                    cov[a] = self.coef_cov[i, k][np.ix_(cols, cols)]
                    noise[a], center[a], scale[a] = (self.noise_var[i, k], self.center[i, k],
                                                      self.scale[i, k])
        return mean, cov, noise, center, scale


def state_features(panel: xr.Dataset) -> list[str]:
    """The panel's features the state model predicts: all but those known ahead."""
    return [str(f) for f in panel[FEATURE].values if str(f) not in KNOWN_AHEAD]


def _series(panel: xr.Dataset, features: list[str]) -> np.ndarray:
    """Observed values (P, T, K) of ``features`` on diary days, NaN where missing."""
    sel = panel.sel({FEATURE: features})
    present = sel["present"].values.astype(bool) & panel["in_diary"].values[:, :, None]
    return np.where(present, sel["value"].values, np.nan)


def _weekday(panel: xr.Dataset) -> np.ndarray:
    """Day of week (0 = Monday) of each panel day; 0 for padding days without a date."""
    dates = panel["date"].values
    dow = pd.DatetimeIndex(dates.ravel()).day_of_week
    return np.nan_to_num(np.asarray(dow, float)).astype(int).reshape(dates.shape)


def fit_state_model(panel: xr.Dataset, train_days: np.ndarray | None = None) -> StateModel:
    """Fit the pooled VAR(1) on each patient's first ``train_days`` days (default: all).

    Parameters
    ----------
    panel : xarray.Dataset
        A daily panel (:func:`migraine_bayes.state.build_panel`).
    train_days : ndarray of int, shape (P,), optional
        Days of each patient's panel to learn from (later days are never read).

    """
    features = state_features(panel)
    x = _series(panel, features)
    n_p, n_t, n_k = x.shape
    train = np.full(n_p, n_t) if train_days is None else np.asarray(train_days, int)
    before = np.arange(n_t)[None, :] < train[:, None]
    xt = np.where(before[:, :, None], x, np.nan)
    count = (~np.isnan(xt)).sum(1)
    safe = np.maximum(count, 1)
    center = np.nansum(xt, 1) / safe
    scale = np.sqrt(np.nansum((xt - center[:, None]) ** 2, 1) / safe)
    systematic = panel["systematic_missing"].sel({FEATURE: features}).values.astype(bool)
    own = (count >= max(MIN_OBSERVED, 10)) & (np.nan_to_num(scale) > 1e-9) & ~systematic
    pop_center = np.array([center[own[:, k], k].mean() if own[:, k].any() else 0.0
                           for k in range(n_k)])
    pop_scale = np.array([np.sqrt((scale[own[:, k], k] ** 2).mean() + center[own[:, k], k]
                                  .var()) if own[:, k].any() else 1.0 for k in range(n_k)])
    center = np.where(own, center, pop_center)
    scale = np.where(own, scale, pop_scale)
    z = (x - center[:, None]) / scale[:, None]
    zb = _carried(z, train)
    dow = _weekday(panel)
    d = WEEKDAYS + n_k
    # sufficient statistics per patient and target
    xtx = np.zeros((n_p, n_k, d, d))
    xty = np.zeros((n_p, n_k, d))
    yty = np.zeros((n_p, n_k))
    n_obs = np.zeros((n_p, n_k))
    for i in range(n_p):
        t = np.arange(1, train[i])
        if t.size == 0:
            continue
        design = np.concatenate([np.eye(WEEKDAYS)[dow[i, t]], zb[i, t - 1]], axis=1)
        design[:, WEEKDAYS:] *= own[i][None, :]  # a feature the patient lacks is no predictor
        for k in np.flatnonzero(own[i]):
            y = z[i, t, k]
            use = ~np.isnan(y)
            xk, yk = design[use], y[use]
            xtx[i, k], xty[i, k] = xk.T @ xk, xk.T @ yk
            yty[i, k], n_obs[i, k] = yk @ yk, use.sum()
    fitted = own & (n_obs >= 10)
    noise = _noise(xtx, xty, yty, n_obs, fitted)
    pop_mean = np.zeros((n_k, d))
    pop_cov = np.zeros((n_k, d, d))
    coef_mean = np.zeros((n_p, n_k, d))
    coef_cov = np.zeros((n_p, n_k, d, d))
    tau = np.zeros((n_k, 3))
    for k in range(n_k):
        who = np.flatnonzero(fitted[:, k])
        best = _fit_target(k, xtx[who, k], xty[who, k], yty[who, k], n_obs[who, k],
                           noise[who, k])
        _, pm, pc, cm, cc, tau[k] = best
        pop_mean[k], pop_cov[k] = pm, pc
        coef_mean[who, k], coef_cov[who, k] = cm, cc
    pop_noise = np.array([noise[fitted[:, k], k].mean() if fitted[:, k].any() else 1.0
                          for k in range(n_k)])
    return StateModel(features, [str(p) for p in panel[PATIENT].values], center, scale,
                      fitted, coef_mean, coef_cov, noise, pop_mean, pop_cov, pop_noise,
                      pop_center, pop_scale, tau)


def _carried(z: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Standardised series (P, T, K) with each missing training day filled from the past only.

    A value missing ``a`` days after the last observed one ``z0`` enters as ``r^a z0`` (the
    feature's own AR(1) towards the patient's mean, ``r`` from its training days); nothing
    before: 0. Never reads a day at or after ``train`` (a two-sided bridge would, near the
    cut).
    """
    out = np.zeros_like(z)
    for i in range(z.shape[0]):
        for k in range(z.shape[2]):
            x = z[i, : train[i], k]
            seen = ~np.isnan(x)
            if not seen.any():
                continue
            r = float(np.clip(lag1_autocorrelation(x), 0.0, MAX_R))
            a, last = distance_to_previous(seen)
            prev = np.where(last >= 0, x[np.clip(last, 0, None)], 0.0)
            with np.errstate(invalid="ignore"):
                out[i, : train[i], k] = np.where(seen, x, np.where(last >= 0, r**a * prev, 0.0))
    return out


def _fit_target(k: int, xtx: np.ndarray, xty: np.ndarray, yty: np.ndarray, n: np.ndarray,
                noise: np.ndarray) -> tuple:
    """Pool target ``k`` over the patients given, its prior scales by type-II ML.

    The scales are chosen one at a time: the weekday levels' (lags at 0.03/0.01), then the
    own and cross lags' jointly. Returns :func:`_pool`'s tuple plus the chosen scales.
    """
    n_k = xtx.shape[-1] - WEEKDAYS

    def pooled(t_day: float, t_own: float, t_cross: float) -> tuple:
        lag_var = np.full(n_k, t_cross**2)
        lag_var[k] = t_own**2
        prior_var = np.r_[np.full(WEEKDAYS, t_day**2), lag_var]
        return (*_pool(xtx, xty, yty, n, noise, prior_var), (t_day, t_own, t_cross))

    best = max((pooled(t, 0.03, 0.01) for t in TAU_WEEKDAY), key=lambda r: r[0])
    return max((pooled(best[-1][0], a, b) for a in TAU_GRID for b in TAU_GRID),
               key=lambda r: r[0])


def _noise(xtx: np.ndarray, xty: np.ndarray, yty: np.ndarray, n: np.ndarray,
           fitted: np.ndarray) -> np.ndarray:
    """Residual variance of each patient's ridge regression (prior N(0, 1)), dof-corrected."""
    d = xtx.shape[-1]
    out = np.ones(n.shape)
    for i, k in zip(*np.nonzero(fitted), strict=True):
        a = xtx[i, k] + np.eye(d)
        b = np.linalg.solve(a, xty[i, k])
        rss = yty[i, k] - 2 * b @ xty[i, k] + b @ xtx[i, k] @ b
        dof = n[i, k] - np.trace(np.linalg.solve(a, xtx[i, k]))
        out[i, k] = max(rss / max(dof, 1.0), 1e-3)
    return out


def _pool(xtx: np.ndarray, xty: np.ndarray, yty: np.ndarray, n: np.ndarray, noise: np.ndarray,
          prior_var: np.ndarray, pop_sd: float = 1.0) -> tuple:
    """Exact Gaussian posterior of one target's population row and every patient's row.

    Patients ``j`` have sufficient statistics ``xtx[j]`` (D, D), ``xty[j]`` (D,), ``yty[j]``,
    ``n[j]`` and noise variance ``noise[j]``; rows ``~ N(b, diag(prior_var))``,
    ``b ~ N(0, pop_sd^2 I)``. A feature a patient lacks has a zero design column, so its
    coefficient keeps the prior around ``b``.

    Returns (log marginal likelihood at the population mean, pop mean, pop cov, patient
    means (N, D), patient covs (N, D, D)).
    """
    d = prior_var.size
    t_inv = np.diag(1.0 / prior_var)
    lam = np.eye(d) / pop_sd**2
    eta = np.zeros(d)
    parts = []
    for j in range(len(n)):
        h_mat = xtx[j] / noise[j]
        h_vec = xty[j] / noise[j]
        b_mat = np.linalg.inv(h_mat + t_inv)
        lam += h_mat - h_mat @ b_mat @ h_mat
        eta += h_vec - h_mat @ b_mat @ h_vec
        parts.append((h_mat, h_vec, b_mat))
    pop_cov = np.linalg.inv(lam)
    pop_cov = (pop_cov + pop_cov.T) / 2
    pop_mean = pop_cov @ eta
    means, covs = np.zeros((len(n), d)), np.zeros((len(n), d, d))
    loglik = 0.0
    for j, (h_mat, h_vec, b_mat) in enumerate(parts):
        pull = b_mat @ t_inv
        means[j] = b_mat @ h_vec + pull @ pop_mean
        covs[j] = b_mat + pull @ pop_cov @ pull.T
        covs[j] = (covs[j] + covs[j].T) / 2
        # log N(y | X mu, s2 I + X T X') from the sufficient statistics, mu = pop_mean
        xr_ = xty[j] - xtx[j] @ pop_mean
        rr = yty[j] - 2 * pop_mean @ xty[j] + pop_mean @ xtx[j] @ pop_mean
        quad = rr / noise[j] - (xr_ / noise[j]) @ b_mat @ (xr_ / noise[j])
        _, logdet = np.linalg.slogdet(np.eye(d) + np.diag(prior_var) @ h_mat)
        loglik += -0.5 * (n[j] * np.log(2 * np.pi * noise[j]) + logdet + quad)
    return loglik, pop_mean, pop_cov, means, covs


def filter_state(model: StateModel, panel: xr.Dataset, horizons: int = 1
                 ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Predictive mean and sd of every day's state from the days before it (original units).

    Returns ``features`` (the model's features the panel has), ``mean`` and ``sd`` of shape
    (H, P, T, K): ``mean[h - 1, :, t]`` predicts day ``t`` from data up to day ``t - h``.
    Features a patient never measures (``systematic_missing``) are NaN.
    """
    names = [str(f) for f in panel[FEATURE].values]
    features = [f for f in model.features if f in names]
    x = _series(panel, features)
    systematic = panel["systematic_missing"].sel({FEATURE: features}).values.astype(bool)
    dow = _weekday(panel)
    n_p, n_t, n_k = x.shape
    mean = np.full((horizons, n_p, n_t, n_k), np.nan)
    sd = np.full((horizons, n_p, n_t, n_k), np.nan)
    for i, pid in enumerate(str(p) for p in panel[PATIENT].values):
        cm, cc, noise, center, scale = model.rows(pid, features)
        c, a = cm[:, :WEEKDAYS], cm[:, WEEKDAYS:] * ~systematic[i][None, :]
        z = (x[i] - center) / scale
        m, p_cov = np.zeros(n_k), np.eye(n_k)
        filtered = np.zeros((n_t, n_k))
        for t in range(n_t):
            if t:
                prev = m
                m = c[:, dow[i, t]] + a @ m
                p_cov = a @ p_cov @ a.T + np.diag(noise)
                reg = np.r_[np.eye(WEEKDAYS)[dow[i, t]], prev]
                param = np.einsum("d,kde,e->k", reg, cc, reg)
                mean[0, i, t] = m
                sd[0, i, t] = np.sqrt(np.diag(p_cov) + param)
            else:  # the first day: the weekday's level, the patient's whole spread
                m = c[:, dow[i, 0]]
                mean[0, i, 0], sd[0, i, 0] = m, np.sqrt(np.diag(p_cov) + noise)
            obs = ~np.isnan(z[t])
            if obs.any():
                s_mat = p_cov[np.ix_(obs, obs)] + OBS_VAR * np.eye(obs.sum())
                gain = np.linalg.solve(s_mat, p_cov[obs]).T
                m = m + gain @ (z[t, obs] - m[obs])
                p_cov = p_cov - gain @ p_cov[obs]
            filtered[t] = m
        for h in range(2, horizons + 1):  # iterate the mean from the state h days before
            ahead = filtered[: n_t - h].copy()
            var = np.zeros_like(ahead)
            for step in range(1, h + 1):
                ahead = c[:, dow[i, step: n_t - h + step]].T + ahead @ a.T
                var = var @ (a**2).T + noise
            mean[h - 1, i, h:] = ahead
            sd[h - 1, i, h:] = np.sqrt(var)
        mean[:, i] = mean[:, i] * scale + center
        sd[:, i] = sd[:, i] * scale
        mean[:, i][..., systematic[i]] = np.nan
        sd[:, i][..., systematic[i]] = np.nan
    return features, mean, sd


def next_state(model: StateModel, panel: xr.Dataset) -> pd.DataFrame:
    """Each patient's state on the day after their last diary day.

    Columns ``patient_id, date, feature, mean, low, high`` (90% predictive interval, in the
    feature's unit, cut to the variable's range of the built-in registry: no negative drinks).
    """
    features, mean, sd = filter_state(model, panel)
    registry = Registry.builtin()
    names = {v.name for v in registry}
    bounds = {f: (registry[f.split(".", 1)[1]].min, registry[f.split(".", 1)[1]].max)
              for f in features if f.split(".", 1)[-1] in names and "." in f}
    rows = []
    diary = panel["in_diary"].values
    for i, pid in enumerate(str(p) for p in panel[PATIENT].values):
        t = int(np.flatnonzero(diary[i]).max()) + 1 if diary[i].any() else 0
        if t >= panel.sizes[DAY]:
            continue
        date = pd.Timestamp(panel["date"].values[i, t]).date()
        for k, f in enumerate(features):
            mu, s = mean[0, i, t, k], sd[0, i, t, k]
            if np.isfinite(mu):
                lo, hi = bounds.get(f, (-np.inf, np.inf))
                rows.append({"patient_id": pid, "date": date, "feature": f,
                             "mean": float(np.clip(mu, lo, hi)),
                             "low": float(np.clip(mu - INTERVAL_Z * s, lo, hi)),
                             "high": float(np.clip(mu + INTERVAL_Z * s, lo, hi))})
    return pd.DataFrame(rows, columns=["patient_id", "date", "feature", "mean", "low", "high"])
