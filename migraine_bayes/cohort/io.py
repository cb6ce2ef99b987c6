"""Read and validate a cohort folder (docs/SCHEMA.md §1) into a typed :class:`Cohort`.

Every problem in every file is collected (pandera lazy validation plus cross-file rules) and
raised together as one :class:`~migraine_bayes.errors.InputDataError` naming file, row, column
and rule. Nothing is silently dropped, clipped or coerced.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import pandas as pd

from migraine_bayes.cohort import integrity
from migraine_bayes.cohort.parsing import as_text, parse_booleans, parse_numbers, parse_timestamps
from migraine_bayes.cohort.registry import Registry, Variable
from migraine_bayes.cohort.schemas import (
    MAX_ROWS_PER_RULE,
    TableSpec,
    attacks_spec,
    observations_spec,
    patients_spec,
    treatments_spec,
    validate_table,
    variables_spec,
)
from migraine_bayes.errors import InputDataError, Problem, ProblemLog
from migraine_bayes.store import atomic, crypto

TABLES = ("variables", "patients", "observations", "attacks", "treatments")
REQUIRED_TABLES = ("observations", "attacks")
SUFFIXES = (".csv", ".parquet")

_COLUMNS = {
    "observations": ["patient_id", "time", "variable", "value", "source"],
    "attacks": ["patient_id", "onset", "end", "peak_severity", "aura", "prodrome_onset",
                "symptoms", "acute_medication", "acute_dose_mg", "acute_time", "pain_free_2h",
                "postdrome_end", "recurrence_48h"],
    "treatments": ["patient_id", "kind", "name", "start", "end", "dose_mg", "frequency"],
    "patients": ["patient_id", "sex", "birth_year", "diagnosis", "diary_start", "diary_end"],
}
_TIME_COLUMNS = {"time", "onset", "end", "prodrome_onset", "acute_time", "postdrome_end", "start",
                 "diary_start", "diary_end"}
_NUMBER_COLUMNS = {"value", "acute_dose_mg", "dose_mg"}
_INT_COLUMNS = {"peak_severity", "birth_year"}
_BOOL_COLUMNS = {"aura", "pain_free_2h", "recurrence_48h"}


@dataclass
class Cohort:
    """A validated cohort: typed tables plus the registry they were checked against.

    Attributes
    ----------
    observations : DataFrame
        ``patient_id`` (str), ``time`` (datetime64, local wall-clock), ``variable`` (str),
        ``value`` (float, in the registry unit), ``source`` (str or <NA>).
    attacks : DataFrame
        Columns of docs/SCHEMA.md; times as datetime64 (NaT when absent), ``peak_severity`` Int8,
        ``aura``/``pain_free_2h`` boolean.
    treatments, patients : DataFrame
        Typed likewise; empty (with the right columns) when the file was not given.
    registry : Registry
        Built-in variables plus the cohort's declared ones.
    source : str
        Where the tables came from (a folder path or a description), for messages only.
    notices : list of str
        Non-fatal findings worth showing (ignored extra columns, observations outside a declared
        diary period) — said, never silent.

    """

    observations: pd.DataFrame
    attacks: pd.DataFrame
    treatments: pd.DataFrame
    patients: pd.DataFrame
    registry: Registry
    source: str = "in-memory tables"
    notices: list[str] = field(default_factory=list)

    @property
    def patient_ids(self) -> list[str]:
        """Sorted ids of every patient with a diary period."""
        return sorted(self.diary_periods().index)

    def diary_periods(self) -> pd.DataFrame:
        """Per patient: first and last diary day (midnight timestamps) and whether declared.

        docs/SCHEMA.md: ``patients.diary_start``–``diary_end`` when given, else the span of the
        patient's observations and attacks.
        """
        return _diary_periods(self.observations, self.attacks, self.patients)

    def subset(self, patient_ids: Iterable[str]) -> Cohort:
        """The same cohort restricted to ``patient_ids`` (unknown ids are an error)."""
        ids = list(patient_ids)
        unknown = sorted(set(ids) - set(self.patient_ids))
        if unknown:
            raise KeyError(f"unknown patient ids {unknown}; available: {self.patient_ids}")
        keep = set(ids)

        def pick(df: pd.DataFrame) -> pd.DataFrame:
            return df[df["patient_id"].isin(keep)].reset_index(drop=True)

        return Cohort(pick(self.observations), pick(self.attacks), pick(self.treatments),
                      pick(self.patients), self.registry, self.source, list(self.notices))

    def write(self, folder: str | os.PathLike, observations_format: str = "csv",
              encrypt: bool = False) -> Path:
        """Write the cohort as docs/SCHEMA.md files (each written atomically); returns the folder.

        ``observations_format`` is ``"csv"`` or ``"parquet"`` (large wearable streams compress
        far better in Parquet); the other tables are CSV. ``encrypt``: every file sealed with
        the key in use (:mod:`migraine_bayes.store.crypto`; :func:`load_cohort` opens them).
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        extra = self.registry.declared()
        tables = {"observations": self.observations, "attacks": self.attacks,
                  "treatments": self.treatments, "patients": self.patients}
        for stem, df in tables.items():
            if stem in ("treatments", "patients") and df.empty:
                continue
            fmt = observations_format if stem == "observations" else "csv"
            for other in SUFFIXES:  # never leave a stale twin file with the other extension
                (folder / f"{stem}{other}").unlink(missing_ok=True)
            data = (df.to_parquet(index=False) if fmt == "parquet" else
                    text_frame(df).to_csv(index=False).encode("utf-8"))
            _write(folder / f"{stem}.{fmt}", data, encrypt)
        if extra:
            rows = [v.record() for v in extra]
            _write(folder / "variables.csv",
                   pd.DataFrame(rows).to_csv(index=False).encode("utf-8"), encrypt)
        return folder


