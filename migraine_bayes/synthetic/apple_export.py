"""Write observations as an Apple Health ``export.xml`` (tests, round trips, the benchmark).

The file has the shape of a real export: the XML declaration, the DTD Apple writes (element
and attribute declarations, no entities), ``ExportDate``, ``Me`` and ``Record`` elements with
local wall times and their UTC offset in the given time zone (so daylight-saving changes are
in the file as on a phone). Per variable:

- ``resting_hr``, ``heart_rate``, ``hrv_sdnn``, ``steps``: one record per observation at its
  time;
- ``sleep_duration`` (hours, the night ending that morning): one asleep segment per night,
  starting at 23:00 the evening before and lasting the value in real (absolute) time.

``minute_heart_rate`` adds a heart-rate sample every minute of every day in the span (with
a metadata child, as the Watch writes them) — the volume of a long-worn Watch, for the memory
benchmark.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>
<!ATTLIST HealthData locale CDATA #REQUIRED>
<!ELEMENT ExportDate EMPTY>
<!ATTLIST ExportDate value CDATA #REQUIRED>
<!ELEMENT Me EMPTY>
<!ATTLIST Me HKCharacteristicTypeIdentifierBiologicalSex CDATA #REQUIRED>
<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>
<!ATTLIST Record type CDATA #REQUIRED unit CDATA #IMPLIED value CDATA #IMPLIED
  sourceName CDATA #REQUIRED sourceVersion CDATA #IMPLIED device CDATA #IMPLIED
  creationDate CDATA #IMPLIED startDate CDATA #REQUIRED endDate CDATA #REQUIRED>
<!ELEMENT MetadataEntry EMPTY>
<!ATTLIST MetadataEntry key CDATA #REQUIRED value CDATA #REQUIRED>
]>
<HealthData locale="en_GB">
 <ExportDate value="{export}"/>
 <Me HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexNotSet"/>
"""
TYPES = {"resting_hr": ("HKQuantityTypeIdentifierRestingHeartRate", "count/min"),
         "heart_rate": ("HKQuantityTypeIdentifierHeartRate", "count/min"),
         "hrv_sdnn": ("HKQuantityTypeIdentifierHeartRateVariabilitySDNN", "ms"),
         "steps": ("HKQuantityTypeIdentifierStepCount", "count")}
ASLEEP = "HKCategoryValueSleepAnalysisAsleepCore"


def _stamp(wall: datetime, zone: ZoneInfo) -> str:
    aware = wall.replace(tzinfo=zone)
    return aware.strftime("%Y-%m-%d %H:%M:%S ") + aware.strftime("%z")


def _record(kind: str, unit: str | None, source: str, start: str, end: str, value: str,
            meta: str = "") -> str:
    unit_attr = f' unit="{unit}"' if unit else ""
    head = (f' <Record type="{kind}" sourceName="{source}" sourceVersion="10.1"{unit_attr} '
            f'creationDate="{end}" startDate="{start}" endDate="{end}" value="{value}"')
    return f"{head}>\n{meta} </Record>\n" if meta else f"{head}/>\n"


def records(obs: pd.DataFrame, zone: ZoneInfo, source: str) -> Iterable[str]:
    """Record lines of ``obs`` (``time`` local wall clock, ``variable``, ``value``)."""
    for t, variable, value in obs[["time", "variable", "value"]].itertuples(index=False):
        wall = pd.Timestamp(t).to_pydatetime()
        if variable == "sleep_duration":
            start = (wall.replace(hour=0, minute=0, second=0) - timedelta(hours=1))
            begin = start.replace(tzinfo=zone)
            end = (begin.astimezone(ZoneInfo("UTC")) + timedelta(hours=float(value))
                   ).astimezone(zone)
            yield _record("HKCategoryTypeIdentifierSleepAnalysis", None, source,
                          _stamp(start, zone),
                          end.strftime("%Y-%m-%d %H:%M:%S ") + end.strftime("%z"), ASLEEP)
        elif variable in TYPES:
            kind, unit = TYPES[variable]
            stamp = _stamp(wall, zone)
            yield _record(kind, unit, source, stamp, stamp, repr(float(value)))
        else:
            raise ValueError(f"{variable} has no Apple Health record type here")


def minute_heart_rate(first: str, days: int, zone: ZoneInfo, source: str,
                      seed: int = 0) -> Iterable[str]:
    """A heart-rate sample every minute for ``days`` days from ``first`` (seeded)."""
    rng = np.random.default_rng(seed)
    meta = ('  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="0"/>\n')
    start = datetime.fromisoformat(first)
    for d in range(days):
        day = start + timedelta(days=d)
        bpm = np.round(62 + 8 * rng.standard_normal(1440), 1)
        for m in range(1440):
            stamp = _stamp(day + timedelta(minutes=m), zone)
            yield _record(TYPES["heart_rate"][0], "count/min", source, stamp, stamp,
                          str(bpm[m]), meta)


def write_apple_health(path: str | os.PathLike, lines: Iterable[str],
                       exported: str = "2026-01-06 09:00:00 +0100") -> Path:
    """Write an ``export.xml`` of the given record lines (streamed: any size)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", buffering=1 << 20) as f:
        f.write(HEADER.replace("{export}", exported))
        for line in lines:
            f.write(line)
        f.write("</HealthData>\n")
    return path
