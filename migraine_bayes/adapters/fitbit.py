"""Fitbit data as exported by Fitabase (the research platform most Fitbit studies use).

Fitabase writes one CSV per measure, all patients in each, keyed by the Fitbit ``Id``; dates
are US month/day/year in the wearer's local time (``4/12/2016`` or ``4/12/2016 7:21:00 AM``).
This is also the layout of the public "Fitbit Fitness Tracker Data" (Furberg et al. 2016,
Zenodo 10.5281/zenodo.53894) that the tests import. Each file is recognised by its header:

=================================  ==============  =========================================
file (Fitabase name)               variable        daily rule
=================================  ==============  =========================================
``dailyActivity_merged.csv``       ``steps``       Fitbit's own daily total (``TotalSteps``);
                                                   a day of 0 steps and 1440 sedentary
                                                   minutes is a day not worn: no value
``dailySteps_merged.csv``          ``steps``       Fitbit's own daily total (``StepTotal``)
``sleepDay_merged.csv``            ``sleep_du…``   ``TotalMinutesAsleep`` / 60 on ``SleepDay``
                                                   (Fitbit dates a sleep by the day it ends:
                                                   the night ending that morning)
``heartrate_seconds_merged.csv``   ``heart_rate``  mean of the day's samples (read in chunks)
=================================  ==============  =========================================

Every cell read is checked (date, number); a bad one is named by file, row and column. Two
files giving the same day's steps are exact duplicate rows: refused, or dropped with
``--dedupe`` (counted). ``patients`` picks and renames ids: ``1503960366=P01`` (or the bare
Fitbit id to keep it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from migraine_bayes.adapters.common import Origin, Tables
from migraine_bayes.adapters.wearable import Daily, daily_tables
from migraine_bayes.errors import InputDataError, Problem, ProblemLog

SOURCE = "Fitbit (Fitabase)"
# columns that identify a file → (day column, value column, variable, scale)
LAYOUTS = {
    "dailyActivity": ("ActivityDate", "TotalSteps", "steps", 1.0),
    "dailySteps": ("ActivityDay", "StepTotal", "steps", 1.0),
    "sleepDay": ("SleepDay", "TotalMinutesAsleep", "sleep_duration", 1 / 60),
    "heartrate_seconds": ("Time", "Value", "heart_rate", 1.0),
}
RULES = {"steps": "Fitbit's own daily step total",
         "sleep_duration": "TotalMinutesAsleep / 60 on the day the sleep ended",
         "heart_rate": "mean of the day's heart rate samples"}
FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y", "%Y-%m-%d")
NOT_WORN = "SedentaryMinutes"  # dailyActivity: 0 steps over 1440 sedentary minutes = not worn
CHUNK_ROWS = 500_000


def _layout(path: Path, header: list[str]) -> str:
    for name, (day, value, _, _) in LAYOUTS.items():
        if {"Id", day, value} <= set(header):
            return name
    raise InputDataError([Problem(path.name, "not a Fitabase file this importer reads: "
                                             "expected the columns of " + "; ".join(
                                                 f"{k}_merged.csv (Id, {d}, {v})"
                                                 for k, (d, v, _, _) in LAYOUTS.items()),
                                  value=", ".join(header[:8]))], str(path))


def _days(text: pd.Series) -> pd.Series:
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    for fmt in FORMATS:
        todo = out.isna()
        if not todo.any():
            break
        out[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    return out


def _ids(patients: Sequence[str] | None) -> dict[str, str] | None:
    if patients is None:
        return None
    out = {}
    for item in patients:
        fitbit, sep, ours = item.partition("=")
        out[fitbit.strip()] = ours.strip() if sep else fitbit.strip()
    return out


def fitbit_tables(sources: Sequence[str | Path],
                  patients: Sequence[str] | None = None) -> Tables:
    """Daily observations of every (or each chosen) Fitbit id in the Fitabase files.

    Raises
    ------
    InputDataError
        Every bad cell (file, row, column, rule); an unrecognised file; a chosen id absent.
    """
    ids = _ids(patients)
    log, notices, days = ProblemLog(), [], []
    seen_ids: set[str] = set()
    for path in map(Path, sources):
        header = list(pd.read_csv(path, nrows=0).columns)
        kind = _layout(path, header)
        day_col, value_col, variable, scale = LAYOUTS[kind]
        sums: dict[tuple[str, object], list[float]] = {}
        worn = NOT_WORN if kind == "dailyActivity" and NOT_WORN in header else None
        reader = pd.read_csv(path, dtype=str, keep_default_na=False,
                             usecols=["Id", day_col, value_col, *([worn] if worn else [])],
                             chunksize=CHUNK_ROWS)
        offset, not_worn = 0, 0
        for chunk in reader:
            rows = np.arange(offset + 1, offset + len(chunk) + 1)
            offset += len(chunk)
            chunk = chunk.assign(_row=rows)
            seen_ids.update(chunk["Id"])
            if ids is not None:
                chunk = chunk[chunk["Id"].isin(ids)]
            when = _days(chunk[day_col])
            value = pd.to_numeric(chunk[value_col], errors="coerce")
            for col, bad, rule in ((day_col, when.isna(), "not a Fitabase date "
                                    "(month/day/year, e.g. 4/12/2016 or 4/12/2016 7:21:00 AM)"),
                                   (value_col, value.isna() | ~np.isfinite(value),
                                    "not a number")):
                log.add_rows(path.name, rule, col, chunk.loc[bad, "_row"].tolist(),
                             chunk.loc[bad, col].tolist())
            good = chunk.assign(_day=when.dt.date, _value=value)[~when.isna() & value.notna()]
            if worn:  # Fitbit writes 0 steps for a day the tracker lay unworn: no value
                off = (good["_value"] == 0) & (pd.to_numeric(good[worn], errors="coerce")
                                               >= 1440)
                not_worn += int(off.sum())
                good = good[~off]
            if kind == "heartrate_seconds":
                for (pid, day), g in good.groupby(["Id", "_day"]):
                    s = sums.setdefault((pid, day), [0.0, 0.0, int(g["_row"].iat[0])])
                    s[0] += float(g["_value"].sum())
                    s[1] += len(g)
            else:
                for pid, day, v, row in good[["Id", "_day", "_value", "_row"]].itertuples(
                        index=False):
                    days.append(Daily((ids or {}).get(pid, pid), day, variable, v * scale,
                                      SOURCE, Origin(path.name, int(row), value_col)))
        for (pid, day), (total, n, row) in sorted(sums.items()):
            days.append(Daily((ids or {}).get(pid, pid), day, variable, total / n, SOURCE,
                              Origin(path.name, row, value_col)))
        notices.append(f"{path.name}: {variable}: {RULES[variable]}")
        if not_worn:
            notices.append(f"{path.name}: {not_worn} day(s) with 0 steps and 1440 sedentary "
                           "minutes — the tracker was not worn — have no step value (not 0)")
    if ids is not None:
        for pid in ids:
            if pid not in seen_ids:
                log.add(Problem(", ".join(Path(s).name for s in sources),
                                f"Fitbit id '{pid}' (--patients) is in none of the files"))
    if log:
        raise InputDataError(log.problems(), ", ".join(str(s) for s in sources))
    return daily_tables(days, notices)