def _write(target: Path, data: bytes, encrypt: bool) -> None:
    """Write one cohort file atomically; sealed in memory first (no plaintext on disk)."""
    with atomic.atomic_path(target) as tmp:
        tmp.write_bytes(crypto.seal(data, target.name) if encrypt else data)


# ---------------------------------------------------------------- reading files
CHUNK_ROWS = 100_000  # rows validated at a time: a huge invalid file is rejected in bounded memory


def find_table_files(folder: Path) -> tuple[dict[str, Path], list[Problem]]:
    """Locate ``<stem>.csv`` / ``<stem>.parquet`` for each table of docs/SCHEMA.md."""
    found: dict[str, Path] = {}
    problems: list[Problem] = []
    for stem in TABLES:
        paths = [folder / f"{stem}{s}" for s in SUFFIXES if (folder / f"{stem}{s}").is_file()]
        if len(paths) > 1:
            problems.append(Problem(paths[0].name, f"both {paths[0].name} and {paths[1].name} "
                                    "exist; keep one of them"))
        elif paths:
            found[stem] = paths[0]
        elif stem in REQUIRED_TABLES:
            problems.append(Problem(f"{stem}.csv", f"required file {stem}.csv (or "
                                    f"{stem}.parquet) is missing from the cohort folder"))
    return found, problems


def read_chunks(path: Path, log: ProblemLog) -> Iterator[pd.DataFrame]:
    """Yield a CSV (every cell as text) or Parquet file in chunks of :data:`CHUNK_ROWS` rows.

    An unreadable file (or chunk) becomes a problem in ``log`` and ends the iteration.
    """
    name = path.name
    if path.stat().st_size == 0:
        log.add(Problem(name, "file is empty (no header, no rows)"))
        return
    source: Path | io.BytesIO = path
    if crypto.is_sealed_file(path):  # written with a key (an export, a posted diary)
        try:
            source = io.BytesIO(crypto.read_bytes(path))
        except crypto.EncryptionKeyError as exc:
            log.add(Problem(name, str(exc)))
            return
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(source).iter_batches(batch_size=CHUNK_ROWS):
                yield _as_text_times(batch).to_pandas()
            return
        with _text(source) as fh:
            header = next(csv.reader(fh), [])
        dupes = sorted({c for c in header if header.count(c) > 1})
        if dupes:
            log.add(Problem(name, f"duplicate column names {dupes} in the header"))
            return
        with pd.read_csv(source, dtype=str, keep_default_na=False, na_values=[""],
                         encoding="utf-8-sig", chunksize=CHUNK_ROWS) as reader:
            yield from reader
    except UnicodeDecodeError:
        log.add(Problem(name, "file is not UTF-8 text"))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        log.add(Problem(name, f"cannot parse CSV: {exc}".strip()))
    except Exception as exc:  # pyarrow raises many types for corrupt Parquet
        log.add(Problem(name, f"cannot read file: {type(exc).__name__}: {exc}"))


