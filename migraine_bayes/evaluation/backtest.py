"""Rolling-origin backtest with a calendar split: fit up to a date, then walk forward day by day.

Each day's forecast is issued from data up to the day before. Diaries may start and end
anywhere (a diary study with staggered enrolment): at each origin — ``train_until``, then every
``refit_every`` days — a cohort twin is refitted on everything before it (every patient with a
diary day so far), and the days up to the next origin are filtered one by one (the twin's
particle filter, :mod:`migraine_bayes.filtering`: the latent state and, for a new patient, the
parameters move with every outcome). A patient with no diary day before the origin is admitted
from the population (:mod:`migraine_bayes.population`) and forecast from their first day. The
baselines of :mod:`.baselines` and :mod:`.online_baselines` forecast the same days from the same
information, so the table is a fair comparison; scores are also broken down by the patient's
days of history at the forecast and by patient.

What is known when a forecast is issued (``information``):

``ex_ante`` (default, the honest forecast)
    the day's own measured covariates (stress, alcohol, weather ...) are not known yet: they
    are predicted from the days before by the patient's state model (the pooled VAR(1) of
    :mod:`migraine_bayes.state.dynamics`, fitted on the training days; ``state_model="ar1"``:
    each feature's own AR(1)), with that prediction's variance carried into the probability.
    Calendar features and counters are known ahead; physiology and premonitory symptoms
    enter with a one-day lag and are known.
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

from ..cluster import ClusterOptions
from ..dims import DAY, FEATURE, PATIENT
from ..filtering import FilterState, filter_days
from ..forecast import posterior_terms, top_factors
from ..inference import SamplerSettings
from ..io import Cohort
from ..model import Design, FeatureOptions, build_design
from ..partner import combination_forecasts
from ..progress import counted
from ..state import build_panel
from ..state.derived import KNOWN_AHEAD
from ..state.dynamics import filter_state, fit_state_model
from ..state.imputation import (
    MIN_OBSERVED,
    ar1_parameters,
    distance_to_previous,
    lag1_autocorrelation,
)
from ..state.summary import wearable
from .baselines import baseline_forecasts
from .online_baselines import online_forecasts
from .scores import history_band, score_table, scores_by_history, within_patient_aucs
from .validation import decision_curve, validation_by_subgroup, validation_table

INFORMATION = ("ex_ante", "observed")
STATE_MODELS = ("var", "ar1")
HORIZONS = 14  # days ahead the state-error table looks for a feature's useful horizon
REFIT_EVERY = 30
N_SUBGROUP_BOOT = 200  # resamples per subgroup: ~8 subgroups, each a whole validation table
# the latent basis of every fit reaches at least 62 days past it (twin._domain: the forecast
# horizon's 60 days with 5% room), so a window between refits may be that long
MAX_REFIT_EVERY = 62
BACKTEST_COLUMNS = ["patient_id", "date", "issued_at", "p_attack", "p_low", "p_high",
                    "top_factors", "attack"]


@dataclass
class BacktestResult:
    """Everything a backtest produced.

    Attributes
    ----------
    forecasts : DataFrame
        docs/SCHEMA.md's backtest table of the twin: ``patient_id, date, issued_at, p_attack,
        p_low, p_high, top_factors, attack`` (``attack`` NaN where the day's outcome is
        unknown), plus ``origin`` (the last day of the fit the forecast came from) and
        ``history_days`` (the patient's diary days before the forecast day; 0 = a patient
        forecast from the population alone).
    predictions : DataFrame
        Long table ``patient_id, date, model, p_attack, attack`` of the twin, every baseline
        and, with a truth, the oracle; days with a known outcome only.
    scores : DataFrame
        :func:`.scores.score_table` of ``predictions`` (one row per model).
    state_errors : DataFrame
        One-step-ahead prediction error of each measured feature on the backtest days
        (``feature, n, mae, mse, mae_mean_only``: the last for the patient-mean forecast),
        in the feature's own units.
    by_history : DataFrame
        The scores per model and days of history at the forecast (:data:`.scores.HISTORY`).
    by_patient : DataFrame
        Within-patient AUC per patient and model (patients with both outcomes in the
        backtest days).
    validation : DataFrame
        TRIPOD+AI measures per model (:func:`.validation.validation_table`).
    by_subgroup : DataFrame
        The same per subgroup (:func:`.validation.validation_by_subgroup`): days of history at
        the forecast, sex (when the patients table has it), wearable (HRV or resting heart
        rate measured: :func:`migraine_bayes.state.summary.wearable`) or not.
    decision_curve : DataFrame
        The twin's net benefit per alarm threshold (:func:`.validation.decision_curve`).
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
    by_history: pd.DataFrame = field(default_factory=pd.DataFrame)
    by_patient: pd.DataFrame = field(default_factory=pd.DataFrame)
    validation: pd.DataFrame = field(default_factory=pd.DataFrame)
    by_subgroup: pd.DataFrame = field(default_factory=pd.DataFrame)
    decision_curve: pd.DataFrame = field(default_factory=pd.DataFrame)
    twins: list = field(default_factory=list)


