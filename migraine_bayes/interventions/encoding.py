"""Encode interventions and scenarios (docs/SCHEMA.md's scenarios file) into checked objects.

A scenario is a named set of interventions applied from the first simulated day. Three kinds:

* **preventive** medication: shifts the daily attack log-odds by ``delta``, ramping up over weeks
  (:data:`migraine_bayes.state.exposure.TIME_CONSTANTS`, the profile the twin is fitted with);
  ``action: stop`` washes out a drug the patient is taking.
* **acute** medication: ``timing: onset`` (default) treats attacks — pain-free at 2 h — without
  changing how many start (pathway ``attack_outcome``); ``timing: prodrome`` takes it in the
  prodrome, which lowers the chance that a headache follows (pathway ``prodrome``).
* **behavioural**: acts through the patient's own covariates (shift, cap or set a panel
  variable); the twin's own posterior sensitivity carries the effect (pathway ``covariate``).

Every problem of a scenarios file is collected and raised together as
:class:`~migraine_bayes.errors.InputDataError` before anything is simulated.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from migraine_bayes.errors import InputDataError, Problem, did_you_mean
from migraine_bayes.model.catalogue import behaviours, catalogue, medication_class, medications

BASELINE = "baseline"
OVERRIDE_STATUSES = ("excluded", "preferred")
_MED_KEYS = {"medication", "dosage", "dose_mg", "frequency", "timing", "action", "start_day",
             "duration_days"}
_BEH_KEYS = {"behavior", "behaviour", "intensity", "duration", "shift", "value", "max_drinks",
             "shift_mg", "variable", "operation", "start_day", "duration_days"}
_OPERATIONS = ("shift", "cap", "set")
MAX_SCENARIOS = 50  # simulated at once (the service's limit too)
MAX_DEPTH = 8  # a scenario is a list of objects with a params object: 4 levels; overrides 5
MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class Intervention:
    """One encoded intervention.

    Attributes
    ----------
    kind : str
        ``preventive``, ``acute`` or ``behavioral``.
    name : str
        Drug or programme name.
    pathway : str
        ``log_odds`` (preventive), ``attack_outcome`` or ``prodrome`` (acute), ``covariate``.
    action : str
        ``start`` or ``stop`` (medications).
    dose_mg : float or None
    start_day : int
        First simulated day it acts on (0 = the first day after the diary).
    duration_days : int or None
        Days it lasts (None = to the end of the horizon); afterwards it washes out.
    variable, operation, value :
        Behavioural: the panel variable, ``shift``/``cap``/``set``, and the amount (in the
        variable's unit).
    prior : dict
        Published prior of the effect (catalogue entry for this dose), with ``source``.
    params : dict
        The parameters as given.
    """

    kind: str
    name: str
    pathway: str
    action: str = "start"
    dose_mg: float | None = None
    start_day: int = 0
    duration_days: int | None = None
    variable: str | None = None
    operation: str | None = None
    value: float | None = None
    prior: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain dict for JSON output."""
        return asdict(self)


@dataclass(frozen=True)
class Override:
    """A clinician's override of a scenario: ``excluded`` or ``preferred``, with the reason."""

    status: str
    reason: str
    by: str | None = None


@dataclass(frozen=True)
class Scenario:
    """A named set of interventions, with an optional clinician override."""

    name: str
    interventions: tuple[Intervention, ...]
    override: Override | None = None

    @property
    def pathways(self) -> list[str]:
        """The pathways its interventions act through."""
        return sorted({i.pathway for i in self.interventions})


class _Collector:
    def __init__(self, file: str, row: int | None) -> None:
        self.file, self.row, self.problems = file, row, []

    def add(self, column: str | None, rule: str, value: Any = None) -> None:
        self.problems.append(Problem(self.file, rule, self.row, column,
                                     None if value is None else str(value)))


def encode_intervention(kind: str, params: dict[str, Any], *, file: str = "scenario",
                        row: int | None = None) -> Intervention:
    """Encode one intervention of a scenarios file (docs/SCHEMA.md).

    Parameters
    ----------
    kind : str
        ``medication`` (class from the catalogue), ``preventive``, ``acute`` or ``behavioral``.
    params : dict
        Medication: ``medication``, ``dosage`` (``"70mg"``) or ``dose_mg``, ``frequency``,
        ``timing`` (``onset``/``prodrome``, acute only), ``action`` (``start``/``stop``).
        Behavioural: ``behavior`` (a catalogue programme or ``covariate``), ``intensity``,
        ``duration`` (session length, recorded), programme-specific amounts (``shift``,
        ``max_drinks``, ``shift_mg``) or, for ``covariate``, ``variable``, ``operation`` and
        ``value``. Both: ``start_day`` (≥ 0), ``duration_days`` (> 0).
    file, row : str, int
        Where the intervention came from, for error messages.

    Raises
    ------
    InputDataError
        Listing every problem (unknown drug, bad dose, unknown parameter ...).
    """
    col = _Collector(file, row)
    out = _encode(kind, params, col)
    if col.problems:
        raise InputDataError(col.problems, file)
    assert out is not None
    return out


def _encode(kind: str, params: Any, col: _Collector) -> Intervention | None:
    if not isinstance(params, dict):
        col.add("params", "params must be an object", params)
        return None
    kind = {"behavioural": "behavioral"}.get(str(kind), str(kind))
    if kind in ("medication", "preventive", "acute"):
        return _medication(kind, params, col)
    if kind == "behavioral":
        return _behaviour(params, col)
    col.add("type", "type must be 'medication' or 'behavioral' (or 'preventive'/'acute')", kind)
    return None


def _common(params: dict, col: _Collector) -> tuple[int, int | None]:
    start = params.get("start_day", 0)
    if not _is_int(start) or start < 0:
        col.add("params.start_day", "start_day must be a whole number of days ≥ 0", start)
        start = 0
    duration = params.get("duration_days")
    if duration is not None and (not _is_int(duration) or duration <= 0):
        col.add("params.duration_days", "duration_days must be a whole number of days > 0",
                duration)
        duration = None
    return int(start), None if duration is None else int(duration)


def _medication(kind: str, params: dict, col: _Collector) -> Intervention | None:
    for key in sorted(set(params) - _MED_KEYS):
        col.add(f"params.{key}", f"unknown medication parameter (known: {sorted(_MED_KEYS)})")
    name = params.get("medication")
    if not isinstance(name, str) or not name:
        col.add("params.medication", "medication name is required")
        return None
    name = name.strip().lower()
    cls = medication_class(name)
    if cls is None:
        col.add("params.medication", f"unknown medication{did_you_mean(name, medications())} "
                f"(known: {medications()})", name)
        return None
    if kind in ("preventive", "acute") and kind != cls:
        col.add("type", f"{name} is a {cls} medication, not {kind}", kind)
    entry = catalogue()[cls][name]
    dose = _dose(params, col)
    doses = {float(d): d for d in entry["doses_mg"]}
    if dose is not None and dose not in doses:
        col.add("params.dosage", f"no published prior for {name} at this dose "
                f"(catalogued doses: {', '.join(d + ' mg' for d in entry['doses_mg'])})",
                f"{dose:g} mg")
        dose = None
    if dose is None:
        dose = float(next(iter(entry["doses_mg"])))
    action = str(params.get("action", "start")).lower()
    if action not in ("start", "stop"):
        col.add("params.action", "action must be 'start' or 'stop'", action)
    start, duration = _common(params, col)
    prior = dict(entry["doses_mg"][doses[dose]]) | {"source": entry["source"]}
    if cls == "preventive":
        if "timing" in params:
            col.add("params.timing", "timing applies to acute medications only")
        prior |= {"between_patient_sd": entry["between_patient_sd"]}
        pathway = "log_odds"
    else:
        if action == "stop":
            col.add("params.action", "stopping an acute medication is not simulated")
        timing = str(params.get("timing", "onset")).lower()
        if timing not in ("onset", "prodrome"):
            col.add("params.timing", "timing must be 'onset' or 'prodrome'", timing)
        if timing == "prodrome" and "prodrome" not in entry:
            col.add("params.timing", f"no published evidence for {name} taken in the prodrome "
                    "(the PRODROME trial studied ubrogepant)", timing)
        prior |= {"pain_free_2h": entry["pain_free_2h"],
                  "pain_free_2h_placebo": entry["pain_free_2h_placebo"]}
        if timing == "prodrome" and "prodrome" in entry:
            prior |= {"prodrome": entry["prodrome"]}
        pathway = "prodrome" if timing == "prodrome" else "attack_outcome"
    return Intervention(kind=cls, name=name, pathway=pathway, action=action, dose_mg=dose,
                        start_day=start, duration_days=duration, prior=prior,
                        params=dict(params))


def _dose(params: dict, col: _Collector) -> float | None:
    raw = params.get("dosage", params.get("dose_mg"))
    if raw is None:
        return None
    if isinstance(raw, bool):
        col.add("params.dosage", "dosage must be a number of mg or text like '70mg'", raw)
        return None
    if isinstance(raw, int | float):
        value = float(raw)
    else:
        m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(mg|g)?\s*", str(raw).lower())
        if m is None:
            col.add("params.dosage", "dosage must be a number of mg or text like '70mg'", raw)
            return None
        value = float(m.group(1)) * (1000.0 if m.group(2) == "g" else 1.0)
    if not math.isfinite(value) or value <= 0:
        col.add("params.dosage", "dose must be positive", raw)
        return None
    return value


def _behaviour(params: dict, col: _Collector) -> Intervention | None:
    for key in sorted(set(params) - _BEH_KEYS):
        col.add(f"params.{key}", f"unknown behavioural parameter (known: {sorted(_BEH_KEYS)})")
    name = params.get("behavior", params.get("behaviour"))
    if not isinstance(name, str) or name.strip().lower() not in behaviours():
        col.add("params.behavior", f"unknown behaviour{did_you_mean(name, behaviours())} "
                f"(known: {behaviours()})", name)
        return None
    name = name.strip().lower()
    start, duration = _common(params, col)
    if name == "covariate":
        variable, operation = params.get("variable"), params.get("operation")
        value = _number(params, "value", col, required=True)
        if not isinstance(variable, str) or not variable:
            col.add("params.variable", "a covariate scenario names the panel variable, e.g. "
                    "'trigger.caffeine'", variable)
        if operation not in _OPERATIONS:
            col.add("params.operation", f"operation must be one of {list(_OPERATIONS)}",
                    operation)
        prior = {"source": "user-defined change of a covariate"}
    else:
        entry = catalogue()["behavioral"][name]
        variable, operation = entry["variable"], entry["operation"]
        value = entry.get("value")
        if "intensity" in entry:
            level = str(params.get("intensity", "moderate")).lower()
            if level not in entry["intensity"]:
                col.add("params.intensity", f"intensity must be one of {list(entry['intensity'])}",
                        level)
            value = entry["intensity"].get(level, entry["intensity"]["moderate"])
        for key in ("shift", "max_drinks", "shift_mg", "value"):
            if key in params:
                given = _number(params, key, col)
                if given is not None:
                    value = given
        if name == "alcohol_limit" and value is not None and value < 0:
            col.add("params.max_drinks", "max_drinks must be ≥ 0", value)
        prior = {"source": entry["source"]}
    return Intervention(kind="behavioral", name=name, pathway="covariate", start_day=start,
                        duration_days=duration, variable=variable, operation=operation,
                        value=value, prior=prior, params=dict(params))


def _number(params: dict, key: str, col: _Collector, required: bool = False) -> float | None:
    raw = params.get(key)
    if raw is None:
        if required:
            col.add(f"params.{key}", "a number is required")
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        col.add(f"params.{key}", "must be a finite number", raw)
        return None
    return float(raw)


def _depth(x: Any, limit: int = 64) -> int:
    """How deeply ``x`` nests lists and objects (counted up to ``limit``, without recursion)."""
    deepest, stack = 0, [(x, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list) and depth <= limit:
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict)
                                                  else item))
    return deepest


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def parse_scenarios(spec: list[dict] | str | os.PathLike, file: str | None = None
                    ) -> list[Scenario]:
    """Scenarios from docs/SCHEMA.md's scenarios file (a path) or its parsed content (a list).

    Each entry is ``{"name", "type", "params"}`` (one intervention) or ``{"name",
    "interventions": [{"type", "params"}, ...]}`` (a combination); either may carry
    ``"override": {"status": "excluded" | "preferred", "reason": "...", "by": "..."}``.
    The name ``baseline`` is reserved: the no-intervention baseline is always simulated.
    """
    if isinstance(spec, str | os.PathLike):
        path = Path(spec)
        file = file or path.name
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise InputDataError([Problem(file, f"larger than {MAX_FILE_BYTES:,} bytes: a "
                                                    "scenarios file lists a few scenarios")],
                                     file)
            spec = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputDataError([Problem(file, "file not found")], file) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputDataError([Problem(file, f"not valid JSON: {exc}")], file) from None
        except RecursionError:
            raise InputDataError([Problem(file, "JSON nested too deeply")], file) from None
    file = file or "scenarios"
    if not isinstance(spec, list) or not spec:
        raise InputDataError([Problem(file, "must be a non-empty JSON list of scenarios")], file)
    if len(spec) > MAX_SCENARIOS:
        raise InputDataError([Problem(file, f"{len(spec)} scenarios: at most {MAX_SCENARIOS} "
                                            "are simulated at once")], file)
    if _depth(spec) > MAX_DEPTH:
        raise InputDataError([Problem(file, f"JSON nested deeper than {MAX_DEPTH} levels")],
                             file)
    problems: list[Problem] = []
    out: list[Scenario] = []
    seen: set[str] = set()
    for row, entry in enumerate(spec, start=1):
        col = _Collector(file, row)
        if not isinstance(entry, dict):
            col.add(None, "each scenario must be a JSON object", entry)
            problems += col.problems
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            col.add("name", "each scenario needs a name")
            name = f"scenario {row}"
        elif name == BASELINE:
            col.add("name", "'baseline' is reserved: the no-intervention baseline is always "
                    "simulated", name)
        elif name in seen:
            col.add("name", "duplicate scenario name", name)
        seen.add(name)
        items = entry.get("interventions")
        if items is None:
            items = [{"type": entry.get("type"), "params": entry.get("params")}]
        elif not isinstance(items, list) or not items:
            col.add("interventions", "must be a non-empty list", items)
            items = []
        encoded = []
        for item in items:
            if not isinstance(item, dict):
                col.add("interventions", "each intervention must be an object", item)
                continue
            one = _encode(item.get("type"), item.get("params"), col)
            if one is not None:
                encoded.append(one)
        override = _override(entry.get("override"), col)
        problems += col.problems
        out.append(Scenario(name, tuple(encoded), override))
    if problems:
        raise InputDataError(problems, file)
    return out


def _override(raw: Any, col: _Collector) -> Override | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        col.add("override", "override must be an object with status and reason", raw)
        return None
    status, reason = raw.get("status"), raw.get("reason")
    if status not in OVERRIDE_STATUSES:
        col.add("override.status", f"status must be one of {list(OVERRIDE_STATUSES)}", status)
    if not isinstance(reason, str) or not reason.strip():
        col.add("override.reason", "an override needs its reason")
    by = raw.get("by")
    return Override(str(status), str(reason or ""), None if by is None else str(by))
