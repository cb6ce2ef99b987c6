"""Rolling-origin backtest: fit up to a date, then walk forward day by day.

Each day's forecast is issued from data up to the day before. The twin is fitted on the
diaries up to ``train_until``; the days after are filtered one by one (the twin's particle
filter, :mod:`migraine_bayes.filtering`: no refit, the latent state moves with every outcome),
and when the days run past the fitted latent basis the twin is refitted on everything before
them (a new origin). The baselines of :mod:`.baselines` forecast the same days from the same
information, so the table is a fair comparison.

What is known when a forecast is issued (``information``):

``ex_ante`` (default, the honest forecast)
    the day's own measured covariates (stress, alcohol, weather ...) are not known yet: each is
    predicted from the patient's last value before the day by the patient's AR(1) (the panel's
    imputation model, fitted on the training days), with that prediction's variance carried
    into the probability. Calendar features and counters are known ahead; physiology and
    premonitory symptoms enter with a one-day lag and are known.
``observed``
    the day's covariates as recorded, outcome unknown: "given what this day brought, how
    likely is an attack?" — the information the synthetic generator's true probability (the
    oracle) conditions on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from ..dims import DAY, FEATURE, PATIENT
from ..filtering import FilterState, filter_days
from ..forecast import posterior_terms, top_factors
from ..inference import SamplerSettings
from ..io import Cohort
from ..model import Design, build_design
from ..state import build_panel
from ..state.derived import KNOWN_AHEAD
from ..state.imputation import MIN_OBSERVED, ar1_parameters, distance_to_previous
from .baselines import baseline_forecasts
from .scores import score_table

INFORMATION = ("ex_ante", "observed")
MIN_TRAIN_DAYS = 60
BACKTEST_COLUMNS = ["patient_id", "date", "issued_at", "p_attack", "p_low", "p_high",
                    "top_factors", "attack"]


@dataclass
class BacktestResult:
    """Everything a backtest produced.

    Attributes
    ----------
    forecasts : DataFrame
        SCHEMA.md's backtest table of the twin: ``patient_id, date, issued_at, p_attack,
        p_low, p_high, top_factors, attack`` (``attack`` NaN where the day's outcome is
        unknown), plus ``origin`` (the last day of the fit the forecast came from).
    predictions : DataFrame
        Long table ``patient_id, date, model, p_attack, attack`` of the twin, every baseline
        and, with a truth, the oracle; days with a known outcome only.
    scores : DataFrame
        :func:`.scores.score_table` of ``predictions`` (one row per model).
    state_errors : DataFrame
        One-step-ahead prediction error of each measured feature on the backtest days
        (``feature, n, mae, mse, mae_mean_only``: the last for the patient-mean forecast),
        in the feature's own units.
    twins : list
        The fitted twins, one per origin (each a dict patient → twin).
    """

    forecasts: pd.DataFrame
    predictions: pd.DataFrame
    scores: pd.DataFrame
    state_errors: pd.DataFrame
    information: str
    threshold: float
    train_until: str
    twins: list = field(default_factory=list)


def backtest(cohort: Cohort, train_until: str | pd.Timestamp,
             patients: list[str] | None = None, information: str = "ex_ante",
             hierarchical: bool | None = None, settings: SamplerSettings | None = None,
             truth: dict | None = None, threshold: float | None = None, seed: int = 0,
             baselines: bool = True, outcome: str = "onset", progress=None
             ) -> BacktestResult:
    """Backtest twins of ``cohort``'s patients after ``train_until`` (see the module text).

    Parameters
    ----------
    cohort : Cohort
        The whole diaries; only data up to each forecast's issue day are used for it.
    train_until : str or Timestamp
        Last day of the first fit (YYYY-MM-DD). Every patient needs at least
        ``MIN_TRAIN_DAYS`` diary days up to it and at least one after it.
    patients : list of str, optional
        Default: all.
    information : {"ex_ante", "observed"}
        What a forecast may know about its own day (module text).
    hierarchical : bool, optional
        One cohort twin (default with several patients) or independent patient twins.
    settings : SamplerSettings, optional
        Sampler settings of the fits (default: the twin's own defaults).
    truth : dict, optional
        ``truth.json`` of a synthetic cohort: adds the oracle (true probability).
    threshold : float, optional
        Alarm threshold of the classification metrics; default the training days' event rate.
    seed : int
        Seeds the fits and the particle filter.
    baselines : bool
        Also forecast with the baselines of :mod:`.baselines`.
    outcome : {"onset", "headache_day"}
        The outcome forecast (SCHEMA.md); the oracle exists for ``onset`` only.
    progress : callable, optional
        Called with a short message at each stage (the CLI's progress display).
    """
    from ..twin import DigitalTwin, TwinError, fit_patients, truncate

    if information not in INFORMATION:
        raise ValueError(f"information must be one of {INFORMATION}, got {information!r}")
    say = progress or (lambda _msg: None)
    ids = list(patients or cohort.patient_ids)
    panel = build_panel(cohort, patients=ids)
    try:
        cut = (pd.to_datetime(train_until, format="%Y-%m-%d") if isinstance(train_until, str)
               else pd.Timestamp(train_until)).normalize()
    except ValueError:
        raise TwinError(f"train_until must be a date YYYY-MM-DD, got {train_until!r}") from None
    dates = panel["date"].values  # (P, T)
    n_diary = panel["in_diary"].values.sum(axis=1)
    n_train = (panel["in_diary"].values & (dates <= np.datetime64(cut))).sum(axis=1)
    short = [p for p, n in zip(ids, n_train, strict=True) if n < MIN_TRAIN_DAYS]
    if short:
        raise TwinError(f"patients {short} have fewer than {MIN_TRAIN_DAYS} diary days up to "
                        f"{cut.date()}: nothing to fit a backtest on")
    if not (n_diary > n_train).any():
        raise TwinError(f"no diary day after {cut.date()}: nothing to backtest")
    hierarchical = len(ids) > 1 if hierarchical is None else hierarchical
    rng = np.random.default_rng(seed)
    done = n_train.copy()  # per patient: days forecast so far end before this index
    rows, fits, origin = [], [], cut
    while (done < n_diary).any():
        todo = [p for p, d, n in zip(ids, done, n_diary, strict=True) if d < n]
        say(f"fitting {len(todo)} patient(s) on data up to {origin.date()}")
        train = truncate(cohort, origin)
        kw = {"outcome": outcome} | ({} if settings is None else {"settings": settings})
        if hierarchical and len(todo) > 1:
            twin = DigitalTwin.fit_cohort(train, todo, **kw)
            by_patient = dict.fromkeys(todo, twin)
        else:
            by_patient = fit_patients(train, todo, **kw)
        fits.append(by_patient)
        say(f"walking forward from {origin.date() + pd.Timedelta(days=1)}")
        for pid, twin in by_patient.items():
            i = ids.index(pid)
            new = _walk(twin, panel.isel({PATIENT: [i]}), int(done[i]), int(n_diary[i]),
                        information, origin, rng)
            rows += new
            done[i] += len(new)
        stuck = [ids.index(p) for p in todo if done[ids.index(p)] < n_diary[ids.index(p)]]
        if stuck:  # next origin: the day before the earliest day not yet forecast
            new_origin = min(pd.Timestamp(dates[i][done[i] - 1]) for i in stuck).normalize()
            if new_origin <= origin:  # nothing moved: a patient's diary cannot be reached
                raise TwinError(f"backtest stalled at {origin.date()} for "
                                f"{[ids[i] for i in stuck]}")
            origin = new_origin
    forecasts = pd.DataFrame(rows)
    twin0 = next(iter(fits[0].values()))
    known = forecasts[forecasts["attack"].notna()]
    predictions = [known.assign(model="twin")[["patient_id", "date", "model", "p_attack",
                                                "attack"]]]
    ahead = ex_ante_panel(panel, n_train)  # the baselines' ex-ante features, state errors
    if baselines:
        say("forecasting the same days with the baselines")
        predictions.append(baseline_forecasts(
            panel, twin0, n_train, known, ahead if information == "ex_ante" else None,
            truth=truth, seed=seed))
    predictions = pd.concat(predictions, ignore_index=True)
    if threshold is None:  # the training days' event rate: "riskier than usual"
        before = np.arange(panel.sizes[DAY])[None, :] < n_train[:, None]
        train_y = np.where(panel["in_diary"].values & before,
                           panel[twin0.meta["outcome"]].values, np.nan)
        threshold = float(np.nanmean(train_y))
    scores = score_table(predictions, threshold, seed=seed)
    state_errors = one_step_errors(panel, n_train, ahead)
    forecasts = forecasts.drop(columns="day")[[*BACKTEST_COLUMNS, "origin"]]
    return BacktestResult(forecasts, predictions, scores, state_errors, information,
                          threshold, str(cut.date()), fits)


def _walk(twin, panel: xr.Dataset, start: int, stop: int, information: str,
          origin: pd.Timestamp, rng: np.random.Generator) -> list[dict]:
    """Forecast one patient's days ``start..stop-1`` (as far as the twin's basis reaches).

    The particles start at the end of the twin's fit; days between it and ``start`` (a
    patient whose diary runs ahead of the cohort's origin) are filtered but not reported.
    """
    center, half, _ = domain = twin.domain
    pid = str(panel[PATIENT].values[0])
    fitted = int(twin.panel["in_diary"].sel({PATIENT: pid}).sum())
    stop = min(stop, int(np.floor(center + half)) + 1)
    if stop <= start or fitted > start:
        return []
    observed = twin.design(panel)
    predict = (forecast_design(ex_ante_panel(panel, np.array([fitted])), observed,
                               twin.meta["outcome"]) if information == "ex_ante" else observed)
    post = twin.posterior.posterior.sel({PATIENT: [pid]})
    n_draws = post.sizes["chain"] * post.sizes["draw"]
    state = FilterState.start([pid], n_draws, np.array([fitted - 1]))
    days = np.arange(fitted, stop)
    seen = posterior_terms(post, observed, 0, days, domain)
    terms = seen if predict is observed else posterior_terms(post, predict, 0, days, domain)
    res = filter_days(state, 0, post, observed, days, domain, rng, terms=seen,
                      predict_terms=terms)
    dates = panel["date"].values[0]
    out = []
    for h, d in enumerate(days):
        if d < start:
            continue
        out.append({"patient_id": pid, "day": int(d),
                    "date": pd.Timestamp(dates[d]).date(),
                    "issued_at": pd.Timestamp(dates[d - 1]).date(),
                    "p_attack": float(res["p_pred"][h]), "p_low": float(res["p_low"][h]),
                    "p_high": float(res["p_high"][h]),
                    "top_factors": top_factors(terms, predict.feature_names,
                                               predict.interventions, h),
                    "attack": float(res["y"][h]), "origin": str(origin.date())})
    return out


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


def ex_ante_panel(panel: xr.Dataset, train_days: np.ndarray) -> xr.Dataset:
    """The panel with each day's measured features predicted from the days before it.

    Per patient and feature, the AR(1) of :mod:`migraine_bayes.state.imputation` (mean, sd,
    lag-1 autocorrelation from the patient's first ``train_days`` diary days) predicts day
    ``t`` from the last observed value before ``t``, ``a`` days earlier:
    ``mu + r^a (x - mu)`` with sd ``s sqrt(1 - r^(2a))``. Features known ahead (calendar,
    counters) and systematically missing ones are left as they are.
    """
    out = panel.copy(deep=True)
    imputed, sd = out["imputed"].values, out["imputed_sd"].values
    value, present = panel["value"].values, panel["present"].values.astype(bool)
    systematic = panel["systematic_missing"].values
    names = [str(n) for n in panel[FEATURE].values]
    n_day = panel.sizes[DAY]
    for i in range(panel.sizes[PATIENT]):
        for k, name in enumerate(names):
            if name in KNOWN_AHEAD or systematic[i, k]:
                continue
            x = np.where(present[i, :, k], value[i, :, k], np.nan)
            fit_x = x[: int(train_days[i])]
            if (~np.isnan(fit_x)).sum() < MIN_OBSERVED:
                continue
            mu, s, r = ar1_parameters(fit_x)
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
                    ahead: xr.Dataset | None = None) -> pd.DataFrame:
    """One-step-ahead prediction error of each measured feature after the training days.

    The prediction is :func:`ex_ante_panel`'s (``ahead``, computed when not given); scored on
    every later diary day where the feature was measured. ``mae_mean_only`` is the error of
    predicting the patient's training mean (a prediction must beat it to carry information
    about tomorrow).
    """
    if ahead is None:
        ahead = ex_ante_panel(panel, train_days)
    rows = []
    n_day = panel.sizes[DAY]
    after = (np.arange(n_day)[None, :] >= np.asarray(train_days)[:, None]) \
        & panel["in_diary"].values
    for k, name in enumerate(str(n) for n in panel[FEATURE].values):
        if name in KNOWN_AHEAD:
            continue
        x = panel["value"].values[:, :, k]
        use = after & panel["present"].values[:, :, k].astype(bool) & ~np.isnan(x)
        pred = ahead["imputed"].values[:, :, k]
        use &= ~np.isnan(pred)
        if use.sum() < 5:
            continue
        train = ~after & panel["present"].values[:, :, k].astype(bool) & ~np.isnan(x)
        mean = np.array([np.nanmean(np.where(train[i], x[i], np.nan)) if train[i].any()
                         else np.nan for i in range(x.shape[0])])
        err = (pred - x)[use]
        base = (mean[:, None] - x)[use]
        rows.append({"feature": name, "n": int(use.sum()), "mae": float(np.abs(err).mean()),
                     "mse": float((err**2).mean()),
                     "mae_mean_only": float(np.nanmean(np.abs(base)))})
    return pd.DataFrame(rows, columns=["feature", "n", "mae", "mse", "mae_mean_only"])