def _as_text_times(batch):
    """Parquet timestamps and dates as ISO text, checked like a CSV's cells.

    Converted by pandas they would overflow (year 3000 in microseconds) before any rule could
    name the row; a zoned timestamp becomes the wall-clock time of its zone (docs/SCHEMA.md).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for column in batch.columns:
        if pa.types.is_timestamp(column.type):
            column = pc.strftime(column, format="%Y-%m-%dT%H:%M:%S")
        elif pa.types.is_date(column.type):
            column = column.cast(pa.string())
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _text(source: Path | io.BytesIO) -> TextIO:
    """A text reader of a CSV file or of its decrypted bytes."""
    if isinstance(source, io.BytesIO):
        return io.TextIOWrapper(io.BytesIO(source.getvalue()), encoding="utf-8-sig",
                                newline="")
    return open(source, newline="", encoding="utf-8-sig")


def read_table(path: Path) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Read one whole file (see :func:`read_chunks`); unreadable files become problems."""
    log = ProblemLog()
    chunks = list(read_chunks(path, log))
    if log:
        return None, log.problems()
    return (pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()), []


def load_cohort(folder: str | os.PathLike, registry: Registry | None = None,
                dedupe: bool = False) -> Cohort:
    """Read and validate a cohort folder.

    Parameters
    ----------
    folder : path
        Folder with ``observations`` and ``attacks`` (CSV or Parquet) and optionally
        ``treatments``, ``patients`` and ``variables``.
    registry : Registry, optional
        Base registry (default: the built-in one); the folder's ``variables`` extend it.
    dedupe : bool
        Drop exact duplicate rows (and say how many in ``notices``) instead of rejecting them.

    Raises
    ------
    InputDataError
        Listing every problem found (the first 50 per rule, counts for the rest), each with
        file, row, column and rule. Files are validated in chunks: once a problem is found no
        more typed rows are kept, so an invalid file of millions of rows is rejected in bounded
        memory.

    """
    folder = Path(folder)
    if folder.is_file():
        raise InputDataError([Problem(str(folder), "is a file; a cohort is a folder of the files "
                                                   "of docs/SCHEMA.md (patients, observations, "
                                                   "attacks ...): give the folder that holds it")],
                             str(folder))
    if not folder.is_dir():
        raise InputDataError([Problem(str(folder), "cohort folder does not exist")], str(folder))
    paths, problems = find_table_files(folder)
    log = ProblemLog(MAX_ROWS_PER_RULE)
    log.extend(problems)
    sealed = {stem: crypto.is_sealed_file(path) for stem, path in paths.items()
              if path.stat().st_size}
    if any(sealed.values()):  # a sealed cohort: a file in clear was not written with the key
        log.extend(Problem(paths[stem].name, "file in clear in a sealed cohort (the other files "
                           "are sealed with the key): a file dropped in would add or change "
                           "rows; seal it (migraine-twin export with the key) or remove it")
                   for stem, is_sealed in sealed.items() if not is_sealed)
    chunks = {stem: read_chunks(path, log) for stem, path in paths.items()}
    names = {stem: path.name for stem, path in paths.items()}
    try:
        return _validate(chunks, names, registry, str(folder), log, dedupe)
    except InputDataError as exc:
        by_name = {path.name: path for path in paths.values() if path.suffix == ".csv"}
        raise InputDataError(_with_lines(exc.problems, by_name), exc.source) from None


