"""The variable registry of docs/SCHEMA.md: names, categories, units, ranges and daily aggregation.

Every ``observations.variable`` must be a registry name; a cohort may declare extra variables in
its ``variables`` file, which :meth:`Registry.extended` adds to the built-in ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields

from migraine_bayes.errors import did_you_mean

CATEGORIES = ("physiological", "environmental", "trigger", "symptom", "treatment")
AGGREGATES = ("mean", "sum", "max", "last", "any")


@dataclass(frozen=True)
class Variable:
    """One registry entry.

    Attributes
    ----------
    name : str
        Name used in ``observations.variable``.
    category : str
        One of :data:`CATEGORIES`.
    unit : str
        Unit of ``value`` (``ms``, ``hPa``, ``0/1`` ...).
    min, max : float
        Inclusive valid range; a value outside it is an input error, never clipped.
    aggregate : str
        How measurements within a day become the daily value, one of :data:`AGGREGATES`.
    description : str
        Free text.

    """

    name: str
    category: str
    unit: str
    min: float
    max: float
    aggregate: str
    description: str = ""

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(
                f"variable {self.name!r}: category {self.category!r} not in {CATEGORIES}")
        if self.aggregate not in AGGREGATES:
            raise ValueError(
                f"variable {self.name!r}: aggregate {self.aggregate!r} not in {AGGREGATES}")
        if not self.min <= self.max:
            raise ValueError(f"variable {self.name!r}: min {self.min} > max {self.max}")
        if "." in self.name:
            raise ValueError(f"variable {self.name!r}: names may not contain '.'")

    def record(self) -> dict:
        """The entry as a row of a cohort's ``variables`` file (:data:`VARIABLE_COLUMNS`)."""
        return asdict(self)

    @property
    def is_binary(self) -> bool:
        """True for 0/1 indicators (range exactly [0, 1] with ``max``/``any`` aggregation)."""
        return self.min == 0 and self.max == 1 and self.aggregate in ("max", "any")


VARIABLE_COLUMNS = tuple(f.name for f in fields(Variable))  # a ``variables`` file's columns

_SYMPTOMS = ("yawning", "neck_stiffness", "fatigue", "mood_change", "food_craving", "photophobia")

BUILTIN_VARIABLES: tuple[Variable, ...] = (
    Variable("hrv_rmssd", "physiological", "ms", 1, 300, "mean", "heart-rate variability (RMSSD)"),
    Variable("resting_hr", "physiological", "bpm", 25, 220, "mean", "resting heart rate"),
    Variable("eda", "physiological", "µS", 0, 100, "mean", "electrodermal activity"),
    Variable("skin_temp", "physiological", "°C", 25, 42, "mean", "skin temperature"),
    Variable("steps", "physiological", "count", 0, 100000, "sum", "step count"),
    Variable("sleep_duration", "trigger", "h", 0, 24, "sum", "sleep, night ending that morning"),
    Variable("sleep_quality", "trigger", "0–10", 0, 10, "mean", "self-rated sleep quality"),
    Variable("stress", "trigger", "0–10", 0, 10, "mean", "self-rated stress"),
    Variable("alcohol", "trigger", "standard drinks", 0, 40, "sum", "alcohol intake"),
    Variable("caffeine", "trigger", "mg", 0, 2000, "sum", "caffeine intake"),
    Variable("skipped_meal", "trigger", "0/1", 0, 1, "max", "a meal was skipped"),
    Variable("menstruation", "trigger", "0/1", 0, 1, "max", "menstrual bleeding that day"),
    Variable("screen_time", "trigger", "h", 0, 24, "sum", "screen time"),
    Variable("pressure", "environmental", "hPa", 870, 1085, "mean", "barometric pressure"),
    Variable("temperature", "environmental", "°C", -60, 60, "mean", "outdoor temperature"),
    Variable("humidity", "environmental", "%", 0, 100, "mean", "relative humidity"),
    Variable("pm25", "environmental", "µg/m³", 0, 1000, "mean", "fine particulate matter"),
    Variable("light_exposure", "environmental", "lux", 0, 200000, "mean", "light exposure"),
    Variable("noise", "environmental", "dB(A)", 0, 140, "mean", "noise level"),
    Variable("diary_entry", "symptom", "0/1", 0, 1, "max", "diary completed that day"),
    *(Variable(s, "symptom", "0/1", 0, 1, "max", f"premonitory symptom: {s}") for s in _SYMPTOMS),
)

# Variables that describe diary bookkeeping rather than the patient; never model features.
BOOKKEEPING = frozenset({"diary_entry"})


class Registry:
    """An immutable, name-indexed set of :class:`Variable`.

    Examples
    --------
    >>> reg = Registry.builtin()
    >>> reg["resting_hr"].max
    220

    """

    def __init__(self, variables: Iterable[Variable]) -> None:
        self._vars: dict[str, Variable] = {}
        for var in variables:
            if var.name in self._vars:
                raise ValueError(f"duplicate variable {var.name!r} in registry")
            self._vars[var.name] = var

    @classmethod
    def builtin(cls) -> Registry:
        """The registry of docs/SCHEMA.md."""
        return cls(BUILTIN_VARIABLES)

    def extended(self, extra: Iterable[Variable]) -> Registry:
        """A new registry with ``extra`` added; redefining an existing name is an error."""
        extra = list(extra)
        clash = [v.name for v in extra if v.name in self._vars]
        if clash:
            raise ValueError(f"variables {clash} are already in the registry")
        return Registry([*self._vars.values(), *extra])

    def __getitem__(self, name: str) -> Variable:
        try:
            return self._vars[name]
        except KeyError:
            hint = did_you_mean(name, self._vars) or (
                f"; available: {', '.join(sorted(self._vars))}")
            raise KeyError(f"unknown variable {name!r}{hint}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._vars

    def __iter__(self) -> Iterator[Variable]:
        return iter(self._vars.values())

    def __len__(self) -> int:
        return len(self._vars)

    def declared(self) -> list[Variable]:
        """The entries the built-in registry lacks: a cohort's declared variables."""
        builtin = {v.name for v in BUILTIN_VARIABLES}
        return [v for v in self if v.name not in builtin]

    def names(self, category: str | None = None) -> list[str]:
        """Variable names, optionally only those of one category, in registry order."""
        return [v.name for v in self if category is None or v.category == category]

    def to_records(self) -> list[dict]:
        """Plain dicts, e.g. for ``twin.json``."""
        return [dict(v.__dict__) for v in self]
