"""Apple Health ``export.xml`` (or the ``export.zip`` it comes in), read as a stream.

The export is one XML document of ``Record`` elements, each with a ``type``, ``sourceName``,
``unit``, ``startDate``/``endDate`` (local wall time with its UTC offset, e.g.
``2024-03-31 02:30:00 +0200``) and a ``value``. It is parsed with expat event by event, in
chunks, and never held in memory: what is kept is one running total per patient, variable,
source and day, so memory grows with the days covered, not with the file (a 2 GB export is
read in well under 1 GB: ``benchmarks/wearable_memory.py``).

Each record type becomes a daily value by a declared rule (:data:`RULES`; the same words are
written into the cohort's ``variables`` file and docs/import-wearables.md):

========================  ====================================================================
``resting_hr``            the mean of the day's resting heart rate records
``heart_rate``            the mean of the day's heart rate samples
``hrv_sdnn``              nocturnal HRV: the mean SDNN of the samples starting 00:00–05:59
``steps``                 the day's step count: per source, the sum of the samples starting
                          that day; the day takes the source with the most steps (iPhone and
                          Watch count the same steps: adding them would double count)
``sleep_duration``        the night ending that morning: asleep time (core, deep, REM or
                          unspecified; not "in bed", not "awake") of the segments starting from
                          12:00 the day before to 11:59 that day, overlaps counted once; the
                          night takes the source with the most asleep time
========================  ====================================================================

The day of a record is its local calendar day, read from its own UTC offset, so days stay
right across daylight-saving changes and travel; durations are taken between the offset-aware
times (a night over the spring change is an hour shorter on the clock, not in the record).

Every record the rules read is checked: its date, its value, its unit; a broken record is
named by file, line and field. Record types with no rule are counted and listed in a notice,
never dropped in silence. A value's ``source`` names the device kind or the app ("Apple
Watch", "iPhone", "AutoSleep"), never the owner's name the phone puts in it (:func:`device`).
The XML parser refuses entity declarations and external entities
(a hostile file cannot expand or fetch anything).
"""

from __future__ import annotations

import io
import math
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from xml.parsers import expat

from migraine_bayes.adapters.common import Origin, Tables
from migraine_bayes.adapters.wearable import Daily, daily_tables
from migraine_bayes.errors import InputDataError, Problem, ProblemLog

HK = "HKQuantityTypeIdentifier"
SLEEP = "HKCategoryTypeIdentifierSleepAnalysis"
# record type → (variable, expected units)
QUANTITIES = {
    f"{HK}RestingHeartRate": ("resting_hr", {"count/min"}),
    f"{HK}HeartRate": ("heart_rate", {"count/min"}),
    f"{HK}HeartRateVariabilitySDNN": ("hrv_sdnn", {"ms"}),
    f"{HK}StepCount": ("steps", {"count"}),
}
ASLEEP = {"HKCategoryValueSleepAnalysisAsleep", "HKCategoryValueSleepAnalysisAsleepUnspecified",
          "HKCategoryValueSleepAnalysisAsleepCore", "HKCategoryValueSleepAnalysisAsleepDeep",
          "HKCategoryValueSleepAnalysisAsleepREM"}
NOT_ASLEEP = {"HKCategoryValueSleepAnalysisInBed", "HKCategoryValueSleepAnalysisAwake"}
RULES = {
    "resting_hr": "Apple Health: mean of the day's resting heart rate records",
    "heart_rate": "Apple Health: mean of the day's heart rate samples",
    "hrv_sdnn": "Apple Health: nocturnal HRV, mean SDNN of the samples starting 00:00-05:59",
    "steps": "Apple Health: sum of the day's step samples of one source (the source with the "
             "most steps that day)",
    "sleep_duration": "Apple Health: asleep time of the segments starting 12:00 the day before "
                      "to 11:59 (night ending that morning), overlaps once, one source",
}
NIGHT_END_HOUR = 6
CHUNK = 1 << 20


@dataclass
class _Totals:
    """Running daily totals of one export (bounded by days × sources, not by records)."""

    sums: dict[tuple[str, str, date], list[float]] = field(default_factory=dict)
    sleep: dict[tuple[str, date], list[tuple[datetime, datetime]]] = field(default_factory=dict)
    first: dict[tuple[str, str, date], int] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)
    records: int = 0


def _time(text: str | None) -> datetime | None:
    try:
        return datetime.strptime(text or "", "%Y-%m-%d %H:%M:%S %z")
    except ValueError:
        return None


