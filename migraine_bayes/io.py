"""Read and validate a cohort folder (SCHEMA.md §1) into a typed :class:`Cohort`.

Every problem in every file is collected (pandera lazy validation plus cross-file rules) and
raised together as one :class:`~migraine_bayes.errors.InputDataError` naming file, row, column
and rule. Nothing is silently dropped, clipped or coerced.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import atomic
from .errors import InputDataError, Problem
from .parsing import as_text, parse_booleans, parse_numbers, parse_timestamps
from .registry import Registry, Variable
from .schemas import (
    TableSpec,
    attacks_spec,
    observations_spec,
    patients_spec,
    treatments_spec,
    validate_table,
    variables_spec,
)

TABLES = ("variables", "patients", "observations", "attacks", "treatments")
REQUIRED_TABLES = ("observations", "attacks")
SUFFIXES = (".csv", ".parquet")

_COLUMNS = {
    "observations": ["patient_id", "time", "variable", "value", "source"],
    "attacks": ["patient_id", "onset", "end", "peak_severity", "aura", "prodrome_onset",
                "symptoms", "acute_medication", "acute_dose_mg", "acute_time", "pain_free_2h"],
    "treatments": ["patient_id", "kind", "name", "start", "end", "dose_mg", "frequency"],
    "patients": ["patient_id", "sex", "birth_year", "diagnosis", "diary_start", "diary_end"],
}
_TIME_COLUMNS = {"time", "onset", "end", "prodrome_onset", "acute_time", "start",
                 "diary_start", "diary_end"}
_NUMBER_COLUMNS = {"value", "acute_dose_mg", "dose_mg"}
_INT_COLUMNS = {"peak_severity", "birth_year"}
_BOOL_COLUMNS = {"aura", "pain_free_2h"}


@dataclass
class Cohort:
    """A validated cohort: typed tables plus the registry they were checked against.

    Attributes
    ----------
    observations : DataFrame
        ``patient_id`` (str), ``time`` (datetime64, local wall-clock), ``variable`` (str),
        ``value`` (float, in the registry unit), ``source`` (str or <NA>).
    attacks : DataFrame
        Columns of SCHEMA.md; times as datetime64 (NaT when absent), ``peak_severity`` Int8,
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

        SCHEMA.md: ``patients.diary_start``–``diary_end`` when given, else the span of the
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

    def write(self, folder: str | os.PathLike, observations_format: str = "csv") -> Path:
        """Write the cohort as SCHEMA.md files (each written atomically); returns the folder.

        ``observations_format`` is ``"csv"`` or ``"parquet"`` (large wearable streams compress
        far better in Parquet); the other tables are CSV.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        extra = [v for v in self.registry if v.name not in {b.name for b in Registry.builtin()}]
        tables = {"observations": self.observations, "attacks": self.attacks,
                  "treatments": self.treatments, "patients": self.patients}
        for stem, df in tables.items():
            if stem in ("treatments", "patients") and df.empty:
                continue
            fmt = observations_format if stem == "observations" else "csv"
            for other in SUFFIXES:  # never leave a stale twin file with the other extension
                (folder / f"{stem}{other}").unlink(missing_ok=True)
            with atomic.atomic_path(folder / f"{stem}.{fmt}") as tmp:
                if fmt == "parquet":
                    df.to_parquet(tmp, index=False)
                else:
                    _to_csv_frame(df).to_csv(tmp, index=False)
        if extra:
            rows = [{k: getattr(v, k) for k in ("name", "category", "unit", "min", "max",
                                                "aggregate", "description")} for v in extra]
            with atomic.atomic_path(folder / "variables.csv") as tmp:
                pd.DataFrame(rows).to_csv(tmp, index=False)
        return folder


# ---------------------------------------------------------------- reading files
def find_table_files(folder: Path) -> tuple[dict[str, Path], list[Problem]]:
    """Locate ``<stem>.csv`` / ``<stem>.parquet`` for each table of SCHEMA.md."""
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


def read_table(path: Path) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Read one CSV (every cell as text) or Parquet file; unreadable files become problems."""
    name = path.name
    if path.stat().st_size == 0:
        return None, [Problem(name, "file is empty (no header, no rows)")]
    try:
        if path.suffix == ".parquet":
            df = pd.read_parquet(path)
        else:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                header = next(csv.reader(fh), [])
            dupes = sorted({c for c in header if header.count(c) > 1})
            if dupes:
                return None, [Problem(name, f"duplicate column names {dupes} in the header")]
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""],
                             encoding="utf-8-sig")
    except UnicodeDecodeError:
        return None, [Problem(name, "file is not UTF-8 text")]
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        return None, [Problem(name, f"cannot parse CSV: {exc}".strip())]
    except Exception as exc:  # pyarrow raises many types for corrupt Parquet
        return None, [Problem(name, f"cannot read file: {type(exc).__name__}: {exc}")]
    return df.reset_index(drop=True), []


