"""Daily diary tables (CSV, Excel, Parquet) → a cohort: the format of paper and app diaries.

One row per patient and day (wide), or one row per patient, day and item (long, ``item`` and
``value`` columns). A TOML mapping (docs/import-diary.md) names the patient and day columns,
the headache column and its codes, and which columns are which registry variables (with codes,
a unit factor, and a declaration for variables the registry lacks). What the importer does
with a day, and nothing else:

* a row whose headache cell is a "yes" code is a **headache day**: an attack row starting that
  day (no ``end``: it covers that day), and a kept diary day (``diary_entry`` = 1) — fit with
  ``--outcome headache_day``;
* a "no" code is a kept day without headache (``diary_entry`` = 1, no attack);
* a missing-value marker leaves the day's outcome unknown (no ``diary_entry`` row): never an
  invented attack-free day; a day without a row is unknown too;
* any other cell text is an error naming file, row, column and the accepted codes;
* mapped variables become observations on the day (their codes, times their ``scale``);
  severity and an acute drug go on the headache day's attack; a drug on a day without
  headache is counted and said (the cohort records acute doses with attacks);
* treatment phases (``[[treatments]]``: rows where a column holds given values, or lies in a
  range) become treatment courses, one per run of consecutive phase rows of a patient;
* the diary period of each patient is declared as its first to last row.

Everything is then validated by the cohort's own rules (:mod:`migraine_bayes.adapters.common`),
with every problem named by source file, row and column.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from migraine_bayes.adapters.common import TIMES, Origin, Tables, validated
from migraine_bayes.adapters.mapping import MappingReader
from migraine_bayes.cohort.io import Cohort
from migraine_bayes.cohort.registry import AGGREGATES, CATEGORIES, Registry, Variable
from migraine_bayes.errors import InputDataError, Problem, ProblemLog, did_you_mean

MISSING = ("", "NA", "N/A", "NaN", "nan", ".")
SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xls", ".parquet")
TABLE_KEYS = {"patient", "date", "day", "origin", "date_format", "missing", "item", "value"}
HEADACHE_KEYS = {"column", "yes", "no", "severity", "severity_codes", "medication",
                 "medication_none", "medication_name", "dose_mg"}
VARIABLE_KEYS = {"name", "codes", "scale", "category", "unit", "min", "max", "aggregate",
                 "description"}
PATIENT_KEYS = {"sex", "birth_year", "diagnosis"}
TREATMENT_KEYS = {"name", "kind", "column", "values", "at_least", "at_most", "dose_mg",
                  "counts_days"}


@dataclass(frozen=True)
class VariableMap:
    """One diary column → one registry variable."""

    column: str
    name: str
    codes: dict[str, float] | None
    scale: float


@dataclass(frozen=True)
class TreatmentMap:
    """A treatment phase: the rows where ``column`` holds ``values`` or lies in the range."""

    name: str
    kind: str
    column: str
    values: tuple[str, ...]
    at_least: float | None
    at_most: float | None
    dose_mg: float | None
    counts_days: bool = False  # the column counts days from the start (at_least): day 0


@dataclass(frozen=True)
class DiaryMapping:
    """A diary table's mapping (docs/import-diary.md), read by :func:`read_mapping`."""

    file: str
    patient: str
    date: str | None
    day: str | None
    origin: pd.Timestamp | None
    date_format: str | None
    missing: frozenset[str]
    item: str | None
    value: str | None
    headache: str
    yes: frozenset[str]
    no: frozenset[str]
    severity: str | None
    severity_codes: dict[str, float] | None
    medication: str | None
    medication_none: frozenset[str]
    medication_name: str | None
    dose_mg: str | None
    variables: tuple[VariableMap, ...]
    declared: tuple[Variable, ...]
    patient_columns: dict[str, str]
    treatments: tuple[TreatmentMap, ...]

    @property
    def columns(self) -> list[str]:
        """Every source column (or item) the mapping reads, besides patient and day."""
        cols = [*([self.headache] if self.headache else []), *(v.column for v in self.variables),
                *(c for c in (self.severity, self.medication, self.dose_mg) if c),
                *self.patient_columns.values(), *(t.column for t in self.treatments)]
        return list(dict.fromkeys(cols))


