"""HL7 FHIR R4 in: Bundles, single resources or NDJSON (bulk export) → cohort tables.

Every resource is first validated with a FHIR model library (``fhir.resources``, R4B models,
which read R4 resources): a resource that is not valid FHIR is named by file, record (the
Bundle entry or NDJSON line) and field path, with the library's rule. Then, by type
(docs/fhir.md has the codes and an example mapping):

``Patient``
    ``id`` → ``patient_id``; ``gender`` → ``sex``; ``birthDate`` → ``birth_year``. Names,
    identifiers, telecom and address are never read.
``Observation``
    A coded measurement → an observation of the variable its code maps to (:data:`CODES`:
    LOINC for heart rate, resting heart rate, HRV, sleep, steps; ``urn:migraine-bayes:variable``
    for any registry name; more by the mapping's ``[observations]``), at
    ``effectiveDateTime`` (or the period's start) as local wall time, in the variable's unit
    (``valueQuantity`` converted where the unit says so: minutes of sleep → hours).
    A *headache diary* observation (SNOMED 25064002 "Headache", ``valueBoolean``; or
    ``diary_entry``) makes its day a kept diary day, with a headache or without.
``Condition``
    A headache episode (SNOMED migraine/headache codes, ICD-10 G43/G44.2/R51, ICD-11 8A80–8A81)
    with ``onsetDateTime`` → an attack: ``abatementDateTime`` → ``end``, ``severity``
    (SNOMED mild/moderate/severe) → ``peak_severity``, a with-aura code → ``aura``. A
    migraine on the problem list (``category`` ``problem-list-item``) is the diagnosis, not
    an episode: counted, not imported as an attack.
``MedicationAdministration`` / ``MedicationStatement``
    The drug (its own code or a contained ``Medication``) is classed by the mapping's
    ``[medications]``, ``urn:migraine-bayes:medication``, or its ATC code (:data:`ATC`). An
    acute dose taken during an attack becomes the attack's ``acute_medication``,
    ``acute_time`` and ``acute_dose_mg``; a preventive (or acute "as needed") course with a
    period becomes a ``treatments`` row.

Which days are known: a day with a headache diary observation, or with an attack. Every other
day on which the patient has a record gets ``diary_entry`` 0 — an observation in a clinical
record does not mean a headache diary was kept that day, so its outcome is *unknown*, never
an invented attack-free day. Whatever is not imported (a code no rule maps, a resource type
not read, an entered-in-error status, a dose outside any attack) is counted in a notice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from migraine_bayes.adapters.common import Origin, Tables
from migraine_bayes.adapters.mapping import MappingReader
from migraine_bayes.adapters.wearable import DECLARED, declared_frame
from migraine_bayes.cohort.registry import Registry
from migraine_bayes.errors import InputDataError, Problem, ProblemLog

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ATC_SYSTEM = "http://www.whocc.no/atc"
OURS = "urn:migraine-bayes"
VARIABLE_SYSTEM = f"{OURS}:variable"
MEDICATION_SYSTEM = f"{OURS}:medication"
KIND_SYSTEM = f"{OURS}:treatment-kind"
# code → (variable, {unit code or text: factor to the variable's unit})
CODES: dict[str, tuple[str, dict[str, float]]] = {
    f"{LOINC}|8867-4": ("heart_rate", {"/min": 1, "{beats}/min": 1, "beats/minute": 1,
                                        "bpm": 1}),
    f"{LOINC}|40443-4": ("resting_hr", {"/min": 1, "{beats}/min": 1, "beats/minute": 1,
                                         "bpm": 1}),
    f"{LOINC}|80404-7": ("hrv_sdnn", {"ms": 1}),
    f"{LOINC}|93832-4": ("sleep_duration", {"h": 1, "min": 1 / 60}),
    f"{LOINC}|55423-8": ("steps", {"{steps}": 1, "/d": 1, "{#}": 1, "1": 1, "steps": 1}),
    f"{LOINC}|41950-7": ("steps", {"{steps}": 1, "/d": 1, "{#}": 1, "1": 1, "steps": 1}),
}
HEADACHE_DIARY = {f"{SNOMED}|25064002"}  # Observation "Headache" with valueBoolean
HEADACHE = {f"{SNOMED}|{c}" for c in ("37796009", "25064002", "4473006", "56097005",
                                       "193031009", "230462002")}
WITH_AURA = {f"{SNOMED}|4473006", "http://hl7.org/fhir/sid/icd-10|G43.1"}
ICD_PREFIXES = ("http://hl7.org/fhir/sid/icd-10|G43", "http://hl7.org/fhir/sid/icd-10|G44.2",
                "http://hl7.org/fhir/sid/icd-10|R51", "http://id.who.int/icd/release/11/mms|8A8")
SEVERITY = {f"{SNOMED}|255604002": 1, f"{SNOMED}|6736007": 2, f"{SNOMED}|24484000": 3}
ATC = (("N02CC", "acute"), ("N02CD", "preventive"), ("N02CX", "preventive"),
       ("N02B", "acute"), ("N02A", "acute"), ("M01A", "acute"), ("C07A", "preventive"),
       ("N03AX11", "preventive"), ("N06AA09", "preventive"), ("M03AX01", "preventive"),
       ("C09CA06", "preventive"), ("N03AG01", "preventive"))
SKIPPED_STATUS = {"entered-in-error", "cancelled", "not-done", "not-taken", "on-hold",
                  "unknown"}
READ = ("Patient", "Observation", "Condition", "MedicationAdministration",
        "MedicationStatement")


@dataclass
class _Mapping:
    observations: dict[str, tuple[str, dict[str, float]]]
    medications: dict[str, tuple[str, str]]  # code or lower-case text → (kind, name)


def read_fhir_mapping(path: str | Path | None, registry: Registry) -> _Mapping:
    """The built-in codes, extended by an optional TOML mapping (docs/fhir.md)."""
    obs, meds = dict(CODES), {}
    if path is None:
        return _Mapping(obs, meds)
    m = MappingReader(path)
    m.known("the mapping", m.data, {"observations", "medications"})
    for code, spec in m.table("observations").items():
        if not isinstance(spec, dict):
            m.add(f"[observations] '{code}' must be a table, e.g. {{ variable = \"stress\" }}",
                  code)
            continue
        m.known(f"[observations] '{code}'", spec, {"variable", "units"})
        variable = m.text(f"[observations] '{code}'", spec, "variable", required=True)
        if variable and variable not in registry and variable not in DECLARED:
            m.add(f"[observations] '{code}': unknown variable '{variable}'", "variable",
                  variable)
        units = spec.get("units", {"": 1})
        if not isinstance(units, dict) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in units.values()):
            m.add(f"[observations] '{code}': 'units' maps each unit code to the factor to "
                  "the variable's unit, e.g. {{ min = 0.016667, h = 1 }}", "units", units)
            units = {}
        if variable:
            obs[code] = (variable, {str(k): float(v) for k, v in units.items()})
    for code, spec in m.table("medications").items():
        if not isinstance(spec, dict):
            m.add(f"[medications] '{code}' must be a table, e.g. "
                  "{{ kind = \"acute\", name = \"sumatriptan\" }}", code)
            continue
        m.known(f"[medications] '{code}'", spec, {"kind", "name"})
        kind = m.text(f"[medications] '{code}'", spec, "kind", required=True)
        name = m.text(f"[medications] '{code}'", spec, "name", required=True)
        if kind and kind not in ("acute", "preventive", "behavioral"):
            m.add(f"[medications] '{code}': kind must be acute, preventive or behavioral",
                  "kind", kind)
        if kind and name:
            meds[code if "|" in code else code.lower()] = (kind, name)
    m.check()
    return _Mapping(obs, meds)


@dataclass
class _Found:
    """What the resources say, row by row, with where each row came from."""

    rows: dict[str, list[dict]] = field(default_factory=lambda: {
        t: [] for t in ("observations", "attacks", "treatments", "patients", "doses")})
    origins: dict[str, list[Origin]] = field(default_factory=lambda: {
        t: [] for t in ("observations", "attacks", "treatments", "patients", "doses")})
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, row: dict, origin: Origin) -> None:
        self.rows[table].append(row)
        self.origins[table].append(origin)

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1


def _resources(path: Path, log: ProblemLog) -> Iterator[tuple[int, str, dict]]:
    """(record, its label, resource) of a Bundle, a resource or NDJSON (one per line)."""
    name = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        log.add(Problem(name, f"not UTF-8 text ({exc.reason})"))
        return
    if path.suffix.lower() == ".ndjson":
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    yield i, f"line {i}", json.loads(line)
                except json.JSONDecodeError as exc:
                    log.add(Problem(name, f"not JSON: {exc.msg}", row=i))
        return
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        log.add(Problem(name, f"not JSON: {exc.msg} (line {exc.lineno})"))
        return
    if not isinstance(doc, dict) or "resourceType" not in doc:
        log.add(Problem(name, "not a FHIR resource: no resourceType"))
        return
    if doc["resourceType"] == "Bundle":
        for i, entry in enumerate(doc.get("entry") or [], 1):
            res = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(res, dict):
                yield i, f"entry {i}", res
            else:
                log.add(Problem(name, "a Bundle entry without a resource", row=i))
    else:
        yield 1, "the resource", doc


def _valid(res: dict, name: str, record: int, log: ProblemLog) -> bool:
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    kind = res.get("resourceType")
    try:
        model = get_fhir_model_class(str(kind))
    except (KeyError, ValueError):
        log.add(Problem(name, "not a FHIR resource type", row=record, column="resourceType",
                        value=str(kind)))
        return False
    try:
        model.model_validate(res)
    except ValidationError as exc:
        for err in exc.errors()[:5]:
            path = ".".join(str(p) for p in err["loc"]) or "resource"
            log.add(Problem(name, f"not valid FHIR {kind}: {err['msg']}", row=record,
                            column=path, value=_short(err.get("input"))),
                    f"not valid FHIR {kind}")
        return False
    return True


def _short(value: object) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _codes(concept: dict | None) -> list[str]:
    if not concept:
        return []
    return [f"{c.get('system', '')}|{c.get('code', '')}" for c in concept.get("coding") or []]


def _text(concept: dict | None) -> str:
    if not concept:
        return ""
    return concept.get("text") or next((c.get("display") for c in concept.get("coding") or []
                                        if c.get("display")), "")


def _subject(res: dict) -> str | None:
    ref = (res.get("subject") or res.get("patient") or {}).get("reference") or ""
    parts = ref.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Patient":
        return parts[-1]
    return None


def _wall(text: str | None) -> str | None:
    """An ISO date/dateTime as local wall time (its offset dropped: the patient's clock)."""
    if not text:
        return None
    t = text[:19]
    if len(t) == 10:
        return f"{t}T00:00:00"
    if len(t) == 19 and t[10] == "T":
        return t
    if len(t) == 16:
        return f"{t}:00"
    return None


def _effective(res: dict) -> tuple[str | None, str]:
    for key in ("effectiveDateTime", "effectiveInstant", "occurrenceDateTime"):
        if key in res:
            return _wall(res[key]), key
    period = res.get("effectivePeriod")
    if period:
        return _wall(period.get("start")), "effectivePeriod.start"
    return None, "effectiveDateTime"


class _Reader:
    def __init__(self, mapping: _Mapping, registry: Registry, log: ProblemLog) -> None:
        self.m, self.registry, self.log, self.f = mapping, registry, log, _Found()

    def read(self, name: str, record: int, res: dict) -> None:
        kind = res["resourceType"]
        if kind not in READ:
            self.f.count(f"{kind} resources (not read)")
            return
        if res.get("status") in SKIPPED_STATUS:
            self.f.count(f"{kind} resources with status {res['status']}")
            return
        where = Origin(name, record)
        if kind == "Patient":
            self._patient(res, where)
            return
        pid = _subject(res)
        if pid is None:
            self.log.add(Problem(name, "no subject Patient/… reference", row=record,
                                 column="subject"))
            return
        getattr(self, f"_{kind.lower()}")(res, pid, name, record)

    def _patient(self, res: dict, where: Origin) -> None:
        row = {"patient_id": res.get("id")}
        sex = {"male": "M", "female": "F"}.get(res.get("gender", ""))
        if sex:
            row["sex"] = sex
        if res.get("birthDate"):
            row["birth_year"] = res["birthDate"][:4]
        self.f.add("patients", row, where)

    def _observation(self, res: dict, pid: str, name: str, record: int) -> None:
        codes = _codes(res.get("code"))
        when, time_field = _effective(res)
        if when is None:
            self.log.add(Problem(name, "an observation needs its time (effectiveDateTime, "
                                       "effectiveInstant or effectivePeriod.start)",
                                 row=record, column=time_field))
            return
        if any(c in HEADACHE_DIARY for c in codes):
            if "valueBoolean" not in res:
                self.log.add(Problem(name, "a headache diary observation needs valueBoolean "
                                           "(true: headache that day)", row=record,
                                     column="valueBoolean"))
                return
            day = when[:10] + "T00:00:00"
            self.f.add("observations", {"patient_id": pid, "time": day,
                                        "variable": "diary_entry", "value": 1.0,
                                        "source": "FHIR"}, Origin(name, record, "code"))
            if res["valueBoolean"]:
                self.f.add("attacks", {"patient_id": pid, "onset": day},
                           Origin(name, record, "valueBoolean"))
            return
        target = next((self.m.observations[c] for c in codes if c in self.m.observations),
                      None)
        if target is None:
            ours = [c.split("|", 1)[1] for c in codes if c.startswith(f"{VARIABLE_SYSTEM}|")]
            if ours:
                target = (ours[0], {"": 1.0})
        if target is None:
            self.f.count("Observations with a code no rule maps ("
                         + (_text(res.get("code")) or ", ".join(codes) or "no code") + ")")
            return
        variable, units = target
        value, field_ = self._value(res, units, name, record, variable)
        if value is None:
            return
        self.f.add("observations", {"patient_id": pid, "time": when, "variable": variable,
                                    "value": value, "source": "FHIR"},
                   Origin(name, record, field_))

    def _value(self, res: dict, units: dict[str, float], name: str, record: int,
               variable: str) -> tuple[float | None, str]:
        if "valueQuantity" in res:
            q = res["valueQuantity"]
            unit = q.get("code") or q.get("unit") or ""
            factor = units.get(unit, units.get("") if len(units) == 1 and "" in units else None)
            if factor is None:
                self.log.add(Problem(name, f"unit of {variable} must be one of "
                                           f"{', '.join(sorted(units))}", row=record,
                                     column="valueQuantity.code", value=unit),
                             f"unit of {variable}")
                return None, "valueQuantity.value"
            return float(q.get("value")) * factor, "valueQuantity.value"
        if "valueInteger" in res:
            return float(res["valueInteger"]), "valueInteger"
        if "valueBoolean" in res:
            return float(bool(res["valueBoolean"])), "valueBoolean"
        self.log.add(Problem(name, f"{variable} needs a number (valueQuantity, valueInteger "
                                   "or valueBoolean)", row=record, column="value[x]"),
                     f"{variable} needs a number")
        return None, "value[x]"

    def _condition(self, res: dict, pid: str, name: str, record: int) -> None:
        codes = _codes(res.get("code"))
        if not any(c in HEADACHE or c.startswith(ICD_PREFIXES) for c in codes):
            self.f.count("Conditions that are not headache episodes ("
                         + (_text(res.get("code")) or "no code") + ")")
            return
        categories = {c.split("|")[-1] for cat in res.get("category") or [] for c in _codes(cat)}
        if "problem-list-item" in categories:
            self.f.count("headache diagnoses on the problem list (not an episode)")
            return
        onset = _wall(res.get("onsetDateTime"))
        if onset is None:
            self.log.add(Problem(name, "a headache episode needs onsetDateTime", row=record,
                                 column="onsetDateTime", value=_short(
                                     res.get("onsetString") or res.get("onsetDateTime"))))
            return
        row = {"patient_id": pid, "onset": onset,
               "end": _wall(res.get("abatementDateTime")),
               "peak_severity": next((SEVERITY[c] for c in _codes(res.get("severity"))
                                      if c in SEVERITY), None),
               "aura": any(c in WITH_AURA for c in codes) or None}
        self.f.add("attacks", row, Origin(name, record, "onsetDateTime"))

    def _medication(self, res: dict) -> tuple[str | None, str | None, str]:
        concept = res.get("medicationCodeableConcept")
        ref = (res.get("medicationReference") or {}).get("reference", "")
        if concept is None and ref.startswith("#"):
            contained = {c.get("id"): c for c in res.get("contained") or []}
            concept = (contained.get(ref[1:]) or {}).get("code")
        codes, text = _codes(concept), _text(concept)
        for c in codes:
            if c in self.m.medications:
                return (*self.m.medications[c], text)
        if text.lower() in self.m.medications:
            return (*self.m.medications[text.lower()], text)
        ours = [c.split("|", 1)[1] for c in codes if c.startswith(f"{MEDICATION_SYSTEM}|")]
        kinds = [c.split("|", 1)[1] for cat in ([res.get("category")] if res.get("category")
                                                else []) for c in _codes(cat)
                 if c.startswith(f"{KIND_SYSTEM}|")]
        if ours:
            return (kinds[0] if kinds else "acute"), ours[0], text
        for c in codes:
            if c.startswith(f"{ATC_SYSTEM}|"):
                atc = c.split("|", 1)[1]
                kind = next((k for prefix, k in ATC if atc.startswith(prefix)), None)
                if kind:
                    return kind, (text or atc).lower(), text
        return None, None, text or ", ".join(codes) or "no code"

    def _medicationadministration(self, res: dict, pid: str, name: str,
                                  record: int) -> None:
        self._dose(res, pid, name, record, (res.get("dosage") or {}).get("dose"))

    def _medicationstatement(self, res: dict, pid: str, name: str, record: int) -> None:
        dosage = (res.get("dosage") or [{}])[0]
        dose = next((d.get("doseQuantity") for d in dosage.get("doseAndRate") or []
                     if d.get("doseQuantity")), None)
        self._dose(res, pid, name, record, dose)

    def _dose(self, res: dict, pid: str, name: str, record: int, dose: dict | None) -> None:
        kind, drug, text = self._medication(res)
        if kind is None:
            self.f.count(f"medications the mapping does not class ({text})")
            return
        mg = None
        if dose and dose.get("value") is not None:
            if (dose.get("code") or dose.get("unit")) != "mg":
                self.log.add(Problem(name, "a dose is read in mg", row=record,
                                     column="dose.code", value=dose.get("code")
                                     or dose.get("unit")))
                return
            mg = float(dose["value"])
        period = res.get("effectivePeriod")
        if period and period.get("start") and (kind != "acute" or period.get("end") is None):
            self.f.add("treatments", {"patient_id": pid, "kind": kind, "name": drug,
                                      "start": _wall(period["start"]),
                                      "end": _wall(period.get("end")), "dose_mg": mg},
                       Origin(name, record, "effectivePeriod.start"))
            return
        when, time_field = _effective(res)
        if when is None or kind != "acute":
            self.log.add(Problem(name, f"a {kind} medication needs its time or period",
                                 row=record, column=time_field))
            return
        self.f.add("doses", {"patient_id": pid, "time": when, "name": drug, "mg": mg},
                   Origin(name, record, time_field))

    def tables(self) -> Tables:
        f = self.f
        frames = {t: pd.DataFrame(f.rows[t]) for t in ("observations", "attacks", "treatments",
                                                       "patients")}
        attacks = frames["attacks"]
        notices = []
        doses = pd.DataFrame(f.rows["doses"], columns=["patient_id", "time", "name", "mg"])
        if len(doses) and len(attacks):
            attacks = self._with_doses(attacks, doses, notices)
        elif len(doses):
            notices.append(f"{len(doses)} acute dose(s) outside any attack: not imported")
        frames["attacks"] = attacks
        frames["observations"] = self._unknown_days(frames["observations"], attacks, notices)
        for what, n in sorted(f.counts.items()):
            notices.append(f"not imported: {n} {what}")
        origins = dict(f.origins)
        origins["observations"] = origins["observations"] + [
            Origin("kept days")] * (len(frames["observations"]) - len(origins["observations"]))
        frames["variables"] = declared_frame(frames["observations"].get(
            "variable", pd.Series(dtype=str)))
        origins["variables"] = [Origin("declared variables")] * len(frames["variables"])
        for t in ("treatments", "patients"):
            if frames[t].empty:
                frames[t] = None
        if frames["observations"].empty:
            frames["observations"] = pd.DataFrame(columns=["patient_id", "time", "variable",
                                                           "value"])
        if attacks.empty:
            frames["attacks"] = pd.DataFrame(columns=["patient_id", "onset"])
        return Tables(frames, origins, notices, time_field=None)

    def _with_doses(self, attacks: pd.DataFrame, doses: pd.DataFrame,
                    notices: list[str]) -> pd.DataFrame:
        attacks = attacks.copy()
        for col in ("acute_medication", "acute_time", "acute_dose_mg"):
            attacks[col] = None
        onset = pd.to_datetime(attacks["onset"], errors="coerce")
        end = pd.to_datetime(attacks["end"], errors="coerce") if "end" in attacks else onset
        end = end.fillna(onset + pd.Timedelta(hours=72))
        outside = 0
        for d in doses.itertuples(index=False):
            t = pd.Timestamp(d.time)
            hit = attacks.index[(attacks["patient_id"] == d.patient_id)
                                & (onset - pd.Timedelta(hours=12) <= t) & (t <= end)]
            free = [i for i in hit if attacks.at[i, "acute_medication"] is None]
            if not free:
                outside += 1
                continue
            i = free[0]
            attacks.at[i, "acute_medication"] = d.name
            attacks.at[i, "acute_time"] = d.time
            attacks.at[i, "acute_dose_mg"] = d.mg
        if outside:
            notices.append(f"{outside} acute dose(s) outside any attack (or a second dose of "
                           "one attack): not imported — the cohort keeps one acute dose per "
                           "attack")
        return attacks

    def _unknown_days(self, obs: pd.DataFrame, attacks: pd.DataFrame,
                      notices: list[str]) -> pd.DataFrame:
        if obs.empty:
            return obs
        days = obs.assign(day=obs["time"].str[:10])
        entries = days[days["variable"] == "diary_entry"]
        kept = set(zip(entries["patient_id"], entries["day"], strict=True))
        if len(attacks):
            kept |= set(zip(attacks["patient_id"], attacks["onset"].str[:10], strict=True))
        recorded = days[["patient_id", "day"]].drop_duplicates()
        unknown = [(p, d) for p, d in recorded.itertuples(index=False) if (p, d) not in kept]
        if unknown:
            notices.append(f"{len(unknown)} day(s) with observations but no headache diary "
                           "entry or episode: their outcome is unknown (diary_entry 0), not "
                           "attack-free")
            obs = pd.concat([obs, pd.DataFrame({
                "patient_id": [p for p, _ in unknown],
                "time": [f"{d}T00:00:00" for _, d in unknown],
                "variable": "diary_entry", "value": 0.0, "source": "FHIR"})],
                ignore_index=True)
        return obs


def fhir_tables(sources: Sequence[str | Path], mapping: str | Path | None = None,
                patients: Sequence[str] | None = None,
                registry: Registry | None = None) -> Tables:
    """The cohort tables of FHIR files (``patients``: keep only these ids).

    Raises
    ------
    InputDataError
        Every resource that is not valid FHIR or that a rule cannot read, by file, record
        (Bundle entry or NDJSON line) and field.
    """
    registry = registry or Registry.builtin()
    log = ProblemLog()
    reader = _Reader(read_fhir_mapping(mapping, registry), registry, log)
    keep = None if patients is None else set(patients)
    for path in map(Path, sources):
        if not path.is_file():
            raise InputDataError([Problem(path.name, "file does not exist")], str(path))
        for record, _, res in _resources(path, log):
            if not _valid(res, path.name, record, log):
                continue
            pid = res.get("id") if res.get("resourceType") == "Patient" else _subject(res)
            if keep is not None and pid not in keep:
                continue
            reader.read(path.name, record, res)
    if log:
        raise InputDataError(log.problems(), ", ".join(str(s) for s in sources))
    return reader.tables()