def _with_lines(problems: list[Problem], paths: dict[str, Path]) -> list[Problem]:
    """The problems with each CSV row's true first line where a quoted cell spans lines."""
    wanted: dict[str, set[int]] = {}
    for p in problems:
        if p.row is not None and p.file in paths:
            wanted.setdefault(p.file, set()).add(p.row)
    lines: dict[tuple[str, int], int] = {}
    for name, rows in wanted.items():
        path, last = paths[name], max(rows)
        try:
            source = (io.BytesIO(crypto.read_bytes(path)) if crypto.is_sealed_file(path)
                      else path)
            with _text(source) as fh:
                reader = csv.reader(fh)
                next(reader, None)
                start = reader.line_num + 1
                for row, _record in enumerate(reader, start=1):
                    if row in rows and start != row + 1:
                        lines[name, row] = start
                    if row >= last:
                        break
                    start = reader.line_num + 1
        except (OSError, csv.Error, UnicodeDecodeError, crypto.EncryptionKeyError):
            continue  # the rows stand; only the line hint is lost
    if not lines:
        return problems
    return [dataclasses.replace(p, line=lines.get((p.file, p.row))) for p in problems]


def cohort_from_frames(
    observations: pd.DataFrame,
    attacks: pd.DataFrame,
    treatments: pd.DataFrame | None = None,
    patients: pd.DataFrame | None = None,
    variables: pd.DataFrame | None = None,
    registry: Registry | None = None,
    dedupe: bool = False,
) -> Cohort:
    """Validate in-memory tables exactly as :func:`load_cohort` validates files."""
    given = {"observations": observations, "attacks": attacks, "treatments": treatments,
             "patients": patients, "variables": variables}
    chunks = {k: iter([v.reset_index(drop=True)]) for k, v in given.items() if v is not None}
    names = {k: k for k in chunks}
    return _validate(chunks, names, registry, "in-memory tables", ProblemLog(MAX_ROWS_PER_RULE),
                     dedupe)


# ---------------------------------------------------------------- validation
def _validate(chunks: dict[str, Iterator[pd.DataFrame]], names: dict[str, str],
              registry: Registry | None, source: str, log: ProblemLog,
              dedupe: bool) -> Cohort:
    registry = registry or Registry.builtin()
    notices: list[str] = []
    if "variables" in chunks:
        variables = pd.concat(list(chunks["variables"]) or [pd.DataFrame()], ignore_index=True)
        var_problems = validate_table(variables, variables_spec(), names["variables"])
        log.extend(var_problems)
        registry = registry.extended(_declared_variables(variables, var_problems))
    specs: dict[str, TableSpec] = {
        "patients": patients_spec(), "observations": observations_spec(registry),
        "attacks": attacks_spec(registry), "treatments": treatments_spec(),
    }
    typed: dict[str, pd.DataFrame] = {}
    renamed: dict[str, str] = {}
    for stem, spec in specs.items():
        if stem not in chunks:
            continue
        parts, offset, read = [], 0, False
        for chunk in chunks[stem]:
            read = True
            chunk = chunk.reset_index(drop=True)
            if chunk.empty and stem == "observations":
                continue  # a header without rows: said once below
            if offset == 0:
                extra = [c for c in chunk.columns if c not in (*spec.required, *spec.optional)]
                if extra:
                    notices.append(f"{names[stem]}: ignored columns not in docs/SCHEMA.md: {extra}")
            validate_table(chunk, spec, names[stem], log, offset)
            if not log:  # typed rows are kept only while everything is valid
                parts.append(_typed(stem, chunk, renamed))
            offset += len(chunk)
        if read and offset == 0 and stem == "observations":
            log.add(Problem(names[stem], "file has a header but no data rows"))
        if parts:
            typed[stem] = pd.concat(parts, ignore_index=True)
    if log:  # typed frames need valid cells; cross-file rules need typed frames
        raise InputDataError(log.problems(), source)
    if renamed:
        sample = ", ".join(f"'{a}' → '{b}'" for a, b in list(renamed.items())[:3])
        notices.append(f"{len(renamed)} patient id(s) written in Unicode NFKC form ({sample})")
    typed = {stem: typed.get(stem, _typed(stem, None, renamed)) for stem in _COLUMNS}
    typed = _integrity(typed, names, registry, log, notices, dedupe)
    if log:
        raise InputDataError(log.problems(), source)
    return Cohort(typed["observations"], typed["attacks"], typed["treatments"],
                  typed["patients"], registry, source, notices)


