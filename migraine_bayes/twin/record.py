"""What every part of a twin shares: its constants, its errors and :class:`TwinRecord`.

:class:`TwinRecord` is the one typed reader of a twin's ``twin.json`` (docs/SCHEMA.md §2): the
model configuration (:attr:`TwinRecord.spec`), versions, the fitting record (sampler,
diagnostics, validation, two-stage fitting), the filter's record, coverage and the audit head.
It is checked when read — a ``twin.json`` missing a field, or with a field of the wrong type, is
a :class:`TwinVersionError` naming the field — and never changed in place:
:meth:`TwinRecord.replace` returns a new record. No other module indexes the JSON itself.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migraine_bayes import __version__
from migraine_bayes.errors import MigraineBayesError
from migraine_bayes.model.spec import ModelSpec
from migraine_bayes.store import crypto

MODEL_NAME = "migraine_twin"
MODEL_VERSION = 1
FORMAT_VERSION = 1
HORIZON_DAYS = 60  # days ahead kept in the fit data: forecasts and time to onset
FILE = "twin.json"

# field -> the JSON types it may hold (None: may be null); every other field is optional
REQUIRED: dict[str, tuple[type, ...]] = {
    "model_name": (str,), "format_version": (int,), "version": (int, float),
    "patients": (list,), "outcome": (str,), "hierarchical": (bool,), "features": (list,),
    "scaling": (dict,), "centers": (dict,), "interventions": (list,), "domain": (dict,),
    "coverage": (dict,), "diagnostics": (dict,),
}


class TwinVersionError(MigraineBayesError):
    """A stored twin written by an incompatible version."""


class TwinError(MigraineBayesError):
    """A twin cannot do what was asked (unknown patient, date outside its data ...)."""


class HistoryError(TwinError):
    """New data contradict days the twin has already seen (changed or deleted history)."""


@dataclass(frozen=True)
class TwinRecord:
    """A twin's ``twin.json``, typed and checked (see the module text).

    Build it with :meth:`from_dict` (or :meth:`read` from a twin directory); write it with
    :meth:`to_dict`. Fields absent from older files read as their defaults.
    """

    _data: Mapping[str, Any]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = FILE) -> TwinRecord:
        """Check and wrap the content of a ``twin.json`` (``where`` names it in errors)."""
        if not isinstance(data, Mapping):
            raise TwinVersionError(f"{where}: not a twin record (a JSON object is needed)")
        name = data.get("model_name")
        fmt = data.get("format_version")
        if fmt != FORMAT_VERSION or name != MODEL_NAME:
            raise TwinVersionError(
                f"{where}: twin format {fmt!r} of model {name!r} (written by migraine_bayes "
                f"{data.get('package_version')}); this is migraine_bayes {__version__}, which "
                f"reads format {FORMAT_VERSION} of {MODEL_NAME!r}: refit the twin with this "
                "version")
        for key, types in REQUIRED.items():
            if key not in data:
                raise TwinVersionError(f"{where}: field {key!r} is missing; refit the twin")
            if not isinstance(data[key], types) or (bool not in types and
                                                    isinstance(data[key], bool)):
                raise TwinVersionError(f"{where}: field {key!r} must be "
                                       f"{' or '.join(t.__name__ for t in types)}, got "
                                       f"{type(data[key]).__name__}")
        return cls(copy.deepcopy(dict(data)))

    @classmethod
    def read(cls, path: str | os.PathLike) -> TwinRecord:
        """The record of the twin directory ``path`` (opened with the key when sealed)."""
        return cls.from_dict(read_json(path), str(Path(path) / FILE))

    def to_dict(self) -> dict[str, Any]:
        """The JSON content (a copy: changing it changes nothing here)."""
        return copy.deepcopy(dict(self._data))

    def replace(self, **changes: Any) -> TwinRecord:
        """A new record with ``changes`` (field → value; None removes nothing, it is stored)."""
        return TwinRecord({**self.to_dict(), **copy.deepcopy(changes)})

    def _get(self, key: str, default: Any = None) -> Any:
        return copy.deepcopy(self._data.get(key, default))

    # ------------------------------------------------------------ identity and versions
    @property
    def model_name(self) -> str:
        """The model's name (:data:`MODEL_NAME`)."""
        return str(self._data["model_name"])

    @property
    def format_version(self) -> int:
        """The twin directory's format (:data:`FORMAT_VERSION`)."""
        return int(self._data["format_version"])

    @property
    def model_version(self) -> int:
        """The model's version (:data:`MODEL_VERSION`)."""
        return int(self._data.get("model_version", MODEL_VERSION))

    @property
    def package_version(self) -> str | None:
        """The migraine_bayes version that wrote the twin."""
        return self._get("package_version")

    @property
    def created(self) -> str | None:
        """When the twin was fitted (ISO 8601, UTC)."""
        return self._get("created")

    @property
    def version(self) -> float:
        """The twin's version: 1.0, 2.0 … for fits onto the same twin, +0.1 per retraining."""
        return float(self._data["version"])

    @property
    def previous_version(self) -> float | None:
        """The version this one replaced (kept under ``versions/``), or None."""
        v = self._data.get("previous_version")
        return None if v is None else float(v)

    # ------------------------------------------------------------ what was fitted
    @property
    def patients(self) -> list[str]:
        """Patient ids, in the posterior's order."""
        return [str(p) for p in self._data["patients"]]

    @property
    def admitted(self) -> list[str]:
        """Patients taken on after the fit, from the population (:meth:`DigitalTwin.admit`)."""
        return [str(p) for p in self._data.get("admitted", [])]

    @property
    def outcome(self) -> str:
        """``onset`` or ``headache_day``."""
        return str(self._data["outcome"])

    @property
    def hierarchical(self) -> bool:
        """True for a cohort (hierarchical) twin, False for a single-patient fit."""
        return bool(self._data["hierarchical"])

    @property
    def interventions(self) -> list[str]:
        """The interventions of the design, in order."""
        return [str(m) for m in self._data["interventions"]]

    @property
    def spec(self) -> ModelSpec:
        """The model configuration (:class:`~migraine_bayes.model.spec.ModelSpec`)."""
        d = self._data
        return ModelSpec.of(outcome=d["outcome"], features=d["features"],
                            interventions=d["interventions"], scaling=d["scaling"],
                            centers=d["centers"], hierarchical=d["hierarchical"],
                            prior=d.get("prior"), domain=d["domain"],
                            latent=d.get("latent"), deviations=d.get("deviations"))

    @property
    def domain(self) -> tuple[float, float, list[float]]:
        """(center, half_width, basis_offset) of the latent basis."""
        dom = self._data["domain"]
        return (float(dom["center"]), float(dom["half_width"]),
                [float(v) for v in dom["basis_offset"]])

    @property
    def spec_hash(self) -> str | None:
        """The configuration's hash saved with the twin (:meth:`ModelSpec.digest`)."""
        return self._get("spec_hash")

    @property
    def coverage(self) -> dict[str, dict]:
        """Per patient: diary start, diary and known days, events, feature coverage."""
        return self._get("coverage")

    def fitted_days(self, patient: str) -> int:
        """Diary days of ``patient`` the posterior was fitted on (0: admitted later)."""
        return int(self._data["coverage"][patient]["diary_days"])

    @property
    def attack_history(self) -> dict[str, dict]:
        """Per patient: attacks, with prodrome, acute treatments with their outcome (counts)."""
        return self._get("attack_history", {})

    @property
    def data_source(self) -> str | None:
        """Where the cohort came from (its folder, as given)."""
        return self._get("data_source")

    # ------------------------------------------------------------ how it was fitted
    @property
    def sampler(self) -> dict:
        """The sampler's settings."""
        return self._get("sampler", {})

    @property
    def diagnostics(self) -> dict:
        """R-hat, ESS, divergences and whether every check passed (``ok``)."""
        return self._get("diagnostics")

    @property
    def checks_ok(self) -> bool:
        """Whether the fit's sampler checks passed."""
        return bool(self._data["diagnostics"]["ok"])

    @property
    def validation(self) -> dict | None:
        """The time-ordered holdout's scores (None: not run)."""
        return self._get("validation")

    @property
    def fitting(self) -> dict | None:
        """A two-stage fit's record: per-patient checks, failures, seconds (None otherwise)."""
        return self._get("fitting")

    @property
    def comparison(self) -> dict | None:
        """A retrained twin's comparison with the version it replaced."""
        return self._get("comparison")

    def patient_checks_ok(self, patient: str) -> bool:
        """Whether ``patient``'s own fit passed its checks (two-stage twins: per patient)."""
        fitting = self._data.get("fitting") or {}
        if patient in fitting.get("patients", {}):
            return bool(fitting["patients"][patient]["ok"])
        if patient in fitting.get("not_fitted", {}):
            return False
        return self.checks_ok

    @property
    def selection(self) -> dict | None:
        """How the structure was chosen (``fit --structure auto``), or None (fixed by flags).

        The criterion, the table, the choice and the reason (:mod:`migraine_bayes.twin.selection`).
        """
        return self._get("selection")

    # ------------------------------------------------------------ the living twin
    @property
    def filter(self) -> dict | None:
        """The particle filter's record: updates, last dates, adaptations (None: never)."""
        return self._get("filter")

    @property
    def audit_head(self) -> dict | None:
        """The audit trail's head this version recorded (verified on load)."""
        return self._get("audit_head")


def read_json(path: str | os.PathLike) -> dict:
    """The raw JSON of the twin directory ``path``'s ``twin.json`` (decrypted when sealed).

    Read through :meth:`TwinRecord.read`; nothing else opens the file's content.
    """
    file = Path(path) / FILE
    try:
        return json.loads(crypto.read_text(file))
    except json.JSONDecodeError as exc:
        raise TwinVersionError(f"{file}: not valid JSON (line {exc.lineno}, column "
                               f"{exc.colno}: {exc.msg}); restore it or refit the twin") from None