class _Reader:
    def __init__(self, name: str, log: ProblemLog) -> None:
        self.name, self.log, self.t = name, log, _Totals()
        self.parser = expat.ParserCreate()
        self.parser.StartElementHandler = self._start
        self.parser.EntityDeclHandler = self._entity
        self.parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.parser.ExternalEntityRefHandler = lambda *a: 0  # refused: a parse error
        self.root: str | None = None

    def _entity(self, name, *args) -> None:
        raise expat.ExpatError(f"entity declaration '{name}' refused (an export declares none)")

    def _problem(self, rule: str, field_: str, value: object = None) -> None:
        self.log.add(Problem(self.name, rule, row=self.parser.CurrentLineNumber,
                             column=field_, value=None if value is None else str(value)),
                     rule)

    def _start(self, tag: str, attrs: dict[str, str]) -> None:
        if self.root is None:
            self.root = tag
            if tag != "HealthData":
                raise expat.ExpatError(f"the root element is <{tag}>, not <HealthData>: "
                                       "not an Apple Health export")
            return
        if tag != "Record":
            return
        kind = attrs.get("type", "")
        self.t.records += 1
        if kind == SLEEP:
            self._sleep(attrs)
        elif kind in QUANTITIES:
            self._quantity(kind, attrs)
        else:
            self.t.skipped[kind] += 1

    def _when(self, attrs: dict[str, str], key: str) -> datetime | None:
        at = _time(attrs.get(key))
        if at is None:
            self._problem("not a date of the form 2024-03-31 02:30:00 +0200", key,
                          attrs.get(key))
        return at

    def _quantity(self, kind: str, attrs: dict[str, str]) -> None:
        variable, units = QUANTITIES[kind]
        start = self._when(attrs, "startDate")
        try:
            value = float(attrs.get("value", ""))
            ok = math.isfinite(value)
        except ValueError:
            ok = False
        if not ok:
            self._problem("not a number", "value", attrs.get("value"))
        if attrs.get("unit") not in units:
            self._problem(f"unit of {variable} must be {' or '.join(sorted(units))}", "unit",
                          attrs.get("unit"))
            return
        if start is None or not ok:
            return
        if variable == "hrv_sdnn" and start.hour >= NIGHT_END_HOUR:
            self.t.skipped[f"{kind} (daytime)"] += 1
            return
        key = (variable, attrs.get("sourceName", ""), start.date())
        total = self.t.sums.get(key)
        if total is None:
            self.t.sums[key] = [value, 1.0]
            self.t.first[key] = self.parser.CurrentLineNumber
        else:
            total[0] += value
            total[1] += 1

    def _sleep(self, attrs: dict[str, str]) -> None:
        value = attrs.get("value", "")
        if value in NOT_ASLEEP:
            self.t.skipped[f"{SLEEP} ({value})"] += 1
            return
        if value not in ASLEEP:
            self._problem("not a sleep stage of Apple Health", "value", value)
            return
        start, end = self._when(attrs, "startDate"), self._when(attrs, "endDate")
        if start is None or end is None:
            return
        if end < start:
            self._problem("the segment ends before it starts", "endDate", attrs["endDate"])
            return
        night = (start + timedelta(hours=12)).date()  # 12:00 the day before … 11:59
        key = (attrs.get("sourceName", ""), night)
        self.t.sleep.setdefault(key, []).append((start, end))
        self.t.first.setdefault(("sleep_duration", key[0], night), self.parser.CurrentLineNumber)

    def feed(self, chunks: Iterator[bytes]) -> _Totals:
        try:
            for chunk in chunks:
                self.parser.Parse(chunk, False)
            self.parser.Parse(b"", True)
        except expat.ExpatError as exc:
            line = getattr(exc, "lineno", None) or self.parser.CurrentLineNumber
            text = str(exc).split(": line")[0]
            raise InputDataError([*self.log.problems(), Problem(
                self.name, f"not a readable Apple Health export: {text}", row=line)],
                self.name) from None
        if self.root is None:
            raise InputDataError([Problem(self.name, "empty file: no <HealthData> element")],
                                 self.name)
        return self.t


