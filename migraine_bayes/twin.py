"""`DigitalTwin`: a fitted posterior plus everything needed to use it — fit, forecast, save, load.

A twin directory (docs/SCHEMA.md §2) holds ``posterior.nc`` (ArviZ netCDF: ``posterior``,
``sample_stats`` and a ``fit_data`` group with the daily panel the twin was fitted on, including
``HORIZON_DAYS`` days ahead) and ``twin.json`` (model and package versions, patients, features
and their scaling, fit date, coverage, sampler settings, diagnostics, validation).
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import os
import re
import shutil
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import arviz as az
import h5py
import numpy as np
import pandas as pd
import xarray as xr

from . import __version__, atomic, audit, crypto, history
from .course import fit_course, next_attack
from .course.model import attacks_digest, course_of
from .course.prodrome import with_prodrome
from .dims import DAY, FEATURE, INTERVENTION, PATIENT
from .errors import MigraineBayesError
from .filtering import FilterState, filter_days
from .forecast import (
    posterior_terms,
    predict_days,
    probabilities,
    summarise,
    time_to_onset,
    top_factors,
)
from .inference import (
    COHORT_SETTINGS,
    PATIENT_SETTINGS,
    Diagnostics,
    InferenceWarning,
    SamplerSettings,
    fit,
)
from .io import Cohort
from .locking import real_path, twin_lock
from .metrics import brier, log_score, roc_auc
from .model import (
    Design,
    FeatureOptions,
    FeatureSpec,
    ModelSpec,
    PatientPrior,
    build_design,
    hsgp,
    model_data,
)
from .model.priors import Hyper
from .population import with_new_patients
from .state import build_panel
from .state.dynamics import fit_state_model, next_state
from .targets import read_meta
from .two_stage import patient_checks_ok

MODEL_NAME = "migraine_twin"
MODEL_VERSION = 1
FORMAT_VERSION = 1
HORIZON_DAYS = 60  # days ahead kept in the fit data: forecasts and time to onset
VALIDATION_FRACTION = 0.2
MIN_VALIDATION_DAYS = 14  # fewer known training days: the holdout is skipped (and said so)
VERSIONS = "versions"  # earlier versions kept inside a twin directory
COURSE_COLUMNS = ("severity_mean", "duration_h_median", "duration_h_low", "duration_h_high",
                  "p_aura")  # the next attack's course in the forecast table


class TwinVersionError(MigraineBayesError):
    """A stored twin written by an incompatible version."""


class TwinError(MigraineBayesError):
    """A twin cannot do what was asked (unknown patient, date outside its data ...)."""


class HistoryError(TwinError):
    """New data contradict days the twin has already seen (changed or deleted history)."""


@dataclass
class DigitalTwin:
    """A fitted twin.

    Attributes
    ----------
    posterior : arviz.InferenceData
        ``posterior`` (dims ``chain, draw, patient, feature, intervention, basis``) and
        ``sample_stats``.
    panel : xarray.Dataset
        The daily panel it was fitted on, with ``HORIZON_DAYS`` future days.
    meta : dict
        What ``twin.json`` holds.
    filter_state : FilterState, optional
        Particles after :meth:`update` (None until the first update).
    course : xarray.Dataset, optional
        The attack-course and acute-response posterior (:mod:`migraine_bayes.course`; dims
        ``draw, patient, phase, severity, symptom, acute_drug``), saved as the ``course``
        group of ``posterior.nc``.
    """

    posterior: az.InferenceData
    panel: xr.Dataset
    meta: dict
    filter_state: FilterState | None = None
    course: xr.Dataset | None = None

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit_cohort(cls, cohort: Cohort, patients: list[str] | None = None,
                   outcome: str = "onset", settings: SamplerSettings | None = None,
                   validate: bool = False, options: FeatureOptions | None = None,
                   deviations: str = "normal", progress=None) -> DigitalTwin:
        """Fit the full hierarchy: population parameters and every patient.

        ``options``: extra lags, learned shapes, interactions (:class:`FeatureOptions`).
        ``deviations``: prior of patients' trigger deviations from the population,
        ``normal`` or ``horseshoe`` (sparse: :data:`migraine_bayes.model.builder.DEVIATIONS`).
        ``progress(stage)`` is told each stage (:mod:`migraine_bayes.progress`).
        """
        return cls._fit(cohort, patients, outcome, None, settings or COHORT_SETTINGS,
                        validate=validate, options=options, deviations=deviations,
                        progress=progress)

    @classmethod
    def fit_patient(cls, cohort: Cohort, patient: str,
                    population: DigitalTwin | PatientPrior | None = None, outcome: str = "onset",
                    settings: SamplerSettings | None = None, validate: bool = True,
                    features: list[FeatureSpec] | None = None,
                    scaling: dict[str, tuple[float, float]] | None = None,
                    interventions: list[str] | None = None,
                    options: FeatureOptions | None = None, progress=None,
                    course: xr.Dataset | None = None) -> DigitalTwin:
        """Fit one patient, with a saved cohort twin's population posterior as prior.

        ``population`` may be a cohort :class:`DigitalTwin` (its features, scaling and the
        predictive prior of a new patient are used), a :class:`PatientPrior`, or None (default
        weakly informative priors). ``features``/``scaling``/``interventions`` fix the design so
        that many patients share one compiled model (see :func:`fit_patients`). ``course``:
        the cohort's course posterior when already fitted (else fitted here, pooled over the
        whole cohort).
        """
        if isinstance(population, DigitalTwin):
            pop = population.spec
            if not pop.hierarchical:
                raise TwinError("population twin must be a cohort (hierarchical) fit")
            features = features or pop.feature_specs
            scaling = scaling or pop.scaling_dict
            interventions = list(pop.interventions) if interventions is None else interventions
            prior = PatientPrior.from_population(population.posterior.posterior,
                                                 [f.name for f in features], interventions)
        else:
            prior = population or PatientPrior.for_outcome(outcome)
        return cls._fit(cohort, [patient], outcome, prior, settings or PATIENT_SETTINGS,
                        validate=validate, features=features, scaling=scaling,
                        interventions=interventions, options=options, progress=progress,
                        course=course)

    @classmethod
    def _fit(cls, cohort: Cohort, patients: list[str] | None, outcome: str,
             prior: PatientPrior | None, settings: SamplerSettings, validate: bool,
             features: list[FeatureSpec] | None = None,
             scaling: dict[str, tuple[float, float]] | None = None,
             interventions: list[str] | None = None,
             options: FeatureOptions | None = None, deviations: str = "normal",
             progress=None, course: xr.Dataset | None = None) -> DigitalTwin:
        say = progress or (lambda _stage: None)
        say("building the daily panel and design")
        panel = build_panel(cohort, patients=patients, horizon_days=HORIZON_DAYS)
        design = build_design(panel, outcome, features, interventions, scaling, options=options)
        domain = _domain(panel)
        data = model_data(design, domain, deviations)
        if len(data.y) == 0:
            raise TwinError("no day with a known outcome to fit on")
        say(f"sampling ({settings.sampler}, {settings.chains} chains × {settings.draws} "
            f"draws, {len(data.patients)} patient(s)) and checking R-hat, ESS, divergences")
        idata, diag = fit(data, prior, settings)
        posterior = _slim(idata)
        meta = _metadata(cohort, panel, design, (data.center, data.half_width,
                                                 data.basis_offset), prior, outcome, diag)
        if prior is None and deviations != "normal":
            meta["deviations"] = deviations
        say("attack course and acute response (pooled over the cohort's attacks)")
        if course is None:
            course = fit_course(cohort.attacks, cohort.patient_ids, seed=settings.seed)
        twin = cls(posterior, panel, meta, course=course_of(
            course, design.patients, attacks_digest(cohort.attacks, design.patients)))
        if validate:
            say("time-ordered validation fit (last 20% of diary days held out)")
            twin.meta["validation"] = _validate(panel, design, domain, prior, settings,
                                                data.deviations)
        return twin

    # ------------------------------------------------------------------ forecasting
    @property
    def patients(self) -> list[str]:
        """Patient ids of this twin."""
        return list(self.meta["patients"])

    @property
    def spec(self) -> ModelSpec:
        """The twin's model configuration (outcome, features, scaling, priors, latent basis)."""
        return ModelSpec.from_meta(self.meta)

    @property
    def domain(self) -> tuple[float, float, np.ndarray]:
        """(center, half_width, basis_offset) of the twin's latent basis.

        Days up to ``center + half_width`` lie inside it. (Read directly: it is asked for
        every day a backtest walks; it is part of :attr:`spec` all the same.)
        """
        dom = self.meta["domain"]
        return dom["center"], dom["half_width"], np.asarray(dom["basis_offset"])

    def design(self, panel: xr.Dataset | None = None) -> Design:
        """The design of ``panel`` (default: the fit data) on this twin's features and scale."""
        panel = self.panel if panel is None else panel
        spec = self.spec
        return build_design(panel, spec.outcome, spec.feature_specs, list(spec.interventions),
                            spec.scaling_dict, spec.centers_dict)

    def forecast(self, cohort: Cohort | None = None, date: str | None = None,
                 horizon: int = 1, prodrome: list[str] | None = None) -> pd.DataFrame:
        """Forecast the outcome for ``horizon`` days (docs/SCHEMA.md forecast table, plus extras).

        Parameters
        ----------
        cohort : Cohort, optional
            Newer data for the twin's patients; default: the data the twin was fitted on.
        date : str, optional
            First day forecast (YYYY-MM-DD); data up to the day before are used. Default: the
            day after each patient's last diary day.
        horizon : int
            Consecutive days to forecast.
        prodrome : list of str, optional
            Premonitory symptoms reported tonight (the last diary day): the forecast is then
            "given tonight's prodrome" (:func:`migraine_bayes.course.prodrome.with_prodrome`).

        Returns
        -------
        DataFrame
            ``patient_id, date, issued_at, p_attack, p_low, p_high, top_factors`` and
            ``onset_days_median, onset_days_low, onset_days_high`` (days to the next attack,
            median and 90% interval; ``inf`` = beyond the horizon kept), ``aleatoric_var``,
            ``epistemic_var``, ``checks_ok``, and the next attack's course
            (:func:`migraine_bayes.course.next_attack`): ``severity_mean`` (0–3),
            ``duration_h_median``, ``duration_h_low``, ``duration_h_high`` (hours, 90%
            predictive interval), ``p_aura`` — NaN where the cohort records none of it.
        """
        _check_horizon(horizon)
        panel = self.data_panel(cohort, date)
        if prodrome is not None:
            panel = with_prodrome(panel, prodrome)
        return self.forecast_panel(panel, horizon)

    def predict_next_state(self, cohort: Cohort | None = None, date: str | None = None
                           ) -> pd.DataFrame:
        """Each patient's measured state tomorrow: sleep, stress, HRV, weather ….

        The state model (:mod:`migraine_bayes.state.dynamics`: a pooled Bayesian VAR(1)) is
        learned from every diary day of the twin's own data and filtered through ``cohort``'s
        days before ``date`` (default: the twin's data, the day after each patient's last
        diary day).

        Returns
        -------
        DataFrame
            ``patient_id, date, feature, mean, low, high``: the 90% predictive interval of
            each measured feature on the next day, in the feature's unit.
        """
        model = fit_state_model(self.panel, self.panel["in_diary"].sum(DAY).values)
        return next_state(model, self.data_panel(cohort, date))

    def data_panel(self, cohort: Cohort | None = None, date: str | None = None) -> xr.Dataset:
        """The panel a forecast uses: the twin's own, or ``cohort``'s before ``date``.

        See :meth:`forecast` for ``cohort`` and ``date``.
        """
        if date is not None and cohort is None:
            raise TwinError("forecasting from a given date needs the cohort (--cohort)")
        if cohort is None:
            return self.panel
        if date is not None:
            cohort = truncate(cohort, pd.Timestamp(date) - pd.Timedelta(days=1))
        return build_panel(cohort, patients=self._with_new(cohort), horizon_days=HORIZON_DAYS)

    def _with_new(self, cohort: Cohort) -> list[str]:
        """The twin's patients, then (cohort twins only) the cohort's patients it has not seen."""
        if not self.meta["hierarchical"]:
            return self.patients
        return self.patients + [p for p in cohort.patient_ids if p not in self.patients]

    def _staged(self) -> DigitalTwin:
        """A copy to change without touching this twin.

        :meth:`admit` and :meth:`update` replace the posterior and panel (never mutate them);
        metadata and filter state, which they do mutate, are copied.
        """
        return DigitalTwin(self.posterior, self.panel, copy.deepcopy(self.meta),
                           copy.deepcopy(self.filter_state), self.course)

    def admit(self, patients: list[str], seed: int = 0) -> None:
        """Take on patients the twin has never seen (cohort twins only), in place.

        Their draws come from the population predictive (:mod:`migraine_bayes.population`);
        their features are centred on the cohort's centres until a refit. The particle filter
        starts before their first diary day, so :meth:`update` and :meth:`forecast` learn them
        from every diary day they bring.
        """
        new = [p for p in patients if p not in self.patients]
        if not new:
            return
        if not self.meta["hierarchical"]:
            raise TwinError(f"patients {new} are not in this single-patient twin: only a "
                            "cohort twin can forecast a patient it has not seen")
        post = self.posterior.posterior
        hyper = Hyper.for_outcome(self.meta["outcome"])
        self.posterior = az.InferenceData(
            posterior=with_new_patients(post, new, hyper.gp_amplitude, seed),
            sample_stats=self.posterior.sample_stats)
        n_draws = post.sizes["chain"] * post.sizes["draw"]
        if self.filter_state is None:
            fitted = self.panel["in_diary"].sum(DAY).sel({PATIENT: self.patients}).values
            self.filter_state = FilterState.start(self.patients, n_draws, fitted - 1)
        self.filter_state = self.filter_state.extended(new, n_draws)
        spec = self.spec
        centres = {name: center for name, (center, _scale) in spec.scaling_dict.items()}
        for pid in new:
            self.meta["centers"][pid] = dict(centres)
            self.meta["coverage"][pid] = {"diary_start": None, "diary_days": 0,
                                          "known_days": 0, "events": 0,
                                          "feature_coverage": {  # nothing fitted on yet
                                              f.source: 0.0 for f in spec.feature_specs}}
        self.meta["patients"] = self.patients + new
        self.meta.setdefault("admitted", []).extend(new)

    def forecast_panel(self, panel: xr.Dataset, horizon: int = 1) -> pd.DataFrame:
        """:meth:`forecast` from the day after each patient's last diary day of ``panel``.

        Patients of ``panel`` the twin has never seen (a cohort twin) are forecast from the
        population, learned from their days so far (:meth:`admit`, on a copy: the twin is
        unchanged).
        """
        _check_horizon(horizon)
        new = [str(p) for p in panel[PATIENT].values if str(p) not in self.patients]
        if new:
            twin = self._staged()
            twin.admit(new)
            return twin.forecast_panel(panel, horizon)
        design = self.design(panel)
        center, half, _ = domain = self.domain
        rows = []
        for i, pid in enumerate(design.patients):
            diary_days = int(panel["in_diary"].sel({PATIENT: pid}).sum())
            ahead = min(HORIZON_DAYS, int(np.floor(center + half)) - diary_days + 1)
            if ahead < horizon:
                raise TwinError(f"patient {pid}: forecast day {diary_days + horizon - 1} lies "
                                f"beyond the twin's latent-state domain (day "
                                f"{center + half:.0f}); retrain the twin")
            days = diary_days + np.arange(ahead)
            terms = posterior_terms(self.posterior.posterior, design, i, days, domain)
            terms = self._filtered(terms, pid, diary_days, design, i)
            p = probabilities(terms)
            stats = summarise(p[:, :horizon])
            dates = panel["date"].sel({PATIENT: pid}).values
            issued = (pd.Timestamp(dates[0]) - pd.Timedelta(days=1) + pd.Timedelta(
                days=diary_days)).date()
            course = (next_attack(self.course, pid) if self.course is not None
                      else dict.fromkeys(COURSE_COLUMNS, np.nan))
            for h in range(horizon):
                onset = time_to_onset(p[:, h:])
                rows.append({
                    "patient_id": pid, "date": pd.Timestamp(dates[days[h]]).date(),
                    "issued_at": issued,
                    **{k: float(v[h]) for k, v in stats.items()},
                    "top_factors": top_factors(terms, design.feature_names,
                                               design.interventions, h),
                    "onset_days_low": onset[0], "onset_days_median": onset[1],
                    "onset_days_high": onset[2],
                    "checks_ok": patient_checks_ok(self.meta, pid),
                    **course,
                })
        cols = ["patient_id", "date", "issued_at", "p_attack", "p_low", "p_high", "top_factors",
                "onset_days_median", "onset_days_low", "onset_days_high", "aleatoric_var",
                "epistemic_var", "checks_ok", *COURSE_COLUMNS]
        return pd.DataFrame(rows)[cols]

    def _filtered(self, terms: dict[str, np.ndarray], pid: str, diary_days: int,
                  design: Design, row: int) -> dict[str, np.ndarray]:
        """Forecast terms under the filter's particles when it has seen exactly these days.

        An admitted patient (drawn from the population) whose newer days the filter has not
        seen yet is filtered over them first, on a copy of the state: without it, their
        forecast would ignore everything they recorded.
        """
        f = self.filter_state
        if f is None or pid not in f.patients:
            return terms
        i = f.patients.index(pid)
        unseen = np.arange(int(f.last_day[i]) + 1, diary_days)
        if unseen.size and pid in self.meta.get("admitted", []):
            f = copy.deepcopy(f)
            sub = Design(**{**design.__dict__, "patients": [pid],
                            **{k: getattr(design, k)[row: row + 1] for k in
                               ("z_mean", "z_var", "exposure", "days_since", "y")}})
            post = self.posterior.posterior.sel({PATIENT: [pid]})
            one = FilterState([pid], f.index[i: i + 1], f.offset[i: i + 1],
                              f.last_day[i: i + 1], f.adaptations[i: i + 1])
            filter_days(one, 0, post, sub, unseen, self.domain,
                        np.random.default_rng([0, diary_days]))
            f.index[i], f.offset[i], f.last_day[i] = one.index[0], one.offset[0], one.last_day[0]
        if int(f.last_day[i]) != diary_days - 1:
            return terms
        out = {k: v[f.index[i]] for k, v in terms.items()}
        out["latent"] = out["latent"] + f.propagate(i, np.arange(1, out["latent"].shape[1] + 1))
        return out

    # ------------------------------------------------------------------ living twin
    def update(self, cohort: Cohort, seed: int = 0,
               rewrite_history: bool = False) -> pd.DataFrame:
        """Move the twin forward over new diary days by particle filtering (no refit).

        ``cohort`` holds the patients' data up to now (validated like any input: old days and
        new). Days after the last day the twin has seen are filtered in order
        (:mod:`migraine_bayes.filtering`); the twin's panel becomes the new one, so the next
        forecast starts after the newest day. Static parameters are unchanged. A cohort twin
        admits the cohort's patients it has not seen (:meth:`admit`) and filters them from
        their first diary day.

        The days the twin has already seen must be unchanged in ``cohort``
        (:mod:`migraine_bayes.history`): otherwise :class:`HistoryError` names the first
        difference, unless ``rewrite_history`` — then the filter restarts from the fitted days
        and the changes are returned in ``table.attrs["history_changes"]``.

        Returns
        -------
        DataFrame
            One row per new day: ``patient_id, date, p_attack`` (one-step-ahead: before the
            day's outcome was seen, with that day's observed covariates), ``outcome`` (NaN
            unknown) and ``ess`` (particles' effective sample size after the day).
        """
        new = [p for p in self._with_new(cohort) if p not in self.patients]
        if new:  # admitted on a copy, taken over only when the whole update went through
            staged = self._staged()
            staged.admit(new, seed=seed)
            table = staged.update(cohort, seed=seed, rewrite_history=rewrite_history)
            self.posterior, self.panel, self.meta, self.filter_state, self.course = (
                staged.posterior, staged.panel, staged.meta, staged.filter_state, staged.course)
            return table
        panel = build_panel(cohort, patients=self.patients, horizon_days=HORIZON_DAYS)
        design = self.design(panel)
        old_days = self.panel["in_diary"].sum(DAY)
        post = self.posterior.posterior
        known = {str(p) for p in self.panel[PATIENT].values}
        fitted = {pid: int(c["diary_days"]) for pid, c in self.meta["coverage"].items()}
        changes = history.first_changes(
            self.panel, panel, {p: int(old_days.sel({PATIENT: p})) for p in self.patients
                                if p in known}, fitted)
        if changes and not rewrite_history:
            raise HistoryError(
                f"the new data change days the twin has already seen — first: "
                f"{history.describe(changes[0])}"
                + (f" (and {len(changes) - 1} more patient(s))" if len(changes) > 1 else "")
                + "; pass the diary as it was, plus the new days, or use --rewrite-history "
                "(audited) to accept the edit")
        state = (copy.deepcopy(self.filter_state) if self.filter_state is not None
                 else FilterState.start(self.patients, post.sizes["chain"] * post.sizes["draw"],
                                        old_days.sel({PATIENT: self.patients}).values - 1))
        if changes:  # the filter has seen a past that no longer holds: start it again
            state = FilterState.start(self.patients, post.sizes["chain"] * post.sizes["draw"],
                                      np.array([fitted.get(p, 0) for p in self.patients]) - 1)
        center, half, _ = domain = self.domain
        rng = np.random.default_rng([seed, int(state.last_day.sum()),
                                     int(state.adaptations.sum())])
        todo = {}
        for i, pid in enumerate(self.patients):  # every check before anything moves
            old_start = (self.panel["date"].sel({PATIENT: pid, DAY: 0}).values if pid in known
                         else panel["date"].sel({PATIENT: pid, DAY: 0}).values)
            if panel["date"].sel({PATIENT: pid, DAY: 0}).values != old_start:
                raise TwinError(f"patient {pid}: the new data's diary starts on another day "
                                "than the twin's; pass the whole diary, old days and new")
            n_days = int(panel["in_diary"].sel({PATIENT: pid}).sum())
            if n_days - 1 < int(state.last_day[i]):
                raise TwinError(f"patient {pid}: the new data end before the days the twin "
                                "has already seen")
            days = np.arange(int(state.last_day[i]) + 1, n_days)
            if days.size and days[-1] + 1 > center + half:
                raise TwinError(f"patient {pid}: {days[-1] + 1} diary days reach past the "
                                "twin's latent-state domain; retrain the twin")
            if days.size:
                todo[i] = days
        rows = []
        for i, days in todo.items():
            pid = self.patients[i]
            res = filter_days(state, i, post, design, days, domain, rng)
            dates = panel["date"].sel({PATIENT: pid}).values[days]
            rows += [{"patient_id": pid, "date": pd.Timestamp(d).date(), "p_attack": float(p),
                      "outcome": float(y), "ess": float(e)}
                     for d, p, y, e in zip(dates, res["p_pred"], res["y"], res["ess"],
                                           strict=True)]
        self.panel, self.filter_state = panel, state
        # the course posterior is exact and cheap (~0.5 s): refit, pooled over the cohort,
        # when the twin's own patients recorded new attacks (others' refresh the next fit)
        own = attacks_digest(cohort.attacks, self.patients)
        if self.course is None or self.course.attrs.get("own_attacks_digest") != own:
            self.course = course_of(fit_course(cohort.attacks, cohort.patient_ids, seed=seed),
                                    self.patients, own)
        info = self.meta.get("filter") or {"updates": 0}
        self.meta["filter"] = {
            "updates": int(info["updates"]) + 1,
            "last_update": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "last_date": {pid: (str(pd.Timestamp(panel["date"].sel(
                {PATIENT: pid, DAY: int(state.last_day[i])}).item()).date())
                if state.last_day[i] >= 0 else None)  # an admitted patient with no day yet
                for i, pid in enumerate(self.patients)},
            "adaptations": {pid: int(a) for pid, a in zip(self.patients, state.adaptations,
                                                             strict=True)},
        }
        table = pd.DataFrame(rows, columns=["patient_id", "date", "p_attack", "outcome", "ess"])
        table.attrs["history_changes"] = changes
        return table

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike, keep_previous: bool = False,
             journal: dict | None = None) -> Path:
        """Write ``posterior.nc`` and ``twin.json`` atomically (a crash leaves the old twin).

        Holds the twin's lock (:mod:`migraine_bayes.locking`). Everything else in an existing
        twin directory (the audit trail, kept versions) is kept, and so are its permissions; a
        new twin directory is 0700 and its files 0600. A symlinked ``path`` is written through
        to its target. ``keep_previous`` files the twin being replaced under
        ``versions/<its version>/``. ``journal`` (:func:`migraine_bayes.audit.journal`): audit
        rows committed with this save — written into the new directory and applied right after
        it is in place (or by the next load, after a crash).
        """
        path = real_path(path)
        groups = {"posterior": self.posterior.posterior,
                  "sample_stats": self.posterior.sample_stats,
                  "fit_data": _encode_panel(self.panel)}
        if self.filter_state is not None:
            groups["filter"] = self.filter_state.to_dataset()
        if self.course is not None:
            groups["course"] = self.course
        with twin_lock(path):
            _recover(path)
            _clean_stale(path)
            if path.is_dir():
                audit.apply_journal(path)  # rows a crashed save still owed, first
            self.meta["spec_hash"] = self.spec.digest()
            self.meta["audit_head"] = {**audit.head(path),
                                       "journal": journal["id"] if journal else None}
            file_mode = atomic.final_mode(path / "twin.json", 0o600, 0o666)
            with atomic.atomic_directory(path, mode=0o700) as tmp:
                # sealed (AES-GCM) when a key is in use: migraine_bayes.crypto; else written
                # straight to the file (a cohort's posterior is not held twice in memory)
                if crypto.active_key() is None:
                    write_netcdf(tmp / "posterior.nc", groups)
                else:
                    (tmp / "posterior.nc").write_bytes(crypto.encode(netcdf_bytes(groups),
                                                                     "posterior.nc"))
                (tmp / "twin.json").write_bytes(crypto.encode(json.dumps(
                    self.meta, indent=1, default=_json).encode("utf-8"), "twin.json"))
                if journal is not None:
                    (tmp / audit.JOURNAL).write_bytes(crypto.encode(
                        json.dumps(journal).encode("utf-8"), audit.JOURNAL))
                for name in ("posterior.nc", "twin.json", audit.JOURNAL):
                    if (tmp / name).exists():
                        os.chmod(tmp / name, file_mode)
                        _fsync(tmp / name)
                _carry_over(path, tmp, exclude={"posterior.nc", "twin.json", audit.JOURNAL})
                if keep_previous and (path / "twin.json").is_file():
                    previous = read_meta(path)
                    kept = tmp / VERSIONS / str(previous.get("version"))
                    (tmp / VERSIONS).mkdir(mode=0o700, exist_ok=True)  # private, like the twin
                    kept.mkdir(mode=0o700, exist_ok=True)
                    for name in ("posterior.nc", "twin.json"):
                        if not (kept / name).exists():
                            os.link(path / name, kept / name)
            audit.apply_journal(path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, version: float | str | None = None) -> DigitalTwin:
        """Read a twin directory written by :meth:`save` (or a kept earlier ``version``).

        Finishes a save a crash interrupted (its journal of audit rows is replayed) and
        verifies the audit trail's hash chain against the head the twin recorded
        (:class:`~migraine_bayes.audit.AuditError` naming the first broken row).
        """
        root = path = real_path(path)
        interrupted = not root.exists() and root.with_name(f".{root.name}.old").is_dir()
        if (root / audit.JOURNAL).exists() or interrupted:
            with twin_lock(root):
                _recover(root)
                if root.is_dir():
                    audit.apply_journal(root)
        if version is not None:
            path = path / VERSIONS / str(float(version))
        meta_file = path / "twin.json"
        if not meta_file.is_file() or not (path / "posterior.nc").is_file():
            raise TwinError(f"{path} is not a twin directory (needs twin.json and posterior.nc)")
        meta = read_meta(path)
        version = meta.get("format_version")
        if version != FORMAT_VERSION or meta.get("model_name") != MODEL_NAME:
            raise TwinVersionError(
                f"{path}: twin format {version!r} of model {meta.get('model_name')!r} "
                f"(written by migraine_bayes {meta.get('package_version')}); this is "
                f"migraine_bayes {__version__}, which reads format {FORMAT_VERSION} of "
                f"{MODEL_NAME!r}: refit the twin with this version")
        if "spec_hash" in meta and ModelSpec.from_meta(meta).digest() != meta["spec_hash"]:
            raise TwinError(f"{path}: the model configuration in twin.json does not match its "
                            "hash (spec_hash) — edited by hand? Restore it or refit the twin")
        root_meta = meta if version is None else read_meta(root)
        check = audit.verify(root, root_meta.get("audit_head"))
        if not check.ok:
            raise audit.AuditError(f"{root.name}: the audit trail fails verification — "
                                   f"{check.problems[0]} (`migraine-twin audit verify` lists "
                                   "what is wrong)")
        groups = netcdf_groups(crypto.read_bytes(path / "posterior.nc"))
        panel = _decode_panel(groups["fit_data"])
        posterior = az.InferenceData(posterior=groups["posterior"],
                                     sample_stats=groups["sample_stats"])
        state = FilterState.from_dataset(groups["filter"]) if "filter" in groups else None
        return cls(posterior, panel, meta, state, groups.get("course"))


