"""`PatientState`: one patient on one day, split into named parts, and its feature vector."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

PARTS = ("physiological", "environmental", "trigger", "symptom", "temporal", "derived", "treatment")


@dataclass
class PatientState:
    """What is known about a patient on one day.

    Each part maps a variable name to its value (registry units; ``NaN`` = not measured).
    ``physiological``/``environmental``/``trigger``/``symptom`` hold registry variables of that
    category; ``temporal`` calendar facts (``weekend``); ``derived`` the toolkit's derived
    features (``pressure_change``, ``stress_letdown`` ...); ``treatment`` exposures in [0, 1] to
    each treatment course plus registry variables of category ``treatment``.

    Feature names are ``<part>.<name>`` (``trigger.stress``, ``derived.sleep_debt``); names may
    themselves contain dots, the part is what precedes the first one.
    """

    patient_id: str = ""
    date: pd.Timestamp | None = None
    physiological: dict[str, float] = field(default_factory=dict)
    environmental: dict[str, float] = field(default_factory=dict)
    trigger: dict[str, float] = field(default_factory=dict)
    symptom: dict[str, float] = field(default_factory=dict)
    temporal: dict[str, float] = field(default_factory=dict)
    derived: dict[str, float] = field(default_factory=dict)
    treatment: dict[str, float] = field(default_factory=dict)

    def feature_names(self) -> list[str]:
        """``<part>.<name>`` for every value held, parts in :data:`PARTS` order."""
        return [f"{part}.{name}" for part in PARTS for name in getattr(self, part)]

    def to_feature_vector(self, names: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
        """The state as a float vector.

        Parameters
        ----------
        names : sequence of str, optional
            Order (and selection) of features; a name the state lacks gives ``NaN``.
            Default: :meth:`feature_names`.

        Returns
        -------
        values : ndarray, shape (n_features,)
        names : list of str

        """
        names = list(self.feature_names() if names is None else names)
        values = np.full(len(names), np.nan)
        for i, full in enumerate(names):
            part, name = split_feature(full)
            values[i] = getattr(self, part).get(name, np.nan)
        return values, names

    @classmethod
    def from_feature_vector(cls, values: Sequence[float] | np.ndarray, names: Sequence[str],
                            patient_id: str = "", date: pd.Timestamp | None = None
                            ) -> PatientState:
        """Inverse of :meth:`to_feature_vector` (``NaN`` entries are kept as ``NaN``)."""
        values = np.asarray(values, dtype=float)
        if values.shape != (len(names),):
            raise ValueError(f"values shape {values.shape} does not match {len(names)} names")
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        parts: dict[str, dict[str, float]] = {p: {} for p in PARTS}
        for full, value in zip(names, values, strict=True):
            part, name = split_feature(full)
            parts[part][name] = float(value)
        return cls(patient_id=patient_id, date=date, **parts)

    def update(self, values: Mapping[str, float]) -> PatientState:
        """A copy with some features (``<part>.<name>``) set to new values."""
        vec, names = self.to_feature_vector()
        extra = [n for n in values if n not in names]
        names = [*names, *extra]
        vec = np.concatenate([vec, np.full(len(extra), np.nan)])
        for name, value in values.items():
            vec[names.index(name)] = value
        return PatientState.from_feature_vector(vec, names, self.patient_id, self.date)


def split_feature(full: str) -> tuple[str, str]:
    """``"trigger.stress"`` → ``("trigger", "stress")``; unknown parts are an error."""
    part, sep, name = full.partition(".")
    if not sep or not name or part not in PARTS:
        raise ValueError(f"feature name {full!r} must be '<part>.<name>' with part in {PARTS}")
    return part, name