def _chunks(path: Path) -> tuple[str, Iterator[bytes]]:
    """The export's bytes in chunks: ``export.xml`` itself, or inside ``export.zip``."""
    def read(f: io.BufferedIOBase) -> Iterator[bytes]:
        while chunk := f.read(CHUNK):
            yield chunk

    if zipfile.is_zipfile(path):
        z = zipfile.ZipFile(path)
        inner = [n for n in z.namelist() if n.endswith("/export.xml") or n == "export.xml"]
        if len(inner) != 1:
            raise InputDataError([Problem(path.name, "a zip without one export.xml inside "
                                                     "(is it Apple Health's export.zip?)")],
                                 str(path))

        def zipped() -> Iterator[bytes]:
            with z, z.open(inner[0]) as f:
                yield from read(f)
        return f"{path.name}/{inner[0]}", zipped()

    def plain() -> Iterator[bytes]:
        with open(path, "rb") as f:
            yield from read(f)
    return path.name, plain()


def device(source: str) -> str:
    """A record's source as the kind of device or the app, never its owner's name.

    The phone names its devices after their owner ("Jane's Apple Watch", "Jane的iPhone");
    the cohort keeps only "Apple Watch" or "iPhone". An app's name (a sleep tracker) is kept.
    """
    for kind in ("Apple Watch", "iPhone", "iPad"):
        if kind.lower() in source.lower():
            return kind
    return source


def _union_hours(segments: list[tuple[datetime, datetime]]) -> float:
    """Hours covered by the segments, each moment once (offset-aware: absolute time)."""
    total, start, end = timedelta(), None, None
    for s, e in sorted(segments):
        if end is None or s > end:
            if end is not None:
                total += end - start
            start, end = s, e
        elif e > end:
            end = e
    if end is not None:
        total += end - start
    return total.total_seconds() / 3600


def _days(t: _Totals, name: str, patient: str, notices: list[str]) -> list[Daily]:
    out: list[Daily] = []
    by_day: dict[tuple[str, date], dict[str, tuple[float, float]]] = {}
    for (variable, source, day), (total, n) in t.sums.items():
        by_day.setdefault((variable, day), {})[source] = (total, n)
    for key, segments in t.sleep.items():
        by_day.setdefault(("sleep_duration", key[1]), {})[key[0]] = (_union_hours(segments), 1)
    set_aside: dict[str, int] = {}
    for (variable, day), sources in sorted(by_day.items()):
        if variable in ("steps", "sleep_duration"):
            source = max(sources, key=lambda s: (sources[s][0], s))
            value = sources[source][0]
            if len(sources) > 1:
                set_aside[variable] = set_aside.get(variable, 0) + 1
        elif len(sources) > 1:
            # means of several sources would be a value no device recorded: one source per day
            source = max(sources, key=lambda s: (sources[s][1], s))
            value = sources[source][0] / sources[source][1]
            set_aside[variable] = set_aside.get(variable, 0) + 1
        else:
            source = next(iter(sources))
            value = sources[source][0] / sources[source][1]
        line = t.first[(variable, source, day)]
        out.append(Daily(patient, day, variable, value, f"Apple Health: {device(source)}",
                         Origin(name, line, "value")))
    for variable, n in sorted(set_aside.items()):
        notices.append(f"{name}: {n} day(s) of {variable} had several sources; each day took "
                       "one (steps and sleep: the largest; the others: the source with the "
                       "most samples) and set the others aside")
    if t.skipped:
        top = t.skipped.most_common()
        shown = ", ".join(f"{k.removeprefix(HK)}: {n}" for k, n in top[:6])
        notices.append(f"{name}: {sum(t.skipped.values())} of {t.records} records not imported "
                       f"(no daily rule reads them; docs/import-wearables.md): {shown}"
                       + (f" and {len(top) - 6} more types" if len(top) > 6 else ""))
    return out


def apple_health_tables(sources: Sequence[str | Path], patients: Sequence[str]) -> Tables:
    """Daily observations of one patient per export (``patients[i]`` wears ``sources[i]``).

    Raises
    ------
    InputDataError
        Every broken record (file, line, field, rule), or an unreadable file.
    """
    if len(patients) != len(sources):
        raise ValueError(f"apple-health: one patient id per export (--patients), in the "
                         f"order of the files: {len(sources)} export(s), {len(patients)} id(s)")
    log, notices, days = ProblemLog(), [], []
    for path, patient in zip(map(Path, sources), patients, strict=True):
        name, chunks = _chunks(path)
        totals = _Reader(name, log).feed(chunks)
        days += _days(totals, name, patient, notices)
    if log:
        raise InputDataError(log.problems(), ", ".join(str(s) for s in sources))
    imported = sorted({d.variable for d in days})
    notices += [f"{v}: {RULES[v].removeprefix('Apple Health: ')}" for v in imported]
    return daily_tables(days, notices)