# ---------------------------------------------------------------------- helpers
def netcdf_bytes(groups: dict[str, xr.Dataset]) -> bytes:
    """One netCDF4 (HDF5) file, in memory, holding each dataset as a group.

    Numeric variables are zlib-compressed (as ArviZ writes them); ``az.from_netcdf`` reads
    the plain file.
    """
    buffer = io.BytesIO()
    write_netcdf(buffer, groups)
    return buffer.getvalue()


def write_netcdf(target: Path | io.BytesIO, groups: dict[str, xr.Dataset]) -> None:
    """Write :func:`netcdf_bytes`'s file to ``target`` (a new file's path, or a buffer)."""
    import dask

    with h5py.File(target, "w"):
        pass
    # no file lock: without this, under a Dask client (a two-stage fit's driver or worker)
    # xarray asks the scheduler for a lock named after the buffer, which it cannot name
    with dask.config.set(scheduler="synchronous"):
        for name, ds in groups.items():
            encoding = {v: {"zlib": True} for v, x in ds.variables.items()
                        if x.dtype.kind in "biufc"}
            ds.to_netcdf(target, group=name, mode="a", engine="h5netcdf", encoding=encoding)


def netcdf_groups(data: bytes) -> dict[str, xr.Dataset]:
    """The groups of a netCDF4 file's bytes (:func:`netcdf_bytes`), loaded into memory."""
    with h5py.File(io.BytesIO(data), "r") as fh:
        names = [k for k in fh if isinstance(fh[k], h5py.Group)]
    out = {}
    for name in names:
        with xr.open_dataset(io.BytesIO(data), group=name, engine="h5netcdf") as ds:
            out[name] = ds.load()
    return out


