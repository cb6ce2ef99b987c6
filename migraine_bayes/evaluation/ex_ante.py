"""Ex-ante information: what a forecast could know the evening before the day it forecasts.

The day's own covariates (stress, alcohol, weather) are not known yet: :func:`ex_ante_panel`
predicts them from the days before by the patient's state model (the pooled VAR(1) of
:mod:`migraine_bayes.state.dynamics`, or each feature's own AR(1)), with that uncertainty;
:func:`forecast_design` is the design a forecast of those days sees, for the twin and the
baselines alike. :func:`one_step_errors` scores the state model's predictions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from migraine_bayes.dims import DAY, FEATURE, PATIENT
from migraine_bayes.model import Design, build_design
from migraine_bayes.state.derived import KNOWN_AHEAD
from migraine_bayes.state.dynamics import filter_state, fit_state_model
from migraine_bayes.state.imputation import (
    MIN_OBSERVED,
    ar1_parameters,
    distance_to_previous,
    lag1_autocorrelation,
)

STATE_MODELS = ("var", "ar1")
HORIZONS = 14  # days ahead the state-error table looks for a feature's useful horizon


def forecast_design(ahead: xr.Dataset, observed: Design, outcome: str) -> Design:
    """``observed`` with every same-day (lag 0) feature as known the evening before.

    ``ahead`` is :func:`ex_ante_panel` of the panel ``observed`` was built from; lagged
    features keep their observed values.
    """
    forecast = build_design(ahead, outcome, observed.features, observed.interventions,
                            observed.scaling, observed.centers)
    lag0 = np.array([f.lag == 0 for f in observed.features], dtype=bool)
    z_mean = np.where(lag0, forecast.z_mean, observed.z_mean)
    z_var = np.where(lag0, forecast.z_var, observed.z_var)
    return Design(**{**observed.__dict__, "z_mean": z_mean, "z_var": z_var})


def state_predictions(panel: xr.Dataset, train_days: np.ndarray, horizons: int = 1
                      ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The state model fitted on the first ``train_days`` days, filtered over the panel.

    :func:`migraine_bayes.state.dynamics.filter_state`'s ``(features, mean, sd)``, each
    array (horizons, P, T, K).
    """
    return filter_state(fit_state_model(panel, train_days), panel, horizons)


def ex_ante_panel(panel: xr.Dataset, train_days: np.ndarray, state_model: str = "var",
                  predictions: tuple | None = None) -> xr.Dataset:
    """The panel with each day's measured features predicted from the days before it.

    ``state_model``: ``var`` (default) — the pooled Bayesian VAR(1) of
    :mod:`migraine_bayes.state.dynamics`, fitted on each patient's first ``train_days`` days and
    Kalman-filtered over the rest (mean and sd of the one-step predictive); ``ar1`` — each
    feature's own AR(1) (:func:`ar1_ex_ante_panel`). Features known ahead and features a
    patient never measures are left as they are. ``predictions``: :func:`state_predictions`
    of the same panel and training days, when already computed.
    """
    if state_model not in STATE_MODELS:
        raise ValueError(f"state_model must be one of {STATE_MODELS}, got {state_model!r}")
    if state_model == "ar1":
        return ar1_ex_ante_panel(panel, train_days)
    features, mean, sd = predictions or state_predictions(panel, train_days)
    out = panel.copy(deep=True)
    imputed, imputed_sd = out["imputed"].values, out["imputed_sd"].values
    names = [str(n) for n in panel[FEATURE].values]
    for k, name in enumerate(features):
        j = names.index(name)
        keep = ~np.isnan(imputed[:, :, j]) & np.isfinite(mean[0, :, :, k])
        imputed[:, :, j] = np.where(keep, mean[0, :, :, k], imputed[:, :, j])
        imputed_sd[:, :, j] = np.where(keep, sd[0, :, :, k], imputed_sd[:, :, j])
    return out


