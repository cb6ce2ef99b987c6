"""The twin moves forward over new diary days: new patients admitted, particles filtered."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Self

import arviz as az
import numpy as np
import pandas as pd

from migraine_bayes.cohort.io import Cohort
from migraine_bayes.course import fit_course
from migraine_bayes.course.model import attacks_digest, course_of
from migraine_bayes.dims import DAY, PATIENT
from migraine_bayes.model.population import with_new_patients
from migraine_bayes.model.priors import Hyper
from migraine_bayes.state import build_panel
from migraine_bayes.twin import history
from migraine_bayes.twin.filtering import FilterState, filter_days
from migraine_bayes.twin.record import HORIZON_DAYS, HistoryError, TwinError


class Updating:
    """Update methods of :class:`~migraine_bayes.twin.DigitalTwin` (a mixin)."""

    def _staged(self) -> Self:
        """A copy to change without touching this twin.

        :meth:`admit` and :meth:`update` replace the posterior and panel (never mutate them);
        the filter state, which they do mutate, is copied; the record is never changed in place.
        """
        return type(self)(self.posterior, self.panel, self.record,
                           copy.deepcopy(self.filter_state), self.course)

    def admit(self, patients: list[str], seed: int = 0) -> None:
        """Take on patients the twin has never seen (cohort twins only), in place.

        Their draws come from the population predictive (:mod:`migraine_bayes.model.population`);
        their features are centred on the cohort's centres until a refit. The particle filter
        starts before their first diary day, so :meth:`update` and :meth:`forecast` learn them
        from every diary day they bring.
        """
        new = [p for p in patients if p not in self.patients]
        if not new:
            return
        if not self.record.hierarchical:
            raise TwinError(f"patients {new} are not in this single-patient twin: only a "
                            "cohort twin can forecast a patient it has not seen")
        post = self.posterior.posterior
        hyper = Hyper.for_outcome(self.record.outcome)
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
        centers, coverage = spec.centers_dict, self.record.coverage
        for pid in new:
            centers[pid] = dict(centres)
            coverage[pid] = {"diary_start": None, "diary_days": 0, "known_days": 0,
                             "events": 0, "feature_coverage": {  # nothing fitted on yet
                                 f.source: 0.0 for f in spec.feature_specs}}
        self.record = self.record.replace(patients=self.patients + new, centers=centers,
                                          coverage=coverage,
                                          admitted=[*self.record.admitted, *new])

    def update(self, cohort: Cohort, seed: int = 0,
               rewrite_history: bool = False) -> pd.DataFrame:
        """Move the twin forward over new diary days by particle filtering (no refit).

        ``cohort`` holds the patients' data up to now (validated like any input: old days and
        new). Days after the last day the twin has seen are filtered in order
        (:mod:`migraine_bayes.twin.filtering`); the twin's panel becomes the new one, so the next
        forecast starts after the newest day. Static parameters are unchanged. A cohort twin
        admits the cohort's patients it has not seen (:meth:`admit`) and filters them from
        their first diary day.

        The days the twin has already seen must be unchanged in ``cohort``
        (:mod:`migraine_bayes.twin.history`): otherwise :class:`HistoryError` names the first
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
            self.posterior, self.panel, self.record, self.filter_state, self.course = (
                staged.posterior, staged.panel, staged.record, staged.filter_state, staged.course)
            return table
        panel = build_panel(cohort, patients=self.patients, horizon_days=HORIZON_DAYS)
        design = self.design(panel)
        old_days = self.panel["in_diary"].sum(DAY)
        post = self.posterior.posterior
        known = {str(p) for p in self.panel[PATIENT].values}
        for pid in sorted(known & set(self.patients)):  # before days are compared by position
            was = pd.Timestamp(self.panel["date"].sel({PATIENT: pid, DAY: 0}).item()).date()
            now = pd.Timestamp(panel["date"].sel({PATIENT: pid, DAY: 0}).item()).date()
            if now != was and int(old_days.sel({PATIENT: pid})) > 0:
                when = "before" if now < was else "after"
                raise TwinError(f"patient {pid}: the new data's diary starts on {now}, "
                                f"{abs((now - was).days)} day(s) {when} the twin's ({was}); an "
                                "update adds days after the twin's last day — to change where "
                                "the diary starts, fit the twin again")
        fitted = {pid: int(c["diary_days"]) for pid, c in self.record.coverage.items()}
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
        info = self.record.filter or {"updates": 0}
        self.record = self.record.replace(filter={
            "updates": int(info["updates"]) + 1,
            "last_update": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "last_date": {pid: (str(pd.Timestamp(panel["date"].sel(
                {PATIENT: pid, DAY: int(state.last_day[i])}).item()).date())
                if state.last_day[i] >= 0 else None)  # an admitted patient with no day yet
                for i, pid in enumerate(self.patients)},
            "adaptations": {pid: int(a) for pid, a in zip(self.patients, state.adaptations,
                                                             strict=True)},
        })
        table = pd.DataFrame(rows, columns=["patient_id", "date", "p_attack", "outcome", "ess"])
        table.attrs["history_changes"] = changes
        return table