def fit_patients(cohort: Cohort, patients: list[str] | None = None,
                 population: DigitalTwin | PatientPrior | None = None,
                 settings: SamplerSettings | None = None, validate: bool = False,
                 outcome: str = "onset", options: FeatureOptions | None = None
                 ) -> dict[str, DigitalTwin]:
    """Fit patients one by one on one shared design, so the model is compiled only once."""
    patients = patients or cohort.patient_ids
    panel = build_panel(cohort, patients=patients)
    shared = build_design(panel, outcome, options=options)
    course = fit_course(cohort.attacks, cohort.patient_ids,
                        seed=(settings or PATIENT_SETTINGS).seed)
    return {pid: DigitalTwin.fit_patient(cohort, pid, population, outcome=outcome,
                                         settings=settings, validate=validate,
                                         features=shared.features,
                                         scaling=shared.scaling,
                                         interventions=shared.interventions, course=course)
            for pid in patients}


def truncate(cohort: Cohort, until: pd.Timestamp) -> Cohort:
    """The cohort with everything after the day ``until`` removed (diary periods end there)."""
    end = until.normalize() + pd.Timedelta(days=1)
    patients = cohort.patients.copy()
    if "diary_end" in patients:
        patients["diary_end"] = patients["diary_end"].where(
            patients["diary_end"].isna() | (patients["diary_end"] < end), until.normalize())
    return Cohort(cohort.observations[cohort.observations["time"] < end].reset_index(drop=True),
                  cohort.attacks[cohort.attacks["onset"] < end].reset_index(drop=True),
                  cohort.treatments[cohort.treatments["start"] < end].reset_index(drop=True),
                  patients, cohort.registry, cohort.source, list(cohort.notices))