def read_mapping(path: str | Path, registry: Registry | None = None,
                 data: dict | None = None) -> DiaryMapping:
    """The mapping file ``path``; every problem of it raised at once (InputDataError).

    ``data``: the file's tables as an adapter completed them (:mod:`.redcap`), instead of
    reading the file. Without a ``[headache]`` table no day's outcome is known.
    """
    registry = registry or Registry.builtin()
    m = MappingReader(path, data)
    m.known("the mapping", m.data, {"table", "headache", "variables", "patients", "treatments"})
    table, head = m.table("table", required=True), m.table("headache")
    m.known("[table]", table, TABLE_KEYS)
    m.known("[headache]", head, HEADACHE_KEYS)
    patient = m.text("[table]", table, "patient", required=True)
    date, day = m.text("[table]", table, "date"), m.text("[table]", table, "day")
    origin = None
    if (date is None) == (day is None):
        m.add("[table] needs either 'date' (a date column) or 'day' (a day-number column, "
              "with 'origin', the date of day 0)", "date")
    if day is not None:
        text = m.text("[table]", table, "origin", required=True)
        try:
            origin = pd.Timestamp(dt.date.fromisoformat(text)) if text else None
        except ValueError:
            m.add("[table]: 'origin' must be a date (YYYY-MM-DD)", "origin", text)
    item, value = m.text("[table]", table, "item"), m.text("[table]", table, "value")
    if (item is None) != (value is None):
        m.add("[table]: a long table needs both 'item' and 'value'", "item")
    yes, no = m.texts("[headache]", head, "yes"), m.texts("[headache]", head, "no")
    if head:  # without a headache column every day's outcome is unknown
        if not yes:
            m.add("[headache] needs 'yes': the cell values that mean a headache day", "yes")
        if not no:
            m.add("[headache] needs 'no': the cell values that mean a kept day without "
                  "headache", "no")
        if set(yes) & set(no):
            m.add("[headache]: a value is both 'yes' and 'no'", "yes",
                  sorted(set(yes) & set(no)))
    variables, declared = [], []
    for column, spec in m.table("variables").items():
        where = f"[variables.{column}]"
        if not isinstance(spec, dict):
            m.add(f"{where} must be a table with at least 'name'", column)
            continue
        m.known(where, spec, VARIABLE_KEYS)
        name = m.text(where, spec, "name", required=True)
        if name is None:
            continue
        declaring = {"category", "unit", "min", "max", "aggregate"} & set(spec)
        if name in registry:
            if declaring:
                m.add(f"{where}: '{name}' is a registry variable (its unit and range are "
                      f"fixed); remove {sorted(declaring)} or choose another name", name)
        elif not declaring:
            m.add(f"{where}: '{name}' is not a registry variable"
                  f"{did_you_mean(name, registry.names())}; declare it with category, unit, "
                  "min, max and aggregate", name)
        else:
            v = _declared(m, where, name, spec)
            if v is not None:
                declared.append(v)
        scale = m.number(where, spec, "scale")
        variables.append(VariableMap(column, name, m.codes(where, spec, "codes"),
                                     1.0 if scale is None else scale))
    names = [v.name for v in variables]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        m.add(f"two columns are mapped to the variable '{dup}'", dup)
    patients = m.table("patients")
    m.known("[patients]", patients, PATIENT_KEYS)
    patient_columns = {k: c for k in PATIENT_KEYS if (c := m.text("[patients]", patients, k))}
    treatments = []
    raw = m.data.get("treatments", [])
    for i, spec in enumerate(raw if isinstance(raw, list) else [raw], start=1):
        where = f"[[treatments]] #{i}"
        if not isinstance(spec, dict):
            m.add(f"{where} must be a table", "treatments")
            continue
        m.known(where, spec, TREATMENT_KEYS)
        values = m.texts(where, spec, "values")
        lo, hi = m.number(where, spec, "at_least"), m.number(where, spec, "at_most")
        if not values and lo is None and hi is None:
            m.add(f"{where} needs 'values' (cells meaning the phase) or 'at_least'/'at_most'",
                  "values")
        name, kind = m.text(where, spec, "name", True), m.text(where, spec, "kind", True)
        column = m.text(where, spec, "column", True)
        if name and kind and column:
            counts = spec.get("counts_days", False)
            if not isinstance(counts, bool) or (counts and lo is None):
                m.add(f"{where}: 'counts_days' is true or false, and needs 'at_least' (the "
                      "day the course starts)", "counts_days", counts)
                counts = False
            treatments.append(TreatmentMap(name, kind, column, values, lo, hi,
                                           m.number(where, spec, "dose_mg"), counts))
    m.check()
    return DiaryMapping(
        file=m.name, patient=patient, date=date, day=day, origin=origin,
        date_format=m.text("[table]", table, "date_format"),
        missing=frozenset(m.texts("[table]", table, "missing", MISSING)), item=item,
        value=value,
        headache=(m.text("[headache]", head, "column", required=True) or "") if head else "",
        yes=frozenset(yes), no=frozenset(no), severity=m.text("[headache]", head, "severity"),
        severity_codes=m.codes("[headache]", head, "severity_codes"),
        medication=m.text("[headache]", head, "medication"),
        medication_none=frozenset(m.texts("[headache]", head, "medication_none")),
        medication_name=m.text("[headache]", head, "medication_name"),
        dose_mg=m.text("[headache]", head, "dose_mg"), variables=tuple(variables),
        declared=tuple(declared), patient_columns=patient_columns,
        treatments=tuple(treatments))