def _integrity(t: dict[str, pd.DataFrame], names: dict[str, str], registry: Registry,
               log: ProblemLog, notices: list[str], dedupe: bool) -> dict[str, pd.DataFrame]:
    """Table-level rules (:mod:`migraine_bayes.cohort.integrity`) and cross-file rules."""
    name = {stem: names.get(stem, stem) for stem in _COLUMNS}
    log.extend(integrity.id_problems(t, name))
    for stem in ("observations", "attacks", "treatments"):
        t[stem] = integrity.duplicate_rows(t[stem], name[stem], _COLUMNS[stem], dedupe, log,
                                           notices)
    integrity.observation_problems(t["observations"], registry, name["observations"], log)
    integrity.attack_problems(t["attacks"], name["attacks"], log)
    periods = _diary_periods(t["observations"], t["attacks"], t["patients"])
    _cross_file_problems(t, periods, name, log)
    integrity.outside_declared(t["observations"], periods, name["observations"], log)
    integrity.stray_dates(t["observations"], t["attacks"],
                          set(periods.index[periods["declared"]]), name, log)
    integrity.unkept_days(t["observations"], t["attacks"], periods, t["patients"], registry,
                          name, log)
    return {stem: df.reset_index(drop=True) for stem, df in t.items()}


def _declared_variables(df: pd.DataFrame, problems: list[Problem]) -> list[Variable]:
    bad_rows = {p.row for p in problems if p.row is not None}
    if any(p.row is None for p in problems):  # a missing column: nothing usable
        return []
    out = []
    for i, row in df.iterrows():
        if i + 1 in bad_rows:
            continue
        out.append(Variable(
            name=str(row["name"]).strip(), category=str(row["category"]).strip(),
            unit=str(row["unit"]).strip(), min=float(row["min"]), max=float(row["max"]),
            aggregate=str(row["aggregate"]).strip(),
            description="" if pd.isna(row.get("description")) else str(row["description"]),
        ))
    return out


def _patient_ids(series: pd.Series, renamed: dict[str, str]) -> pd.Series:
    """Opaque string ids in Unicode NFKC (those it changed are collected in ``renamed``).

    Integer-typed ids (Parquet) are written without a decimal point.
    """
    if pd.api.types.is_float_dtype(series) and (series.dropna() % 1 == 0).all():
        series = series.astype("Int64")
    text = as_text(series.astype("string")).astype(object)
    for raw in text.dropna().unique():
        norm = integrity.normalise_id(raw)
        if norm != raw:
            renamed[raw] = norm
    return text.map(lambda v: renamed.get(v, v) if isinstance(v, str) else v)


def _typed(stem: str, df: pd.DataFrame | None, renamed: dict[str, str]) -> pd.DataFrame:
    columns = _COLUMNS[stem]
    out = pd.DataFrame(index=pd.RangeIndex(0 if df is None else len(df)))
    for col in columns:
        raw = df[col] if df is not None and col in df.columns else pd.Series(pd.NA, index=out.index,
                                                                             dtype=object)
        if col == "patient_id":
            out[col] = _patient_ids(raw, renamed)
        elif col in _TIME_COLUMNS:
            out[col] = parse_timestamps(raw)[0]
        elif col in _NUMBER_COLUMNS:
            out[col] = parse_numbers(raw)[0]
        elif col in _INT_COLUMNS:
            out[col] = parse_numbers(raw)[0].round().astype("Int64")
        elif col in _BOOL_COLUMNS:
            out[col] = parse_booleans(raw)[0]
        else:  # pandas' own string dtype (Arrow-backed), as the generator writes it
            out[col] = as_text(raw).astype("str")
    return out