def _check_horizon(horizon: int) -> None:
    if horizon < 1 or horizon > HORIZON_DAYS:
        raise TwinError(f"horizon must be between 1 and {HORIZON_DAYS} days, got {horizon}")


def _carry_over(old: Path, new: Path, exclude: set[str]) -> None:
    """Hard-link the rest of the old twin directory (audit trail, kept versions) into the new.

    Done before the new directory takes the old one's place: nothing is copied, nothing lost.
    """
    if not old.is_dir():
        return
    for entry in old.iterdir():
        if entry.name in exclude:
            continue
        if entry.is_dir():
            shutil.copytree(entry, new / entry.name, copy_function=os.link)
        else:
            os.link(entry, new / entry.name)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _clean_stale(path: Path) -> None:
    """Remove temporaries a killed save left beside the twin (the caller holds the lock)."""
    own = re.compile(rf"^\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp$")  # mkdtemp's names
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        if not own.match(stale.name):
            continue
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    backup = path.with_name(f".{path.name}.old")
    if path.is_dir() and backup.is_dir():
        shutil.rmtree(backup, ignore_errors=True)


def _recover(path: Path) -> None:
    """Finish a save that crashed between its two renames: put the old twin back."""
    backup = path.with_name(f".{path.name}.old")
    if not path.exists() and backup.is_dir():
        os.replace(backup, path)