def backtest(cohort: Cohort, train_until: str | pd.Timestamp,
             patients: list[str] | None = None, information: str = "ex_ante",
             hierarchical: bool | None = None, settings: SamplerSettings | None = None,
             truth: dict | None = None, threshold: float | None = None, seed: int = 0,
             baselines: bool = True, outcome: str = "onset", progress=None,
             refit_every: int = REFIT_EVERY, options: FeatureOptions | None = None,
             deviations: str = "normal", state_model: str = "var",
             cluster: ClusterOptions | None = None) -> BacktestResult:
    """Backtest twins of ``cohort``'s patients after ``train_until`` (see the module text).

    Parameters
    ----------
    cohort : Cohort
        The whole diaries; only data up to each forecast's issue day are used for it.
        Diaries may start and end anywhere: a patient with no diary day before a forecast is
        forecast from the population (a cohort twin's predictive for a new patient) and
        learned by the particle filter from their first day on.
    train_until : str or Timestamp
        Last day of the first fit (YYYY-MM-DD). Some patient needs a diary day up to it,
        and some patient one after it.
    patients : list of str, optional
        Default: all.
    information : {"ex_ante", "observed"}
        What a forecast may know about its own day (module text).
    hierarchical : bool, optional
        One cohort twin (default with several patients) or independent patient twins
        (these cannot forecast a patient before their first day).
    settings : SamplerSettings, optional
        Sampler settings of the fits (default: the twin's own defaults).
    truth : dict, optional
        ``truth.json`` of a synthetic cohort: adds the oracle (true probability).
    threshold : float, optional
        Alarm threshold of the classification metrics; default the training days' event rate.
    seed : int
        Seeds the fits and the particle filter.
    baselines : bool
        Also forecast with the baselines of :mod:`.baselines` and :mod:`.online_baselines`.
    outcome : {"onset", "headache_day"}
        The outcome forecast (docs/SCHEMA.md).
    progress : callable, optional
        ``progress(stage, done=None, total=None)`` at each stage and walked patient
        (:mod:`migraine_bayes.progress`).
    refit_every : int
        Days between origins (1..:data:`MAX_REFIT_EVERY`): at each origin the twin is refitted
        on everything before it; between origins new days and new patients are filtered.
    options : FeatureOptions, optional
        Extra lags, learned shapes and interactions of the twin's fits
        (:class:`~migraine_bayes.model.design.FeatureOptions`).
    deviations : str
        Cohort prior of patients' trigger deviations (``normal`` or ``horseshoe``).
    state_model : {"var", "ar1"}
        How an ex-ante forecast predicts the day's covariates (:func:`ex_ante_panel`).
    cluster : ClusterOptions, optional
        Fit each origin's cohort twin in two stages on Dask workers
        (:mod:`migraine_bayes.two_stage`; ``settings`` are then each patient's).
    """
    from ..twin import TwinError

    if state_model not in STATE_MODELS:
        raise ValueError(f"state_model must be one of {STATE_MODELS}, got {state_model!r}")
    if information not in INFORMATION:
        raise ValueError(f"information must be one of {INFORMATION}, got {information!r}")
    if not 1 <= refit_every <= MAX_REFIT_EVERY:
        raise TwinError(f"refit_every must be between 1 and {MAX_REFIT_EVERY} days, "
                        f"got {refit_every}")
    say = progress or (lambda _msg: None)
    ids = list(patients or cohort.patient_ids)
    panel = build_panel(cohort, patients=ids)
    try:
        cut = (pd.to_datetime(train_until, format="%Y-%m-%d") if isinstance(train_until, str)
               else pd.Timestamp(train_until)).normalize()
    except ValueError:
        raise TwinError(f"train_until must be a date YYYY-MM-DD, got {train_until!r}") from None
    dates = panel["date"].values  # (P, T)
    diary = panel["in_diary"].values
    n_diary = diary.sum(axis=1)
    n_train = _days_up_to(diary, dates, cut)
    if not n_train.any():
        raise TwinError(f"no diary day up to {cut.date()}: nothing to fit a backtest on")
    if not (n_diary > n_train).any():
        raise TwinError(f"no diary day after {cut.date()}: nothing to backtest")
    hierarchical = len(ids) > 1 if hierarchical is None else hierarchical
    rng = np.random.default_rng(seed)
    last = pd.Timestamp(np.nanmax(np.where(diary, dates, np.datetime64("NaT")))).normalize()
    rows, fits, origin = [], [], cut
    while origin < last:
        end = origin + pd.Timedelta(days=refit_every)
        upto, until = _days_up_to(diary, dates, origin), _days_up_to(diary, dates, end)
        walking = [i for i in range(len(ids)) if until[i] > upto[i]]
        if walking:
            by_patient = _fit_origin(cohort, ids, upto, walking, origin, hierarchical,
                                     outcome, settings, say, options, deviations, cluster)
            fits.append(by_patient)
            ahead = (ex_ante_panel(panel, upto, state_model) if information == "ex_ante"
                     else None)
            tick = counted(progress, "walking forward from "
                           f"{(origin + pd.Timedelta(days=1)).date()} (patients)", len(walking))
            for k, i in enumerate(walking):
                twin = by_patient.get(ids[i])
                if twin is not None:  # a single-patient twin cannot forecast before day one
                    rows += _walk(twin, panel.isel({PATIENT: [i]}),
                                  None if ahead is None else ahead.isel({PATIENT: [i]}),
                                  int(upto[i]), int(until[i]), origin, rng)
                tick(k + 1)
        origin = end
    forecasts = pd.DataFrame(rows)
    if forecasts.empty:
        raise TwinError("no forecast could be made (single-patient twins need each patient's "
                        "diary to start before the day forecast)")
    twin0 = next(iter(fits[0].values()))
    known = forecasts[forecasts["attack"].notna()]
    predictions = [known.assign(model="twin")[["patient_id", "date", "model", "p_attack",
                                                "attack"]]]
    # one state-model fit on the training days: the baselines' ex-ante features, state errors
    states = state_predictions(panel, n_train, HORIZONS)
    ahead = ex_ante_panel(panel, n_train, state_model, states)
    if baselines:
        say("forecasting the same days with the baselines")
        predictions.append(baseline_forecasts(
            panel, twin0, n_train, known, ahead if information == "ex_ante" else None,
            truth=truth, seed=seed))
        predictions.append(online_forecasts(panel, outcome, n_train, known))
    predictions = pd.concat(predictions, ignore_index=True)
    # the AI partner's worked example: the boosting baseline pooled with the twin online
    predictions = pd.concat([predictions, combination_forecasts(predictions)],
                            ignore_index=True)
    if threshold is None:  # the training days' event rate: "riskier than usual"
        before = np.arange(panel.sizes[DAY])[None, :] < n_train[:, None]
        train_y = np.where(diary & before, panel[outcome].values, np.nan)
        threshold = float(np.nanmean(train_y))
    scores = score_table(predictions, threshold, seed=seed)
    history = known.set_index(["patient_id", "date"])["day"]
    by_history = scores_by_history(predictions, history, threshold, seed=seed)
    by_patient = within_patient_aucs(predictions)
    state_errors = one_step_errors(panel, n_train, ahead, states)
    forecasts = forecasts.rename(columns={"day": "history_days"})[
        [*BACKTEST_COLUMNS, "origin", "history_days"]]
    return BacktestResult(forecasts, predictions, scores, state_errors, information,
                          threshold, str(cut.date()), by_history, by_patient,
                          validation_table(predictions, seed=seed),
                          validation_by_subgroup(predictions, _subgroups(cohort, panel, history),
                                                 seed=seed, n_boot=N_SUBGROUP_BOOT),
                          decision_curve(predictions, "twin", seed=seed), fits)


