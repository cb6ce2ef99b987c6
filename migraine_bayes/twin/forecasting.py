"""Forecasting with a twin: the data a forecast uses, the forecast table, the filter's particles."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import xarray as xr

from migraine_bayes.cohort.io import Cohort
from migraine_bayes.cohort.parsing import parse_day
from migraine_bayes.cohort.truncate import truncate
from migraine_bayes.course import next_attack
from migraine_bayes.course.prodrome import with_prodrome
from migraine_bayes.dims import DAY, PATIENT
from migraine_bayes.model import (
    Design,
)
from migraine_bayes.model.kernel import probabilities
from migraine_bayes.state import build_panel
from migraine_bayes.state.dynamics import fit_state_model, next_state
from migraine_bayes.store import audit
from migraine_bayes.twin.filtering import FilterState, filter_days
from migraine_bayes.twin.forecast import (
    posterior_terms,
    summarise,
    time_to_onset,
    top_factors,
)
from migraine_bayes.twin.record import HORIZON_DAYS, TwinError

COURSE_COLUMNS = ("severity_mean", "duration_h_median", "duration_h_low", "duration_h_high",
                  "p_aura")  # the next attack's course in the forecast table


class Forecasting:
    """Forecasting methods of :class:`~migraine_bayes.twin.DigitalTwin` (a mixin)."""

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
            day = parse_day(date, "the forecast's date")
            first, last = _data_days(cohort)
            if not first <= day <= last + pd.Timedelta(days=1):
                raise TwinError(f"the forecast's date {date} lies outside the cohort's data "
                                f"({first.date()} to {last.date()}): from its first day (a "
                                "patient with no day yet is forecast from the population) to "
                                "the day after its last")
            cohort = truncate(cohort, day - pd.Timedelta(days=1))
        return build_panel(cohort, patients=self._with_new(cohort), horizon_days=HORIZON_DAYS)

    def _with_new(self, cohort: Cohort) -> list[str]:
        """The twin's patients, then (cohort twins only) the cohort's patients it has not seen."""
        if not self.record.hierarchical:
            return self.patients
        return self.patients + [p for p in cohort.patient_ids if p not in self.patients]

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
                    "checks_ok": self.record.patient_checks_ok(pid),
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
        if unseen.size and pid in self.record.admitted:
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


def _data_days(cohort: Cohort) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and the last day with an observation or an attack in ``cohort``."""
    times = pd.concat([cohort.observations["time"], cohort.attacks["onset"]]).dropna()
    if times.empty:
        raise TwinError("the cohort holds no observation and no attack to forecast from")
    return times.min().normalize(), times.max().normalize()


def _check_horizon(horizon: int) -> None:
    if horizon < 1 or horizon > HORIZON_DAYS:
        raise TwinError(f"horizon must be between 1 and {HORIZON_DAYS} days, got {horizon}")


def data_hashes(panel: xr.Dataset) -> dict[str, str]:
    """Per patient of ``panel``, the hash of the data a forecast from it used (for the audit).

    The imputed features and the outcomes (:func:`migraine_bayes.store.audit.data_hash`): the
    same for the API's forecasts and the service's.
    """
    return {str(pid): audit.data_hash(panel["imputed"].sel({PATIENT: pid}).values,
                                      panel["onset"].sel({PATIENT: pid}).values)
            for pid in panel[PATIENT].values}
