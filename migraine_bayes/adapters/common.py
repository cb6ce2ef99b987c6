"""The one path every importer takes: tables with provenance → validated cohort → folder.

An adapter turns its source files into the cohort tables of docs/SCHEMA.md (``observations``,
``attacks``, ``treatments``, ``patients``, ``variables``) and records, for every row it
produces, where the row came from (source file, record, field). :func:`validated` runs the
cohort's own validation (:func:`migraine_bayes.cohort.io.cohort_from_frames`: the cell, table
and integrity rules of ``load_cohort``, nothing re-implemented) and names every problem by the
source's file, record and field, not by the generated table's row. :func:`write_cohort`
writes the folder atomically: the files are written into a new folder beside the target,
which then takes the target's place; an existing cohort is replaced only with ``force``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from migraine_bayes.cohort.io import Cohort, cohort_from_frames
from migraine_bayes.errors import InputDataError, Problem
from migraine_bayes.store import crypto
from migraine_bayes.store.targets import check_folder_target

TABLES = ("observations", "attacks", "treatments", "patients", "variables")


@dataclass(frozen=True)
class Origin:
    """Where one generated row came from: source file, 1-based record and field."""

    file: str
    record: int | None = None
    field: str | None = None


@dataclass
class Tables:
    """Cohort tables an adapter built, each row with its :class:`Origin`."""

    frames: dict[str, pd.DataFrame]
    origins: dict[str, list[Origin]]
    notices: list[str] = field(default_factory=list)
    time_field: str | None = None  # the source's date field, where the cohort's times came from


def validated(tables: Tables, source: str, dedupe: bool = False) -> Cohort:
    """The cohort of ``tables``, validated by the cohort's own rules.

    ``dedupe``: exact duplicate rows are dropped (and counted) instead of refused.

    Raises
    ------
    InputDataError
        Every problem, each named by the source file, record and field the offending row
        came from (a rule about a whole table or patient keeps the table's name).
    """
    frames = {k: tables.frames.get(k) for k in TABLES}
    try:
        cohort = cohort_from_frames(
            frames["observations"], frames["attacks"], frames["treatments"],
            frames["patients"], frames["variables"], dedupe=dedupe)
    except InputDataError as exc:
        located = [_located(p, tables.origins, tables.time_field) for p in exc.problems]
        raise InputDataError(list(dict.fromkeys(located)), source) from None
    cohort.source = source
    cohort.notices[:0] = tables.notices
    return cohort


TIMES = {"time", "onset", "end", "acute_time", "start", "diary_start", "diary_end"}


def _located(problem: Problem, origins: dict[str, list[Origin]],
             time_field: str | None) -> Problem:
    rows = origins.get(problem.file)
    if problem.row is None or not rows or not 0 < problem.row <= len(rows):
        return problem
    origin = rows[problem.row - 1]
    column = origin.field if origin.field is not None else problem.column
    if problem.column in TIMES and time_field is not None:
        column = time_field
    rule = re.sub(r"of row (\d+)", lambda m: _other(m, rows, origin), problem.rule)
    if problem.column and problem.column != column:
        rule = f"{rule} (cohort column '{problem.column}')"
    return dataclasses.replace(problem, file=origin.file, row=origin.record, column=column,
                               rule=rule, line=None)


def _other(match: re.Match, rows: list[Origin], origin: Origin) -> str:
    """'of row K' (K a generated table's row) as the source row it came from."""
    k = int(match.group(1))
    if not 0 < k <= len(rows) or rows[k - 1].record is None:
        return match.group(0)
    other = rows[k - 1]
    where = "" if other.file == origin.file else f" of {other.file}"
    return f"of row {other.record}{where}"


def appended(existing: Cohort, new: Cohort) -> dict[str, int]:
    """What a longer export adds to a cohort imported from a shorter one (incremental import).

    Every row of ``existing`` on a day up to the patient's last imported day must be in
    ``new`` unchanged, and ``new`` may hold no other row on those days: an export that changes
    what was imported is refused (:class:`InputDataError`, naming the first difference per
    table). A treatment course may have grown (a phase still running). Returns the count of
    new rows per table (all zero: the same export again).
    """
    ends = existing.diary_periods()["end"]
    problems, counts = [], {}
    for table, time, key in (("observations", "time", ["patient_id", "time", "variable"]),
                             ("attacks", "onset", ["patient_id", "onset"]),
                             ("treatments", "start", ["patient_id", "name", "start"])):
        old, cur = getattr(existing, table), getattr(new, table)
        last = cur["patient_id"].map(ends) + pd.Timedelta(days=1)
        seen = cur[cur[time] < last]  # on the days already imported (NaT: a new patient)
        compare = [c for c in old.columns if c in cur.columns and not
                   (table == "treatments" and c == "end")]
        if old.empty and seen.empty:
            counts[table] = len(cur)
            continue
        # compared as text: the same cells read back from the files and typed anew
        merged = old[compare].astype(str).merge(seen[compare].astype(str), how="outer",
                                                indicator=True)
        changed = merged[merged["_merge"] != "both"]
        if len(changed):
            row = changed.sort_values(key).iloc[0]
            was = "only in the cohort" if row["_merge"] == "left_only" else "only in the export"
            problems.append(Problem(table, f"the export changes days already imported: "
                                           f"{len(changed)} row(s) differ, the first: patient "
                                           f"'{row['patient_id']}', {row[time]} ({was}); "
                                           "--force replaces the cohort"))
        counts[table] = len(cur) - len(seen)
    if problems:
        raise InputDataError(problems, "incremental import")
    return counts


def write_cohort(cohort: Cohort, out: str | os.PathLike, force: bool = False) -> Path:
    """Write ``cohort`` to the folder ``out`` atomically (docs/SCHEMA.md files).

    Sealed with the key in use (:mod:`migraine_bayes.store.crypto`), in clear without one. A
    non-empty ``out`` is replaced only with ``force``; until the new folder is complete the
    old one stays as it was.
    """
    out = Path(out)
    check_folder_target(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{out.name}.import-", dir=out.parent))
    try:
        cohort.write(fresh, observations_format="csv",
                     encrypt=crypto.active_key() is not None)
        if out.exists():
            old = out.with_name(f".{out.name}.replaced-{os.getpid()}")
            out.rename(old)
            fresh.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            fresh.rename(out)
    finally:
        if fresh.exists():
            shutil.rmtree(fresh, ignore_errors=True)
    return out