def _subgroups(cohort: Cohort, panel: xr.Dataset, history: pd.Series) -> dict[str, pd.Series]:
    """Subgroup labels of the forecast days: days of history, sex, wearable or not, prodrome.

    ``prodrome``: ``yes`` when the evening before the day recorded a premonitory symptom (the
    forecast is then "given tonight's prodrome"), ``no`` when it recorded none.
    """
    groups = {"history": pd.Series(history_band(history.to_numpy()), index=history.index)}
    patients = cohort.patients.set_index("patient_id")
    if "sex" in patients and patients["sex"].notna().any():
        groups["sex"] = patients["sex"].astype(str)
    groups["wearable"] = wearable(panel).map({True: "yes", False: "no"})
    prodrome = prodrome_evenings(panel)
    if prodrome is not None:
        groups["prodrome"] = prodrome
    return groups


def prodrome_evenings(panel: xr.Dataset) -> pd.Series | None:
    """Whether the evening before each day recorded a premonitory symptom.

    Per ``(patient_id, date)``: ``yes`` if the day before recorded one, ``no`` if it recorded
    symptoms and none was present; None when the diaries record no symptom at all.
    """
    names = [str(f) for f in panel[FEATURE].values if str(f).startswith("symptom.")]
    if not names:
        return None
    sym = panel.sel({FEATURE: names})
    value = np.where(sym["present"].values.astype(bool), sym["value"].values, np.nan)
    recorded = ~np.isnan(value).all(-1)
    any_present = np.nan_to_num(value).max(-1) > 0
    label = np.where(recorded, np.where(any_present, "yes", "no"), None)[:, :-1]
    dates = panel["date"].values[:, 1:]  # the day forecast: the evening's next day
    ids = np.repeat(panel[PATIENT].values.astype(str)[:, None], dates.shape[1], axis=1)
    keep = (label != None) & ~pd.isna(dates)  # noqa: E711 (an object array)
    index = pd.MultiIndex.from_arrays([ids[keep], pd.to_datetime(dates[keep]).date],
                                      names=["patient_id", "date"])
    return pd.Series(label[keep], index=index)