def load_cohort(folder: str | os.PathLike, registry: Registry | None = None) -> Cohort:
    """Read and validate a cohort folder.

    Parameters
    ----------
    folder : path
        Folder with ``observations`` and ``attacks`` (CSV or Parquet) and optionally
        ``treatments``, ``patients`` and ``variables``.
    registry : Registry, optional
        Base registry (default: the built-in one); the folder's ``variables`` extend it.

    Raises
    ------
    InputDataError
        Listing every problem found, each with file, row, column and rule.

    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputDataError([Problem(str(folder), "cohort folder does not exist")], str(folder))
    paths, problems = find_table_files(folder)
    tables: dict[str, pd.DataFrame] = {}
    names: dict[str, str] = {}
    for stem, path in paths.items():
        df, read_problems = read_table(path)
        problems += read_problems
        names[stem] = path.name
        if df is not None:
            tables[stem] = df
    return _validate(tables, names, registry, str(folder), problems)


def cohort_from_frames(
    observations: pd.DataFrame,
    attacks: pd.DataFrame,
    treatments: pd.DataFrame | None = None,
    patients: pd.DataFrame | None = None,
    variables: pd.DataFrame | None = None,
    registry: Registry | None = None,
) -> Cohort:
    """Validate in-memory tables exactly as :func:`load_cohort` validates files."""
    given = {"observations": observations, "attacks": attacks, "treatments": treatments,
             "patients": patients, "variables": variables}
    tables = {k: v.reset_index(drop=True) for k, v in given.items() if v is not None}
    names = {k: k for k in tables}
    return _validate(tables, names, registry, "in-memory tables", [])


# ---------------------------------------------------------------- validation
def _validate(tables: dict[str, pd.DataFrame], names: dict[str, str], registry: Registry | None,
              source: str, problems: list[Problem]) -> Cohort:
    registry = registry or Registry.builtin()
    notices: list[str] = []
    if "variables" in tables:
        var_problems = validate_table(tables["variables"], variables_spec(), names["variables"])
        problems += var_problems
        registry = registry.extended(_declared_variables(tables["variables"], var_problems))
    specs: dict[str, TableSpec] = {
        "patients": patients_spec(), "observations": observations_spec(registry),
        "attacks": attacks_spec(registry), "treatments": treatments_spec(),
    }
    for stem, spec in specs.items():
        if stem not in tables:
            continue
        df = tables[stem]
        if df.empty and stem == "observations":
            problems.append(Problem(names[stem], "file has a header but no data rows"))
            continue
        problems += validate_table(df, spec, names[stem])
        extra = [c for c in df.columns if c not in (*spec.required, *spec.optional)]
        if extra:
            notices.append(f"{names[stem]}: ignored columns not in SCHEMA.md: {extra}")
    if problems:  # typed frames need valid cells; cross-file rules need typed frames
        raise InputDataError(problems, source)
    typed = {stem: _typed(stem, tables.get(stem)) for stem in _COLUMNS}
    problems += _cross_file_problems(typed, names, notices)
    if problems:
        raise InputDataError(problems, source)
    return Cohort(typed["observations"], typed["attacks"], typed["treatments"],
                  typed["patients"], registry, source, notices)


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


def _patient_ids(series: pd.Series) -> pd.Series:
    """Opaque string ids; integer-typed ids (Parquet) are written without a decimal point."""
    if pd.api.types.is_float_dtype(series) and (series.dropna() % 1 == 0).all():
        series = series.astype("Int64")
    return as_text(series.astype("string")).astype(object)


def _typed(stem: str, df: pd.DataFrame | None) -> pd.DataFrame:
    columns = _COLUMNS[stem]
    out = pd.DataFrame(index=pd.RangeIndex(0 if df is None else len(df)))
    for col in columns:
        raw = df[col] if df is not None and col in df.columns else pd.Series(pd.NA, index=out.index,
                                                                             dtype=object)
        if col == "patient_id":
            out[col] = _patient_ids(raw)
        elif col in _TIME_COLUMNS:
            out[col] = parse_timestamps(raw)[0]
        elif col in _NUMBER_COLUMNS:
            out[col] = parse_numbers(raw)[0]
        elif col in _INT_COLUMNS:
            out[col] = parse_numbers(raw)[0].round().astype("Int64")
        elif col in _BOOL_COLUMNS:
            out[col] = parse_booleans(raw)[0]
        else:
            out[col] = as_text(raw).astype(object)
    return out


def _diary_periods(obs: pd.DataFrame, attacks: pd.DataFrame, patients: pd.DataFrame
                   ) -> pd.DataFrame:
    spans = pd.concat([
        obs[["patient_id", "time"]].rename(columns={"time": "t"}),
        attacks[["patient_id", "onset"]].rename(columns={"onset": "t"}),
    ])
    span = spans.groupby("patient_id")["t"].agg(["min", "max"])
    observed = set(obs["patient_id"])
    decl = patients.set_index("patient_id")[["diary_start", "diary_end"]]
    ids = sorted(observed | set(decl.index[decl.notna().any(axis=1)]))
    out = pd.DataFrame(index=pd.Index(ids, name="patient_id"))
    start = decl["diary_start"].reindex(ids)
    end = decl["diary_end"].reindex(ids)
    out["start"] = start.fillna(span["min"].reindex(ids)).dt.normalize()
    out["end"] = end.fillna(span["max"].reindex(ids)).dt.normalize()
    out["declared"] = (start.notna() & end.notna()).to_numpy()
    return out


def _cross_file_problems(t: dict[str, pd.DataFrame], names: dict[str, str],
                         notices: list[str]) -> list[Problem]:
    problems: list[Problem] = []
    periods = _diary_periods(t["observations"], t["attacks"], t["patients"])
    att_file = names.get("attacks", "attacks")
    for stem in ("attacks", "treatments"):
        df = t[stem]
        orphan = ~df["patient_id"].isin(periods.index)
        for pid, rows in df[orphan].groupby("patient_id").groups.items():
            problems.append(Problem(
                names.get(stem, stem),
                f"patient '{pid}' has no diary period: no observations and no "
                "diary_start/diary_end in patients", row=int(rows[0]) + 1, column="patient_id",
                value=str(pid)))
    first = t["attacks"]["patient_id"].map(periods["start"])
    last = t["attacks"]["patient_id"].map(periods["end"])
    day = t["attacks"]["onset"].dt.normalize()
    outside = first.notna() & ((day < first) | (day > last))
    for i in t["attacks"].index[outside]:
        problems.append(Problem(
            att_file, f"attack onset outside the patient's diary period "
            f"{first[i]:%Y-%m-%d}–{last[i]:%Y-%m-%d}", row=i + 1,
            column="onset", value=f"{t['attacks'].at[i, 'onset']:%Y-%m-%dT%H:%M}"))
    obs_day = t["observations"]["time"].dt.normalize()
    pid = t["observations"]["patient_id"]
    n_out = int(((obs_day < pid.map(periods["start"])) | (obs_day > pid.map(periods["end"]))).sum())
    if n_out:
        notices.append(f"{names.get('observations', 'observations')}: {n_out} observations "
                       "fall outside their patient's declared diary period and are not used")
    return problems


def _to_csv_frame(df: pd.DataFrame) -> pd.DataFrame:
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