def ar1_ex_ante_panel(panel: xr.Dataset, train_days: np.ndarray) -> xr.Dataset:
    """The panel with each day's measured features predicted by their own AR(1)s.

    Per patient and feature, the AR(1) of :mod:`migraine_bayes.state.imputation` (mean, sd,
    lag-1 autocorrelation from the patient's first ``train_days`` diary days) predicts day
    ``t`` from the last observed value before ``t``, ``a`` days earlier:
    ``mu + r^a (x - mu)`` with sd ``s sqrt(1 - r^(2a))``. A patient with too few training
    values of a feature (a new patient) uses the AR(1) pooled over the patients who have them
    (mean of their means, sd including the spread of the means, mean autocorrelation), so no
    day's own value is ever used. Features known ahead (calendar, counters) and
    systematically missing ones are left as they are.
    """
    out = panel.copy(deep=True)
    imputed, sd = out["imputed"].values, out["imputed_sd"].values
    value, present = panel["value"].values, panel["present"].values.astype(bool)
    systematic = panel["systematic_missing"].values
    names = [str(n) for n in panel[FEATURE].values]
    n_day = panel.sizes[DAY]
    for k, name in enumerate(names):
        if name in KNOWN_AHEAD:
            continue
        series = np.where(present[:, :, k], value[:, :, k], np.nan)
        own = {}
        for i in range(panel.sizes[PATIENT]):
            fit_x = series[i, : int(train_days[i])]
            if not systematic[i, k] and (~np.isnan(fit_x)).sum() >= MIN_OBSERVED:
                own[i] = ar1_parameters(fit_x)
        if not own:
            continue
        mus, sds, rs = (np.array(v) for v in zip(*own.values(), strict=True))
        pooled = (float(mus.mean()), float(np.sqrt((sds**2).mean() + mus.var())),
                  float(rs.mean()))
        for i in range(panel.sizes[PATIENT]):
            if systematic[i, k]:
                continue
            x = series[i]
            mu, s, r = own.get(i, pooled)
            _, last = distance_to_previous(~np.isnan(x))
            before = np.r_[-1, last[:-1]]  # last observed day strictly before each day
            a = np.arange(n_day) - before
            u = np.where(before >= 0, r ** a.astype(float), 0.0)
            prev = np.where(before >= 0, x[np.clip(before, 0, None)], mu)
            keep = ~np.isnan(imputed[i, :, k])
            imputed[i, :, k] = np.where(keep, mu + u * (prev - mu), np.nan)
            sd[i, :, k] = np.where(keep, s * np.sqrt(np.clip(1.0 - u**2, 0.0, None)), np.nan)
    out["imputed"].values[:] = imputed
    out["imputed_sd"].values[:] = sd
    return out


def one_step_errors(panel: xr.Dataset, train_days: np.ndarray,
                    ahead: xr.Dataset | None = None, predictions: tuple | None = None
                    ) -> pd.DataFrame:
    """Prediction errors of each measured feature after the training days, three ways.

    Scored on every later diary day where the feature was measured: ``mae``/``mse`` of the
    state model's one-step prediction (``ahead``: :func:`ex_ante_panel`, computed when not
    given), ``mae_ar1`` of the feature's own AR(1), ``mae_mean_only`` of the patient's training
    mean (a prediction must beat it to carry information about tomorrow). ``autocorrelation``
    is the mean over patients of the feature's lag-1 autocorrelation on the training days;
    ``horizon_days`` the longest horizon ``h`` (≤ :data:`HORIZONS`) up to which the state
    model's ``h``-day-ahead prediction beats the patient mean at every step (the feature's
    useful prediction horizon; 0: not even tomorrow). ``predictions``:
    :func:`state_predictions` with :data:`HORIZONS` horizons, when already computed.
    """
    predictions = predictions or state_predictions(panel, train_days, HORIZONS)
    if ahead is None:
        ahead = ex_ante_panel(panel, train_days, predictions=predictions)
    ar1 = ar1_ex_ante_panel(panel, train_days)
    features, multi, _ = predictions
    rows = []
    n_day = panel.sizes[DAY]
    train_days = np.asarray(train_days)
    after = (np.arange(n_day)[None, :] >= train_days[:, None]) & panel["in_diary"].values
    for k, name in enumerate(str(n) for n in panel[FEATURE].values):
        if name in KNOWN_AHEAD:
            continue
        x = panel["value"].values[:, :, k]
        use = after & panel["present"].values[:, :, k].astype(bool) & ~np.isnan(x)
        pred = ahead["imputed"].values[:, :, k]
        use &= ~np.isnan(pred) & ~np.isnan(ar1["imputed"].values[:, :, k])
        if use.sum() < 5:
            continue
        train = ~after & panel["present"].values[:, :, k].astype(bool) & ~np.isnan(x)
        mean = np.array([np.nanmean(np.where(train[i], x[i], np.nan)) if train[i].any()
                         else np.nan for i in range(x.shape[0])])
        base = (mean[:, None] - x)[use]
        mae_mean = float(np.nanmean(np.abs(base)))
        err = (pred - x)[use]
        rs = [lag1_autocorrelation(np.where(train[i], x[i], np.nan))
              for i in range(x.shape[0]) if train[i].sum() >= MIN_OBSERVED]
        horizon = 0
        if name in features:
            j = features.index(name)
            for h in range(HORIZONS):
                ok = use & np.isfinite(multi[h, :, :, j]) & np.isfinite(mean[:, None])
                if not ok.any() or np.abs(multi[h, :, :, j] - x)[ok].mean() >= np.abs(
                        mean[:, None] - x)[ok].mean():
                    break
                horizon = h + 1
        rows.append({"feature": name, "n": int(use.sum()), "mae": float(np.abs(err).mean()),
                     "mse": float((err**2).mean()),
                     "mae_ar1": float(np.abs(ar1["imputed"].values[:, :, k] - x)[use].mean()),
                     "mae_mean_only": mae_mean,
                     "autocorrelation": float(np.mean(rs)) if rs else np.nan,
                     "horizon_days": horizon})
    return pd.DataFrame(rows, columns=["feature", "n", "mae", "mse", "mae_ar1", "mae_mean_only",
                                       "autocorrelation", "horizon_days"])