def _days_up_to(diary: np.ndarray, dates: np.ndarray, day: pd.Timestamp) -> np.ndarray:
    """Per patient: diary days on or before ``day`` (diaries are contiguous from day 0)."""
    return (diary & (dates <= np.datetime64(day))).sum(axis=1)


def _fit_origin(cohort: Cohort, ids: list[str], upto: np.ndarray, walking: list[int],
                origin: pd.Timestamp, hierarchical: bool, outcome: str,
                settings: SamplerSettings | None, say, options: FeatureOptions | None = None,
                deviations: str = "normal", cluster: ClusterOptions | None = None) -> dict:
    """The twins of one origin: patient id → twin, for every patient walked from it.

    A cohort twin is fitted on every patient with a diary day up to ``origin``; patients
    walked from it who have none are admitted from the population. Independent twins are
    fitted for the walked patients with days (the others get none).
    """
    from ..twin import DigitalTwin, fit_patients, truncate

    train = truncate(cohort, origin)
    kw = {"outcome": outcome, "options": options} | ({} if settings is None else
                                              {"settings": settings})
    seen = [ids[i] for i in range(len(ids)) if upto[i] > 0]
    if hierarchical and len(seen) > 1:
        say(f"fitting {len(seen)} patient(s) on data up to {origin.date()}")
        if cluster is not None:
            from ..two_stage import fit_two_stage

            twin = fit_two_stage(train, seen, outcome, settings, options=options,
                                 deviations=deviations, cluster_options=cluster)
        else:
            twin = DigitalTwin.fit_cohort(train, seen, deviations=deviations, **kw)
        new = [ids[i] for i in walking if upto[i] == 0]
        if new:
            say(f"{len(new)} patient(s) start after {origin.date()}: forecast from the "
                "population")
            twin.admit(new)
        return {ids[i]: twin for i in walking}
    todo = [ids[i] for i in walking if upto[i] > 0]
    say(f"fitting {len(todo)} patient(s) one by one on data up to {origin.date()}")
    return fit_patients(train, todo, **kw) if todo else {}


def _walk(twin, panel: xr.Dataset, ahead: xr.Dataset | None, start: int, stop: int,
          origin: pd.Timestamp, rng: np.random.Generator) -> list[dict]:
    """Forecast one patient's diary days ``start..stop-1`` from the twin of ``origin``.

    The particles start after the patient's last day up to ``origin`` (``start`` days; a new
    patient: before day 0, from the population draws) and move with each day's outcome.
    ``ahead`` is the patient's :func:`ex_ante_panel` for an ex-ante backtest (None: observed).
    """
    from ..twin import TwinError

    center, half, _ = domain = twin.domain
    pid = str(panel[PATIENT].values[0])
    if stop - 1 > center + half:
        raise TwinError(f"patient {pid}: day {stop - 1} lies beyond the twin's latent basis")
    observed = twin.design(panel)
    predict = (observed if ahead is None
               else forecast_design(ahead, observed, twin.meta["outcome"]))
    post = twin.posterior.posterior.sel({PATIENT: [pid]})
    n_draws = post.sizes["chain"] * post.sizes["draw"]
    state = FilterState.start([pid], n_draws, np.array([start - 1]))
    days = np.arange(start, stop)
    seen = posterior_terms(post, observed, 0, days, domain)
    terms = seen if predict is observed else posterior_terms(post, predict, 0, days, domain)
    res = filter_days(state, 0, post, observed, days, domain, rng, terms=seen,
                      predict_terms=terms)
    dates = panel["date"].values[0]
    return [{"patient_id": pid, "day": int(d), "date": pd.Timestamp(dates[d]).date(),
             "issued_at": (pd.Timestamp(dates[d]) - pd.Timedelta(days=1)).date(),
             "p_attack": float(res["p_pred"][h]), "p_low": float(res["p_low"][h]),
             "p_high": float(res["p_high"][h]),
             "top_factors": top_factors(terms, predict.feature_names, predict.interventions, h),
             "attack": float(res["y"][h]), "origin": str(origin.date())}
            for h, d in enumerate(days)]


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
