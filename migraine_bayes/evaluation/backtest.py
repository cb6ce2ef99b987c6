"""Rolling-origin backtest with a calendar split: fit up to a date, then walk forward day by day.

Each day's forecast is issued from data up to the day before. Diaries may start and end
anywhere (a diary study with staggered enrolment): at each origin — ``train_until``, then every
``refit_every`` days — a cohort twin is refitted on everything before it (every patient with a
diary day so far), and the days up to the next origin are filtered one by one (the twin's
particle filter, :mod:`migraine_bayes.twin.filtering`: the latent state and, for a new patient, the
parameters move with every outcome). A patient with no diary day before the origin is admitted
from the population (:mod:`migraine_bayes.model.population`) and forecast from their first day. The
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

from migraine_bayes.analysis.partner import combination_forecasts
from migraine_bayes.cohort.io import Cohort
from migraine_bayes.cohort.truncate import truncate
from migraine_bayes.dims import DAY, FEATURE, PATIENT
from migraine_bayes.evaluation.baselines import baseline_forecasts
from migraine_bayes.evaluation.ex_ante import (
    HORIZONS,
    STATE_MODELS,
    ex_ante_panel,
    forecast_design,
    one_step_errors,
    state_predictions,
)
from migraine_bayes.evaluation.online_baselines import online_forecasts
from migraine_bayes.evaluation.scores import (
    history_band,
    score_table,
    scores_by_history,
    within_patient_aucs,
)
from migraine_bayes.evaluation.validation import (
    decision_curve,
    validation_by_subgroup,
    validation_table,
)
from migraine_bayes.model import FeatureOptions
from migraine_bayes.model.inference import SamplerSettings
from migraine_bayes.progress import counted
from migraine_bayes.state import build_panel
from migraine_bayes.state.summary import wearable
from migraine_bayes.twin.cluster import ClusterOptions
from migraine_bayes.twin.core import DigitalTwin, fit_patients
from migraine_bayes.twin.filtering import FilterState, filter_days
from migraine_bayes.twin.forecast import posterior_terms, top_factors
from migraine_bayes.twin.record import TwinError
from migraine_bayes.twin.selection import fit_chosen
from migraine_bayes.twin.two_stage import fit_two_stage

INFORMATION = ("ex_ante", "observed")
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

    @property
    def first_twin(self) -> DigitalTwin | None:
        """The first origin's twin, None when no twin was fitted there.

        A cohort twin's is the one whose structure (chosen or fixed) the refits keep.
        """
        return next(iter(self.twins[0].values()), None) if self.twins else None


def backtest(cohort: Cohort, train_until: str | pd.Timestamp,
             patients: list[str] | None = None, information: str = "ex_ante",
             hierarchical: bool | None = None, settings: SamplerSettings | None = None,
             truth: dict | None = None, threshold: float | None = None, seed: int = 0,
             baselines: bool = True, outcome: str = "onset", progress=None,
             refit_every: int = REFIT_EVERY, options: FeatureOptions | None = None,
             deviations: str = "normal", state_model: str = "var",
             cluster: ClusterOptions | None = None, structure: str = "fixed"
             ) -> BacktestResult:
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
        (:mod:`migraine_bayes.twin.two_stage`; ``settings`` are then each patient's).
    structure : {"fixed", "auto"}
        ``auto``: the first origin's cohort twin chooses its structure from the training days
        by PSIS-LOO (:mod:`migraine_bayes.twin.selection`, ``fit``'s default; its record in
        that twin's ``selection``), and every refit keeps it; needs a cohort twin fitted in
        one stage (not ``cluster``), and replaces ``options`` and ``deviations``.
    """
    if structure not in ("fixed", "auto"):
        raise ValueError(f"structure must be fixed or auto, got {structure!r}")
    if structure == "auto" and cluster is not None:
        raise ValueError("structure auto fits the candidates in one stage: not with a cluster")
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
                                     outcome, settings, say, options, deviations, cluster,
                                     choose=structure == "auto" and not fits)
            if structure == "auto" and not fits:  # later refits keep the structure chosen
                first = next(iter(by_patient.values()))
                options, deviations = first.spec.options, first.spec.deviations
            fits.append(by_patient)
            ahead = (ex_ante_panel(panel, upto, state_model) if information == "ex_ante"
                     else None)
            tick = counted(progress, "walking forward from "
                           f"{(origin + pd.Timedelta(days=1)).date()} (patients)", len(walking))
            for k, i in enumerate(walking):
                twin = by_patient.get(ids[i])
                if twin is not None:  # a single-patient twin cannot forecast before day one
                    rows += walk_forward(twin, panel.isel({PATIENT: [i]}),
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
                deviations: str = "normal", cluster: ClusterOptions | None = None,
                choose: bool = False) -> dict:
    """The twins of one origin: patient id → twin, for every patient walked from it.

    A cohort twin is fitted on every patient with a diary day up to ``origin``; patients
    walked from it who have none are admitted from the population. Independent twins are
    fitted for the walked patients with days (the others get none). ``choose``: the cohort
    twin's structure is chosen from the training days by PSIS-LOO
    (:func:`migraine_bayes.twin.selection.select`, as ``fit`` does by default).
    """
    train = truncate(cohort, origin)
    kw = {"outcome": outcome, "options": options} | ({} if settings is None else
                                              {"settings": settings})
    seen = [ids[i] for i in range(len(ids)) if upto[i] > 0]
    if hierarchical and len(seen) > 1:
        say(f"fitting {len(seen)} patient(s) on data up to {origin.date()}")
        if cluster is not None:

            twin = fit_two_stage(train, seen, outcome, settings, options=options,
                                 deviations=deviations, cluster_options=cluster)
        elif choose:
            say("choosing the structure: every candidate fitted, compared by PSIS-LOO")
            twin = fit_chosen(train, seen, outcome, settings,
                              (options or FeatureOptions()).overuse, int(upto.sum()), say)
            record = twin.record.selection
            say(f"structure kept: {record['chosen']} ({record['reason']})")
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


def walk_forward(twin, panel: xr.Dataset, ahead: xr.Dataset | None, start: int, stop: int,
                 origin: pd.Timestamp, rng: np.random.Generator) -> list[dict]:
    """Forecast one patient's diary days ``start..stop-1`` from the twin of ``origin``.

    The particles start after the patient's last day up to ``origin`` (``start`` days; a new
    patient: before day 0, from the population draws) and move with each day's outcome.
    ``ahead`` is the patient's :func:`ex_ante_panel` for an ex-ante backtest (None: observed).
    """
    center, half, _ = domain = twin.domain
    pid = str(panel[PATIENT].values[0])
    if stop - 1 > center + half:
        raise TwinError(f"patient {pid}: day {stop - 1} lies beyond the twin's latent basis")
    observed = twin.design(panel)
    predict = (observed if ahead is None
               else forecast_design(ahead, observed, twin.record.outcome))
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