def _declared(m: MappingReader, where: str, name: str, spec: dict) -> Variable | None:
    category, unit = m.text(where, spec, "category", True), m.text(where, spec, "unit", True)
    aggregate = m.text(where, spec, "aggregate", True)
    lo, hi = m.number(where, spec, "min"), m.number(where, spec, "max")
    ok = True
    if category is not None and category not in CATEGORIES:
        m.add(f"{where}: category must be one of {', '.join(CATEGORIES)}", "category", category)
        ok = False
    if aggregate is not None and aggregate not in AGGREGATES:
        m.add(f"{where}: aggregate must be one of {', '.join(AGGREGATES)}", "aggregate",
              aggregate)
        ok = False
    if lo is None or hi is None:
        m.add(f"{where} needs 'min' and 'max' (values outside are errors, never clipped)", "min")
        ok = False
    if not (ok and category and unit and aggregate) or lo is None or hi is None:
        return None
    return Variable(name, category, unit, lo, hi, aggregate,
                    spec.get("description") or f"imported diary column '{spec.get('name')}'")


def read_table(path: Path) -> pd.DataFrame:
    """A diary file as text cells (nothing parsed or dropped yet): CSV/TSV, Excel, Parquet."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputDataError([Problem(path.name, "file does not exist" if not path.exists()
                                      else "is not a file")], str(path))
    if suffix not in SUFFIXES:
        raise InputDataError([Problem(path.name, f"unknown file type '{suffix}': a diary table "
                                      f"is one of {', '.join(SUFFIXES)}")], str(path))
    try:
        if suffix in (".xlsx", ".xls"):
            df = pd.read_excel(path, dtype=str, keep_default_na=False, na_filter=False)
        elif suffix == ".parquet":
            df = pd.read_parquet(path)
            df = df.apply(lambda s: s.map(_cell))
        else:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False,
                             sep="\t" if suffix == ".tsv" else ",", encoding="utf-8-sig")
    except ImportError as exc:
        raise InputDataError([Problem(path.name, f"cannot read this file type here: {exc}")],
                             str(path)) from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputDataError([Problem(path.name, f"not a readable table: {exc}")],
                             str(path)) from None
    df.columns = [str(c).strip() for c in df.columns]
    return df.apply(lambda s: s.astype(str).str.strip())


def _cell(v: object) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA or v is pd.NaT:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def import_diary(sources: Sequence[str | Path], mapping: str | Path | DiaryMapping,
                 patients: Iterable[str] | None = None, dedupe: bool = False) -> Cohort:
    """The cohort of diary tables ``sources`` read with ``mapping`` (module text).

    ``patients``: keep only these ids. ``dedupe``: a row repeating another row's patient, day
    and every mapped cell is dropped (and counted in the notices) instead of rejected; two rows
    of a patient and day that differ are always an error. Raises :class:`InputDataError`
    naming every problem by file, row and column (the mapping's by mapping file and key).
    """
    m = mapping if isinstance(mapping, DiaryMapping) else read_mapping(mapping)
    tables = diary_tables([(Path(s).name, read_table(Path(s))) for s in sources], m,
                          None if patients is None else list(patients), dedupe)
    return validated(tables, ", ".join(str(s) for s in sources))


def diary_tables(sources: list[tuple[str, pd.DataFrame]], m: DiaryMapping,
                 patients: list[str] | None = None, dedupe: bool = False) -> Tables:
    """The cohort tables (with each row's origin) of named text tables (module text)."""
    log, notices = ProblemLog(), []
    parts = []
    for name, df in sources:
        if dedupe and not m.item:
            df, dropped = _without_repeats(df, m)
            if dropped:
                notices.append(f"{name}: {len(dropped)} row(s) repeating another row's patient, "
                               f"day and every mapped cell dropped (--dedupe; rows "
                               f"{', '.join(map(str, dropped[:10]))}"
                               f"{' …' if len(dropped) > 10 else ''})")
        parts.append(_cells(name, df, m, log, notices))
    cells = pd.concat(parts or [pd.DataFrame()], ignore_index=True)
    if log:
        raise InputDataError(log.problems(), ", ".join(n for n, _ in sources))
    if patients is not None:
        known = set(cells["patient_id"])
        for pid in patients:
            if pid not in known:
                log.add(Problem(", ".join(n for n, _ in sources), f"no rows of patient '{pid}'"
                                f"{did_you_mean(pid, known)}", column=m.patient))
        cells = cells[cells["patient_id"].isin(set(patients))]
    out = _Builder(m, log, notices)
    out.run(cells)
    if log:
        raise InputDataError(log.problems(), ", ".join(n for n, _ in sources))
    return out.tables()


def _without_repeats(df: pd.DataFrame, m: DiaryMapping) -> tuple[pd.DataFrame, list[int]]:
    """``df`` without rows repeating an earlier row's patient, day and mapped cells.

    Returns the rest (each keeping its 1-based number in ``_record``) and the dropped rows'.
    """
    keys = [c for c in [m.patient, m.date or m.day, *m.columns] if c in df.columns]
    df = df.assign(_record=np.arange(1, len(df) + 1))
    repeat = df.duplicated(keys, keep="first")
    return df[~repeat], [int(r) for r in df["_record"][repeat]]


def _cells(name: str, df: pd.DataFrame, m: DiaryMapping, log: ProblemLog,
           notices: list[str]) -> pd.DataFrame:
    """One row per (source row, mapped column): file, record, patient, date, column, text.

    A second row of a patient and day (of a patient, day and item in a long table) is logged.
    """
    needed = [m.patient, m.date or m.day] + ([m.item, m.value] if m.item else m.columns)
    missing_cols = [c for c in needed if c not in df.columns]
    for c in missing_cols:
        log.add(Problem(name, f"column is missing{did_you_mean(c, df.columns)}", column=c))
    if missing_cols:
        return pd.DataFrame()
    record = (df["_record"].to_numpy() if "_record" in df.columns
              else np.arange(1, len(df) + 1))
    pid = df[m.patient]
    bad = (pid == "") | pid.isin(m.missing)
    for r in record[bad.to_numpy()]:
        log.add(Problem(name, "patient id is empty", row=int(r), column=m.patient))
    when = _dates(name, df, m, log)
    ok = (~bad & when.notna()).to_numpy()
    base = pd.DataFrame({"file": name, "record": record, "patient_id": pid.to_numpy(),
                         "date": when.to_numpy()})[ok]
    if m.item:
        key = base.assign(item=df[m.item].to_numpy()[ok])
        unmapped = sorted(set(key["item"]) - set(m.columns))
        if unmapped:
            notices.append(f"{name}: {len(unmapped)} item(s) not in the mapping, not imported: "
                           f"{unmapped[:10]}")
        dup = key.duplicated(["patient_id", "date", "item"], keep="first")
        first = key.groupby(["patient_id", "date", "item"])["record"].transform("min")
        for r, f in zip(key["record"][dup], first[dup], strict=True):
            log.add(Problem(name, f"a second row of the same patient, day and item (first: row "
                                  f"{f})", row=int(r), column=m.item),
                    "a second row of the same patient, day and item")
        cells = key[key["item"].isin(set(m.columns))].rename(columns={"item": "column"})
        cells = cells.assign(text=df[m.value].to_numpy()[ok][
            key["item"].isin(set(m.columns)).to_numpy()])
        return cells
    unused = [c for c in df.columns if c not in {m.patient, m.date or m.day, *m.columns}
              and c != "_record"]
    if unused:
        notices.append(f"{name}: {len(unused)} column(s) not in the mapping, not imported: "
                       f"{unused[:10]}")
    dup = base.duplicated(["patient_id", "date"], keep="first")
    first = base.groupby(["patient_id", "date"])["record"].transform("min")
    same = df[m.columns].to_numpy()[ok]
    index = {int(r): i for i, r in enumerate(base["record"])}
    for r, f in zip(base["record"][dup], first[dup], strict=True):
        repeat = (same[index[int(r)]] == same[index[int(f)]]).all()
        log.add(Problem(name, f"a second row of the same patient and day (first: row {f})"
                        + ("; it repeats that row's every mapped cell: --dedupe drops such "
                           "repeats" if repeat else ""),
                        row=int(r), column=m.date or m.day),
                "a second row of the same patient and day")
    parts = [base.assign(column=c, text=df[c].to_numpy()[ok]) for c in m.columns]
    return pd.concat(parts, ignore_index=True) if parts else base.assign(column="", text="")


def _dates(name: str, df: pd.DataFrame, m: DiaryMapping, log: ProblemLog) -> pd.Series:
    """Each row's day (midnight), NaT where unreadable (each such row logged)."""
    if m.day is not None:
        raw = df[m.day]
        num = pd.to_numeric(raw, errors="coerce")
        good = num.notna() & (num == num.round()) & (num.abs() < 200 * 366)
        for r in np.flatnonzero(~good.to_numpy()):
            log.add(Problem(name, "day number is not a whole number of days", row=_row(df, r),
                            column=m.day, value=raw.iloc[r]), "day number is not a whole number")
        days = pd.to_timedelta(num.where(good), unit="D")
        return m.origin + days
    raw = df[m.date]
    parsed = pd.to_datetime(raw, format=m.date_format or "ISO8601", errors="coerce")
    expected = f" in the format {m.date_format}" if m.date_format else " (YYYY-MM-DD)"
    for r in np.flatnonzero(parsed.isna().to_numpy()):
        log.add(Problem(name, f"not a date{expected}", row=_row(df, r), column=m.date,
                        value=raw.iloc[r]), "not a date")
    if parsed.notna().any() and (parsed.dropna() != parsed.dropna().dt.normalize()).any():
        timed = np.flatnonzero((parsed.notna() & (parsed != parsed.dt.normalize())).to_numpy())
        for r in timed:
            log.add(Problem(name, "a diary row is a day: the date holds a time of day",
                            row=_row(df, r), column=m.date, value=raw.iloc[r]),
                    "the date holds a time of day")
    return parsed.dt.tz_localize(None) if parsed.dt.tz is not None else parsed


def _row(df: pd.DataFrame, i: int) -> int:
    """The 1-based source row of ``df``'s ``i``-th row."""
    return int(df["_record"].iloc[i]) if "_record" in df.columns else int(i) + 1


class _Builder:
    """Cells → the cohort tables with origins (module text)."""

    def __init__(self, m: DiaryMapping, log: ProblemLog, notices: list[str]) -> None:
        self.m, self.log, self.notices = m, log, notices
        self.rows: dict[str, list[dict]] = {k: [] for k in ("observations", "attacks",
                                                            "treatments", "patients")}
        self.origins: dict[str, list[Origin]] = {k: [] for k in self.rows}

    def add(self, table: str, row: dict, origin: Origin) -> None:
        self.rows[table].append(row)
        self.origins[table].append(origin)

    def run(self, cells: pd.DataFrame) -> None:
        m = self.m
        recorded = cells[~cells["text"].isin(m.missing)]
        by_col = {c: g for c, g in recorded.groupby("column", sort=False)}
        if not m.headache:
            self._no_outcome(cells)
        head = by_col.get(m.headache, recorded.iloc[:0])
        yes, no = head["text"].isin(m.yes), head["text"].isin(m.no)
        for r in head[~(yes | no)].itertuples():
            self.log.add(Problem(r.file, f"headache cell is neither a 'yes' code "
                                         f"({', '.join(sorted(m.yes))}) nor a 'no' code "
                                         f"({', '.join(sorted(m.no))}) nor a missing-value "
                                         "marker", row=r.record, column=m.headache,
                                 value=r.text), "headache cell is not a code")
        headache_days = head[yes]
        extra = self._attack_details(by_col, headache_days)
        for r in head[yes | no].itertuples():
            self.add("observations", {"patient_id": r.patient_id, "time": r.date,
                                      "variable": "diary_entry", "value": 1.0},
                     Origin(r.file, r.record, m.headache))
        for r in headache_days.itertuples():
            row = {"patient_id": r.patient_id, "onset": r.date} | extra.get(
                (r.patient_id, r.date), {})
            self.add("attacks", row, Origin(r.file, r.record, m.headache))
        for v in m.variables:
            self._variable(v, by_col.get(v.column, recorded.iloc[:0]))
        self._patients(cells, by_col)
        for t in m.treatments:
            self._treatment(t, cells[cells["column"] == t.column])
        n_days, n_head = len(head[yes | no]), len(headache_days)
        if m.headache:
            self.notices.append(
                f"{n_days} kept diary days, {n_head} headache days (attack rows without an "
                "end: fit and forecast with --outcome headache_day)")

    def _no_outcome(self, cells: pd.DataFrame) -> None:
        """Without a headache column every row's day is marked unknown (``diary_entry`` 0).

        A cohort without ``diary_entry`` rows would count every day as kept and attack-free.
        """
        days = cells.drop_duplicates(["patient_id", "date"])
        for r in days.itertuples():
            self.add("observations", {"patient_id": r.patient_id, "time": r.date,
                                      "variable": "diary_entry", "value": 0.0},
                     Origin(r.file, r.record, self.m.date or self.m.day))
        self.notices.append(f"no headache column: the outcome of each of the {len(days)} days "
                            "is unknown (diary_entry = 0), none is counted attack-free")

    def _number(self, cells: pd.DataFrame, codes: dict[str, float] | None, what: str
                ) -> pd.Series:
        """Numbers of ``cells['text']`` by ``codes`` or as decimals; problems logged."""
        text = cells["text"]
        if codes:
            out = text.map(codes)
            num = pd.to_numeric(text, errors="coerce")
            by_value = {v: c for k, c in codes.items()
                        if (v := pd.to_numeric(k, errors="coerce")) == v}
            out = out.where(out.notna(), num.map(by_value))
            rule = f"not one of the codes of {what} ({', '.join(codes)})"
        else:
            out = pd.to_numeric(text.str.replace(",", ".", regex=False)
                                if text.str.contains(r"^\d+,\d+$", regex=True).all()
                                else text, errors="coerce")
            rule = f"{what}: not a number"
        for r in cells[out.isna()].itertuples():
            self.log.add(Problem(r.file, rule, row=r.record, column=r.column, value=r.text),
                         rule)
        return out

    def _variable(self, v: VariableMap, cells: pd.DataFrame) -> None:
        values = self._number(cells, v.codes, f"'{v.name}'") * v.scale
        for r, value in zip(cells.itertuples(), values, strict=True):
            if value == value:
                self.add("observations", {"patient_id": r.patient_id, "time": r.date,
                                          "variable": v.name, "value": float(value)},
                         Origin(r.file, r.record, v.column))

    def _attack_details(self, by_col: dict[str, pd.DataFrame], days: pd.DataFrame
                        ) -> dict[tuple[str, pd.Timestamp], dict]:
        m, out = self.m, {}
        on = set(zip(days["patient_id"], days["date"], strict=True))
        if m.severity:
            cells = by_col.get(m.severity, days.iloc[:0])
            cells = cells[[k in on for k in zip(cells["patient_id"], cells["date"],
                                                 strict=True)]]
            for r, s in zip(cells.itertuples(), self._number(cells, m.severity_codes,
                                                             "severity"), strict=True):
                if s == s:
                    out.setdefault((r.patient_id, r.date), {})["peak_severity"] = s
        if m.medication:
            cells = by_col.get(m.medication, days.iloc[:0])
            cells = cells[~cells["text"].isin(m.medication_none)]
            keys = list(zip(cells["patient_id"], cells["date"], strict=True))
            inside = np.array([k in on for k in keys], dtype=bool)
            if (~inside).any():
                first = cells[~inside].iloc[0]
                self.notices.append(
                    f"{int((~inside).sum())} acute doses on days without headache are not "
                    f"imported (first: {first['file']} row {first['record']}, column "
                    f"'{m.medication}'): the cohort records acute medication with an attack")
            for r, k in zip(cells[inside].itertuples(), np.array(keys, dtype=object)[inside],
                            strict=True):
                name = m.medication_name or r.text
                out.setdefault(tuple(k), {})["acute_medication"] = name
                out[tuple(k)]["acute_time"] = r.date
        return out

    def _patients(self, cells: pd.DataFrame, by_col: dict[str, pd.DataFrame]) -> None:
        span = cells.groupby("patient_id").agg(start=("date", "min"), end=("date", "max"),
                                               file=("file", "first"),
                                               record=("record", "min"))
        fields: dict[str, dict[str, str]] = {}
        for key, column in self.m.patient_columns.items():
            g = by_col.get(column)
            if g is None:
                continue
            for pid, values in g.groupby("patient_id"):
                distinct = values.drop_duplicates("text")
                if len(distinct) > 1:
                    r = distinct.iloc[1]
                    self.log.add(Problem(r["file"], f"{key} differs within patient '{pid}' "
                                                    f"(first '{distinct.iloc[0]['text']}')",
                                         row=int(r["record"]), column=column, value=r["text"]))
                fields.setdefault(pid, {})[key] = distinct.iloc[0]["text"]
        for pid, r in span.iterrows():
            row = {"patient_id": pid, "diary_start": r["start"], "diary_end": r["end"]}
            self.add("patients", row | fields.get(pid, {}), Origin(r["file"]))

    def _treatment(self, t: TreatmentMap, cells: pd.DataFrame) -> None:
        recorded = ~cells["text"].isin(self.m.missing)
        for r in cells[~recorded].itertuples():
            self.log.add(Problem(r.file, f"treatment phase '{t.name}' unknown on this row "
                                         "(a missing value)", row=r.record, column=t.column),
                         "treatment phase unknown")
        cells = cells[recorded].sort_values(["patient_id", "date"])
        if t.values:
            active = cells["text"].isin(set(t.values))
        else:
            num = pd.to_numeric(cells["text"], errors="coerce")
            for r in cells[num.isna()].itertuples():
                self.log.add(Problem(r.file, f"treatment phase '{t.name}': not a number",
                                     row=r.record, column=t.column, value=r.text))
            active = ((num >= (t.at_least if t.at_least is not None else -np.inf))
                      & (num <= (t.at_most if t.at_most is not None else np.inf)))
        cells = cells.assign(active=active.to_numpy())
        for pid, g in cells.groupby("patient_id"):
            run = (g["active"] != g["active"].shift()).cumsum()
            for _, course in g[g["active"]].groupby(run[g["active"]]):
                first = course.iloc[0]
                start = first["date"]
                if t.counts_days:  # the start is the day the column reads at_least
                    start -= pd.Timedelta(days=float(first["text"]) - t.at_least)
                row = {"patient_id": pid, "kind": t.kind, "name": t.name,
                       "start": start, "end": course["date"].iloc[-1]}
                if t.dose_mg is not None:
                    row["dose_mg"] = t.dose_mg
                self.add("treatments", row, Origin(first["file"], int(first["record"]),
                                                   t.column))

    def tables(self) -> Tables:
        m = self.m
        columns = {
            "observations": ["patient_id", "time", "variable", "value"],
            "attacks": ["patient_id", "onset"] + (["peak_severity"] if m.severity else [])
            + (["acute_medication", "acute_time"] if m.medication else []),
            "patients": ["patient_id", "diary_start", "diary_end", *sorted(m.patient_columns)],
            "treatments": list(dict.fromkeys(k for r in self.rows["treatments"] for k in r)),
        }
        frames = {stem: pd.DataFrame(self.rows[stem], columns=cols)
                  for stem, cols in columns.items()
                  if stem != "treatments" or self.rows["treatments"]}
        if m.declared:
            frames["variables"] = pd.DataFrame([dataclasses.asdict(v) for v in m.declared])
        for stem in ("observations", "attacks", "patients", "treatments"):
            if stem in frames:
                frames[stem] = _iso(frames[stem])
        return Tables(frames, self.origins, self.notices, m.date or m.day)


def _iso(df: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as the ISO text the cohort files hold (dates alone: midnight)."""
    out = df.copy()
    for c in TIMES & set(out.columns):
        t = pd.to_datetime(out[c])
        out[c] = t.dt.strftime("%Y-%m-%d").where(t.notna(), None)
    return out