def _domain(panel: xr.Dataset) -> tuple[float, float, np.ndarray]:
    n_fit = int(panel["in_diary"].sum(DAY).max())
    center, half = hsgp.domain(n_fit)
    half = max(half, (n_fit - 1 + HORIZON_DAYS - center) * 1.05)  # room for the horizon
    mu, sd = Hyper().log_lengthscale
    m = hsgp.n_basis(half, float(np.exp(mu - 2 * sd)))  # the prior's 2.5% lengthscale
    return center, half, hsgp.basis_offset(n_fit, center, half, m)


def _slim(idata: az.InferenceData) -> az.InferenceData:
    """Posterior and sample stats only, without unconstrained/auxiliary copies."""
    post = idata.posterior
    keep = [v for v in post.data_vars if not v.endswith("__") and not v.endswith("_z")]
    return az.InferenceData(posterior=post[keep], sample_stats=idata.sample_stats)


def _metadata(cohort: Cohort, panel: xr.Dataset, design: Design,
              domain: tuple[float, float, np.ndarray], prior: PatientPrior | None, outcome: str,
              diag: Diagnostics) -> dict:
    diary = panel["in_diary"]
    known = panel[outcome].notnull()
    coverage = {
        pid: {
            "diary_start": str(pd.Timestamp(panel["date"].sel({PATIENT: pid, DAY: 0}).item()
                                            ).date()),
            "diary_days": int(diary.sel({PATIENT: pid}).sum()),
            "known_days": int(known.sel({PATIENT: pid}).sum()),
            "events": int(panel[outcome].sel({PATIENT: pid}).sum()),
            "feature_coverage": {str(f): round(float(c), 3) for f, c in zip(
                panel[FEATURE].values, panel["coverage"].sel({PATIENT: pid}).values,
                strict=True)},
        } for pid in design.patients}
    return {
        "model_name": MODEL_NAME, "model_version": MODEL_VERSION,
        "format_version": FORMAT_VERSION, "package_version": __version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "version": 1.0, "previous_version": None,
        "patients": design.patients, "outcome": outcome, "hierarchical": prior is None,
        "prior": None if prior is None else prior.to_dict(),
        "features": [f.to_dict() for f in design.features],
        "scaling": {k: list(v) for k, v in design.scaling.items()},
        "centers": design.centers,
        "interventions": design.interventions,
        "domain": {"center": float(domain[0]), "half_width": float(domain[1]),
                   "basis_offset": np.asarray(domain[2]).tolist()},
        "coverage": coverage, "sampler": diag.settings, "diagnostics": diag.to_dict(),
        "validation": None, "data_source": cohort.source,
        "attack_history": attack_history(cohort.attacks, design.patients),
    }


