"""`DigitalTwin`: a fitted posterior plus everything needed to use it — fit, forecast, save, load.

A twin directory (docs/SCHEMA.md §2) holds ``posterior.nc`` (ArviZ netCDF: ``posterior``,
``sample_stats`` and a ``fit_data`` group with the daily panel the twin was fitted on, including
``HORIZON_DAYS`` days ahead) and ``twin.json`` (:mod:`migraine_bayes.twin.record`).
The class is put together from its seams: :class:`~.fitting.Fitting` (the constructors),
:class:`~.forecasting.Forecasting`, :class:`~.updating.Updating` (new patients, new days) and
:class:`~.store.Storage` (save and load).
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import xarray as xr

from migraine_bayes.cohort.io import Cohort
from migraine_bayes.course import fit_course
from migraine_bayes.model import (
    Design,
    FeatureOptions,
    ModelSpec,
    PatientPrior,
    build_design,
)
from migraine_bayes.model.inference import (
    PATIENT_SETTINGS,
    SamplerSettings,
)
from migraine_bayes.state import build_panel
from migraine_bayes.twin.filtering import FilterState
from migraine_bayes.twin.fitting import Fitting
from migraine_bayes.twin.forecasting import Forecasting
from migraine_bayes.twin.record import TwinRecord
from migraine_bayes.twin.store import Storage
from migraine_bayes.twin.updating import Updating


@dataclass
class DigitalTwin(Fitting, Forecasting, Updating, Storage):
    """A fitted twin.

    Attributes
    ----------
    posterior : arviz.InferenceData
        ``posterior`` (dims ``chain, draw, patient, feature, intervention, basis``) and
        ``sample_stats``.
    panel : xarray.Dataset
        The daily panel it was fitted on, with ``HORIZON_DAYS`` future days.
    record : TwinRecord
        What ``twin.json`` holds, typed (:class:`~migraine_bayes.twin.record.TwinRecord`); a
        plain dict is read into one. Never changed in place: a new record replaces it.
    filter_state : FilterState, optional
        Particles after :meth:`update` (None until the first update).
    course : xarray.Dataset, optional
        The attack-course and acute-response posterior (:mod:`migraine_bayes.course`; dims
        ``draw, patient, phase, severity, symptom, acute_drug``), saved as the ``course``
        group of ``posterior.nc``.
    """

    posterior: az.InferenceData
    panel: xr.Dataset
    record: TwinRecord
    filter_state: FilterState | None = None
    course: xr.Dataset | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.record, TwinRecord):
            self.record = TwinRecord.from_dict(self.record)

    @property
    def meta(self) -> dict:
        """A copy of what ``twin.json`` holds (read :attr:`record` for typed fields)."""
        return self.record.to_dict()

    @property
    def patients(self) -> list[str]:
        """Patient ids of this twin."""
        return self.record.patients

    @property
    def spec(self) -> ModelSpec:
        """The twin's model configuration (outcome, features, scaling, priors, latent basis)."""
        return self.record.spec

    @property
    def domain(self) -> tuple[float, float, np.ndarray]:
        """(center, half_width, basis_offset) of the twin's latent basis.

        Days up to ``center + half_width`` lie inside it. (Read directly: it is asked for
        every day a backtest walks; it is part of :attr:`spec` all the same.)
        """
        center, half, offset = self.record.domain
        return center, half, np.asarray(offset)

    def design(self, panel: xr.Dataset | None = None) -> Design:
        """The design of ``panel`` (default: the fit data) on this twin's features and scale."""
        panel = self.panel if panel is None else panel
        spec = self.spec
        return build_design(panel, spec.outcome, spec.feature_specs, list(spec.interventions),
                            spec.scaling_dict, spec.centers_dict)


def fit_patients(cohort: Cohort, patients: list[str] | None = None,
                 population: DigitalTwin | PatientPrior | None = None,
                 settings: SamplerSettings | None = None, validate: bool = False,
                 outcome: str = "onset", options: FeatureOptions | None = None,
                 only: list[str] | None = None) -> dict[str, DigitalTwin]:
    """Fit patients one by one on one shared design, so the model is compiled only once.

    ``only``: fit just these of ``patients`` (the design is still that of all ``patients``,
    so that fits split over processes are the fits of one call).
    """
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
            for pid in (patients if only is None else only)}
