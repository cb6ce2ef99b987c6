"""When and how a living twin is retrained, with versions and a comparative validation.

Policy (configurable in :class:`RetrainPolicy`): retrain when more than 30 diary
days have passed since the last (re)fit, when recent one-step forecasts score worse than 1.5×
the Brier score of the twin's initial validation, or after more than 5 drift adaptations of
the filter. Retraining fits a new twin on all data, versioned ``version + 0.1`` with
``previous_version``; a comparative validation scores the old twin and a new twin fitted
without the last ``holdout_days`` on those same days. The old version is kept in the twin
directory (``versions/<version>/``) and the event goes to the audit trail.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from migraine_bayes.cohort.io import Cohort
from migraine_bayes.cohort.truncate import truncate
from migraine_bayes.metrics import brier, log_score
from migraine_bayes.model.inference import COHORT_SETTINGS, PATIENT_SETTINGS, SamplerSettings
from migraine_bayes.state import build_panel
from migraine_bayes.store import audit
from migraine_bayes.store.locking import twin_lock
from migraine_bayes.twin.cluster import ClusterOptions
from migraine_bayes.twin.core import DigitalTwin
from migraine_bayes.twin.forecast import predict_days
from migraine_bayes.twin.record import HORIZON_DAYS, TwinError
from migraine_bayes.twin.two_stage import fit_two_stage


@dataclass(frozen=True)
class RetrainPolicy:
    """Thresholds of the retraining policy."""

    max_days_since_retraining: int = 30
    max_degradation: float = 1.5
    max_drift_adaptations: int = 5
    recent_days: int = 28


def retraining_reasons(twin: DigitalTwin, recent: pd.DataFrame | None = None,
                       policy: RetrainPolicy | None = None) -> list[str]:
    """Why the twin should be retrained now (empty: it need not be).

    ``recent``: one-step forecasts with outcomes (``p_attack, outcome``), e.g. from
    :meth:`DigitalTwin.update` or :func:`migraine_bayes.store.audit.prediction_outcomes`.
    """
    policy = policy or RetrainPolicy()
    reasons = []
    state = twin.filter_state
    if state is not None:
        since = days_since_fit(twin)
        if since > policy.max_days_since_retraining:
            reasons.append(f"{since} diary days since the last fit (policy: "
                           f"{policy.max_days_since_retraining})")
        adapted = int(state.adaptations.sum())
        if adapted > policy.max_drift_adaptations:
            reasons.append(f"{adapted} drift adaptations of the filter (policy: "
                           f"{policy.max_drift_adaptations})")
    validation = twin.record.validation or {}
    if recent is not None and validation.get("brier") is not None:
        known = recent.dropna(subset=["outcome"]).tail(policy.recent_days)
        if len(known) >= 7:
            now = brier(known["outcome"].to_numpy(float), known["p_attack"].to_numpy(float))
            if now > policy.max_degradation * validation["brier"]:
                reasons.append(f"recent Brier score {now:.3f} is more than "
                               f"{policy.max_degradation}× the initial {validation['brier']:.3f}")
    return reasons


def days_since_fit(twin: DigitalTwin) -> int:
    """Most diary days any patient has been filtered past its fit (0 before an update)."""
    state = twin.filter_state
    if state is None:
        return 0
    fitted = np.array([twin.record.fitted_days(p) for p in state.patients])
    return int((state.last_day + 1 - fitted).max())


def retrain(path: str | os.PathLike, cohort: Cohort, reasons: list[str] | None = None,
            holdout_days: int = 28, seed: int = 0) -> DigitalTwin:
    """Retrain the twin stored at ``path`` on ``cohort``; keeps the old version; returns the new.

    The new twin is written atomically over the old one only after it is complete; a crash
    before that leaves the old version and the audit trail as they were.
    """
    path = Path(path)
    with twin_lock(path):
        return _retrain(path, cohort, reasons, holdout_days, seed)


def _retrain(path: Path, cohort: Cohort, reasons: list[str] | None, holdout_days: int,
             seed: int) -> DigitalTwin:
    old = DigitalTwin.load(path)
    end = max(pd.Timestamp(d) for d in _last_dates(cohort, old.patients).values())
    cut = end - pd.Timedelta(days=holdout_days)
    held_out = _fit_like(old, truncate(cohort, cut), seed)
    new = _fit_like(old, cohort, seed)
    version = round(float(old.record.version) + 0.1, 1)
    new.record = new.record.replace(
        version=version, previous_version=float(old.record.version),
        retrained_because=reasons or ["requested"],
        comparison=_compare(old, held_out, cohort, cut),
        validation=old.record.validation,
        selection=old.record.selection)  # the structure refitted is the one chosen then
    new.save(path, keep_previous=True, journal=audit.journal(uuid.uuid4().hex, [
        (version, "retrain", {"previous_version": old.record.version,
                              "reasons": reasons or ["requested"],
                              "comparison": new.record.comparison})], []))
    return new


def _fit_like(old: DigitalTwin, cohort: Cohort, seed: int) -> DigitalTwin:
    """A fit of the same kind, features and scale as ``old`` (cohort, two-stage or patient)."""
    spec = old.spec
    fitting = old.record.fitting or {}
    if fitting.get("method") == "two-stage":  # refitted the same way, where it was fitted

        return fit_two_stage(
            cohort, old.patients, spec.outcome,
            SamplerSettings(**{**fitting["patient_settings"], "seed": seed}),
            options=spec.options, deviations=spec.deviations,
            cluster_options=ClusterOptions(**fitting["cluster"]))
    if spec.hierarchical:
        settings = COHORT_SETTINGS.__class__(**{**asdict(COHORT_SETTINGS), "seed": seed})
        return DigitalTwin.fit_cohort(cohort, old.patients, spec.outcome, settings,
                                      options=spec.options, deviations=spec.deviations)
    if len(old.patients) != 1:
        raise TwinError("retraining a multi-patient twin needs the hierarchical model")
    settings = PATIENT_SETTINGS.__class__(**{**asdict(PATIENT_SETTINGS), "seed": seed})
    return DigitalTwin.fit_patient(
        cohort, old.patients[0], spec.prior, spec.outcome, settings, validate=False,
        features=spec.feature_specs, scaling=spec.scaling_dict,
        interventions=list(spec.interventions))


def _compare(old: DigitalTwin, new: DigitalTwin, cohort: Cohort, cut: pd.Timestamp) -> dict:
    """Old twin against the new one fitted up to ``cut``, on the days after ``cut``."""
    panel = build_panel(cohort, patients=old.patients, horizon_days=HORIZON_DAYS)
    scores = {}
    after = (panel["date"].values > np.datetime64(cut)) & panel["in_diary"].values
    for name, twin in (("old", old), ("new", new)):
        center, half, _ = domain = twin.domain
        inside = np.arange(after.shape[1])[None, :] <= center + half
        y, p = predict_days(twin.posterior.posterior, twin.design(panel), domain,
                            after & inside)
        if not y.size:
            raise TwinError("no day with a known outcome after the holdout cut to compare on")
        scores[name] = {"brier": brier(y, p), "log_score": log_score(y, p), "days": int(y.size),
                        "version": float(twin.record.version)}
    return {"kind": f"both scored on the days after {cut.date()}; the new twin was fitted "
                    "without them", **scores,
            "new_better": scores["new"]["log_score"] >= scores["old"]["log_score"]}


def _last_dates(cohort: Cohort, patients: list[str]) -> dict[str, pd.Timestamp]:
    periods = cohort.diary_periods()
    return {p: pd.Timestamp(periods.loc[p, "end"]) for p in patients}