def attack_history(attacks: pd.DataFrame, patients: list[str]) -> dict:
    """Per patient: attacks with a recorded prodrome, and acute treatments with their outcome.

    ``{pid: {"attacks": n, "with_prodrome": n, "acute": {drug: [treated, pain_free_2h]}}}`` —
    counts only (nothing identifying), used to update published priors of acute drugs.
    """
    out = {}
    for pid in patients:
        a = attacks[attacks["patient_id"] == pid]
        acute: dict[str, list[int]] = {}
        if "acute_medication" in a and "pain_free_2h" in a:
            treated = a[a["acute_medication"].notna() & a["pain_free_2h"].notna()]
            for drug, g in treated.groupby(treated["acute_medication"].astype(str).str.lower()):
                acute[str(drug)] = [len(g), int(g["pain_free_2h"].astype(bool).sum())]
        with_prodrome = int(a["prodrome_onset"].notna().sum()) if "prodrome_onset" in a else 0
        out[pid] = {"attacks": len(a), "with_prodrome": with_prodrome, "acute": acute}
    return out


def _validate(panel: xr.Dataset, design: Design, domain, prior: PatientPrior | None,
              settings: SamplerSettings, deviations: str = "normal") -> dict:
    """Time-ordered split: refit on each patient's first 80% of diary days, score the rest.

    The held-out outcomes are predicted from the training posterior with that day's observed
    covariates (the latent state extrapolated past the training window).
    """
    diary = panel["in_diary"].values
    n_days = diary.sum(axis=1)
    cut = np.floor(n_days * (1 - VALIDATION_FRACTION)).astype(int)
    held = np.arange(design.y.shape[1])[None, :] >= cut[:, None]
    kind = "time-ordered holdout of the last 20% of diary days; covariates observed"
    n_train = int(np.isfinite(np.where(held, np.nan, design.y)).sum())
    n_held = int((np.isfinite(design.y) & held & diary).sum())
    if n_train < MIN_VALIDATION_DAYS or n_held < 1:
        return {"kind": kind, "skipped": f"too few diary days to hold any out ({n_train} "
                f"training and {n_held} held-out days with a known outcome; needs "
                f"{MIN_VALIDATION_DAYS} and 1)"}
    train = Design(**{**design.__dict__, "y": np.where(held, np.nan, design.y)})
    data = model_data(train, domain, deviations)
    with warnings.catch_warnings():  # the validation fit's checks are recorded (checks_ok)
        warnings.simplefilter("ignore", InferenceWarning)
        idata, diag = fit(data, prior, settings, retry=False)
    y, p = predict_days(idata.posterior, design, domain, held & diary)
    base = np.nanmean(train.y)
    return {"kind": kind, "n_days": int(y.size), "events": int(y.sum()), "brier": brier(y, p),
            "brier_base_rate": brier(y, np.full_like(p, base)), "log_score": log_score(y, p),
            "auc": roc_auc(y, p), "checks_ok": diag.ok}


def _encode_panel(panel: xr.Dataset) -> xr.Dataset:
    """NetCDF has no bool: store bools as int8 (decoded by :func:`_decode_panel`)."""
    out = panel.copy()
    for name, var in panel.data_vars.items():
        if var.dtype == bool:
            out[name] = var.astype("int8")
            out[name].attrs["dtype"] = "bool"
    out.attrs = {k: (str(v) if not isinstance(v, (int, float)) else v)
                 for k, v in panel.attrs.items()}
    for coord in (PATIENT, FEATURE, INTERVENTION, "feature_category", "feature_unit",
                  "intervention_kind"):
        out[coord] = out[coord].astype(str)
    return out


def _decode_panel(ds: xr.Dataset) -> xr.Dataset:
    out = ds.copy()
    for name, var in ds.data_vars.items():
        if var.attrs.get("dtype") == "bool":
            out[name] = var.astype(bool)
            out[name].attrs = {}
    for coord in (PATIENT, FEATURE, INTERVENTION, "feature_category", "feature_unit",
                  "intervention_kind"):
        out[coord] = out[coord].astype(object)
    return out


def _json(obj: object) -> object:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


__all__ = ["DigitalTwin", "TwinError", "TwinVersionError", "fit_patients",
           "truncate"]