def _diary_periods(obs: pd.DataFrame, attacks: pd.DataFrame, patients: pd.DataFrame
                   ) -> pd.DataFrame:
    # each table's span per patient, then the wider of the two (no copy of the observations)
    spans = pd.concat([obs.groupby("patient_id", observed=True)["time"].agg(["min", "max"]),
                       attacks.groupby("patient_id", observed=True)["onset"].agg(["min", "max"])])
    span = spans.groupby(level=0).agg({"min": "min", "max": "max"})
    observed = set(obs["patient_id"].unique())
    decl = patients.set_index("patient_id")[["diary_start", "diary_end"]]
    ids = sorted(observed | set(decl.index[decl.notna().any(axis=1)]))
    out = pd.DataFrame(index=pd.Index(ids, name="patient_id"))
    start = decl["diary_start"].reindex(ids)
    end = decl["diary_end"].reindex(ids)
    out["start"] = start.fillna(span["min"].reindex(ids)).dt.normalize()
    out["end"] = end.fillna(span["max"].reindex(ids)).dt.normalize()
    out["declared"] = (start.notna() & end.notna()).to_numpy()
    return out


def _cross_file_problems(t: dict[str, pd.DataFrame], periods: pd.DataFrame,
                         names: dict[str, str], log: ProblemLog) -> None:
    for stem in ("attacks", "treatments"):
        df = t[stem]
        orphan = ~df["patient_id"].isin(periods.index)
        for pid, rows in df[orphan].groupby("patient_id").groups.items():
            log.add(Problem(
                names[stem],
                f"patient '{pid}' has no diary period: no observations and no "
                "diary_start/diary_end in patients", row=int(rows[0]) + 1, column="patient_id",
                value=str(pid)))
    first = t["attacks"]["patient_id"].map(periods["start"])
    last = t["attacks"]["patient_id"].map(periods["end"])
    day = t["attacks"]["onset"].dt.normalize()
    outside = first.notna() & ((day < first) | (day > last))
    for i in t["attacks"].index[outside]:
        log.add(Problem(
            names["attacks"], f"attack onset outside the patient's diary period "
            f"{first[i]:%Y-%m-%d}–{last[i]:%Y-%m-%d}", row=i + 1,
            column="onset", value=f"{t['attacks'].at[i, 'onset']:%Y-%m-%dT%H:%M}"),
            rule="attack onset outside the diary period")


def text_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its timestamps as ISO 8601 text (what the cohort files hold)."""
    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return out


# ---------------------------------------------------------------- wide exports
def from_wide(
    df: pd.DataFrame,
    mapping: Mapping[str, str],
    *,
    patient_column: str = "patient_id",
    time_column: str = "time",
    patient_id: str | None = None,
    source: str | None = None,
) -> pd.DataFrame:
    """Turn a wide export (one column per variable) into the long ``observations`` table.

    Parameters
    ----------
    df : DataFrame
        One row per time point, e.g. a wearable or app export.
    mapping : dict
        ``{export column: registry variable}``, e.g. ``{"HRV (ms)": "hrv_rmssd"}``. Columns not
        in the mapping are ignored; mapped columns must exist.
    patient_column, time_column : str
        Columns holding the patient id and the timestamp.
    patient_id : str, optional
        Id for every row, for single-patient exports without a patient column.
    source : str, optional
        Device or app name written to ``source``.

    Returns
    -------
    DataFrame
        Columns ``patient_id, time, variable, value`` (and ``source``); an empty cell means "not
        measured" and yields no row. Values are not validated here: pass the result to
        :func:`cohort_from_frames` or write it and use :func:`load_cohort`.

    """
    problems = []
    if patient_id is None and patient_column not in df.columns:
        problems.append(Problem("wide table", "patient column is missing (or pass patient_id=)",
                                column=patient_column))
    if time_column not in df.columns:
        problems.append(Problem("wide table", "time column is missing", column=time_column))
    for col in mapping:
        if col not in df.columns:
            problems.append(Problem("wide table", f"mapped column is missing; columns are "
                                    f"{list(df.columns)}", column=col))
    if problems:
        raise InputDataError(problems, "wide table")
    ids = pd.Series(patient_id, index=df.index) if patient_id is not None else df[patient_column]
    frames = []
    for col, variable in mapping.items():
        part = pd.DataFrame({"patient_id": ids, "time": df[time_column], "variable": variable,
                             "value": df[col]})
        frames.append(part[~part["value"].isna() & (part["value"].astype(str).str.strip() != "")])
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["patient_id", "time", "variable", "value"])
    if source is not None:
        out["source"] = source
    return out
