"""Fitting a twin: the cohort hierarchy, one patient against a population, the holdout."""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Self

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from migraine_bayes import __version__
from migraine_bayes.cohort.io import Cohort
from migraine_bayes.course import fit_course
from migraine_bayes.course.model import attacks_digest, course_of
from migraine_bayes.dims import DAY, FEATURE, PATIENT
from migraine_bayes.metrics import brier, log_score, roc_auc
from migraine_bayes.model import (
    Design,
    FeatureOptions,
    FeatureSpec,
    PatientPrior,
    build_design,
    hsgp,
    model_data,
)
from migraine_bayes.model.inference import (
    COHORT_SETTINGS,
    PATIENT_SETTINGS,
    Diagnostics,
    InferenceWarning,
    SamplerSettings,
    fit,
)
from migraine_bayes.model.priors import Hyper
from migraine_bayes.state import build_panel
from migraine_bayes.twin.forecast import (
    predict_days,
)
from migraine_bayes.twin.record import (
    FORMAT_VERSION,
    HORIZON_DAYS,
    MODEL_NAME,
    MODEL_VERSION,
    TwinError,
    TwinRecord,
)

VALIDATION_FRACTION = 0.2
MIN_VALIDATION_DAYS = 14  # fewer known training days: the holdout is skipped (and said so)


class Fitting:
    """Fitting constructors of :class:`~migraine_bayes.twin.DigitalTwin` (a mixin)."""

    @classmethod
    def fit_cohort(cls, cohort: Cohort, patients: list[str] | None = None,
                   outcome: str = "onset", settings: SamplerSettings | None = None,
                   validate: bool = False, options: FeatureOptions | None = None,
                   deviations: str = "normal", progress=None) -> Self:
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
                    population: Fitting | PatientPrior | None = None, outcome: str = "onset",
                    settings: SamplerSettings | None = None, validate: bool = True,
                    features: list[FeatureSpec] | None = None,
                    scaling: dict[str, tuple[float, float]] | None = None,
                    interventions: list[str] | None = None,
                    options: FeatureOptions | None = None, progress=None,
                    course: xr.Dataset | None = None) -> Self:
        """Fit one patient, with a saved cohort twin's population posterior as prior.

        ``population`` may be a cohort :class:`DigitalTwin` (its features, scaling and the
        predictive prior of a new patient are used), a :class:`PatientPrior`, or None (default
        weakly informative priors). ``features``/``scaling``/``interventions`` fix the design so
        that many patients share one compiled model (see :func:`fit_patients`). ``course``:
        the cohort's course posterior when already fitted (else fitted here, pooled over the
        whole cohort).
        """
        if isinstance(population, Fitting):
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
             progress=None, course: xr.Dataset | None = None) -> Self:
        say = progress or (lambda _stage: None)
        say("building the daily panel and design")
        panel = build_panel(cohort, patients=patients, horizon_days=HORIZON_DAYS)
        design = build_design(panel, outcome, features, interventions, scaling, options=options)
        domain = fit_domain(panel)
        data = model_data(design, domain, deviations)
        if len(data.y) == 0:
            raise TwinError("no day with a known outcome to fit on")
        say(f"sampling ({settings.sampler}, {settings.chains} chains × {settings.draws} "
            f"draws, {len(data.patients)} patient(s)) and checking R-hat, ESS, divergences")
        idata, diag = fit(data, prior, settings)
        posterior = slim(idata)
        meta = metadata(cohort, panel, design, (data.center, data.half_width,
                                                 data.basis_offset), prior, outcome, diag)
        if prior is None and deviations != "normal":
            meta = meta.replace(deviations=deviations)
        say("attack course and acute response (pooled over the cohort's attacks)")
        if course is None:
            course = fit_course(cohort.attacks, cohort.patient_ids, seed=settings.seed)
        twin = cls(posterior, panel, meta, course=course_of(
            course, design.patients, attacks_digest(cohort.attacks, design.patients)))
        if validate:
            say("time-ordered validation fit (last 20% of diary days held out)")
            twin.record = twin.record.replace(validation=_validate(
                panel, design, domain, prior, settings, data.deviations))
        return twin

    def validated(self, settings: SamplerSettings, progress=None) -> Self:
        """Run the time-ordered validation (:func:`_validate`) of this twin into its record.

        For a twin fitted without it — each candidate of a structure selection is, and only the
        kept one is validated.
        """
        (progress or (lambda _stage: None))(
            "time-ordered validation fit (last 20% of diary days held out)")
        spec = self.spec
        self.record = self.record.replace(validation=_validate(
            self.panel, self.design(), self.domain, spec.prior, settings, spec.deviations))
        return self


def fit_domain(panel: xr.Dataset) -> tuple[float, float, np.ndarray]:
    """(center, half_width, basis_offset) of the latent basis of a fit of ``panel``.

    Wide enough for the longest diary and :data:`HORIZON_DAYS` beyond it, with as many basis
    functions as the prior's shortest plausible lengthscale needs.
    """
    return domain_for(int(panel["in_diary"].sum(DAY).max()))


def domain_for(n_fit: int) -> tuple[float, float, np.ndarray]:
    """:func:`fit_domain` of a panel whose longest diary has ``n_fit`` days."""
    center, half = hsgp.domain(n_fit)
    half = max(half, (n_fit - 1 + HORIZON_DAYS - center) * 1.05)  # room for the horizon
    mu, sd = Hyper().log_lengthscale
    m = hsgp.n_basis(half, float(np.exp(mu - 2 * sd)))  # the prior's 2.5% lengthscale
    return center, half, hsgp.basis_offset(n_fit, center, half, m)


def slim(idata: az.InferenceData) -> az.InferenceData:
    """Posterior and sample stats only, without unconstrained/auxiliary copies."""
    post = idata.posterior
    keep = [v for v in post.data_vars if not v.endswith("__") and not v.endswith("_z")]
    return az.InferenceData(posterior=post[keep], sample_stats=idata.sample_stats)


def metadata(cohort: Cohort, panel: xr.Dataset, design: Design,
              domain: tuple[float, float, np.ndarray], prior: PatientPrior | None, outcome: str,
              diag: Diagnostics) -> TwinRecord:
    """The record (``twin.json``) of a fresh fit: versions, configuration, coverage, checks."""
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
    return TwinRecord.from_dict({
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
    })


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
