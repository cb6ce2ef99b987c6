"""Pandera schemas for the cohort files of docs/SCHEMA.md, and their failures as :class:`Problem`.

Each file has a :class:`TableSpec`: its required and optional columns (a pandera schema) and a
list of row rules, each a vectorised mask over a chunk of rows. :func:`validate_table` collects
every broken rule in every row in one pass into :class:`~migraine_bayes.errors.Problem` objects
naming file, row, column and rule — the first 50 per rule in full, the rest counted, so a file
of millions of bad rows costs neither hours nor gigabytes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa

from migraine_bayes.cohort.parsing import (
    after_today,
    as_text,
    is_blank,
    outside_window,
    parse_booleans,
    parse_numbers,
    parse_timestamps,
    plausible_window,
)
from migraine_bayes.cohort.registry import (
    AGGREGATES,
    BOOKKEEPING,
    BUILTIN_VARIABLES,
    CATEGORIES,
    Registry,
)
from migraine_bayes.errors import Problem, ProblemLog, did_you_mean

TREATMENT_KINDS = ("preventive", "acute", "behavioral")
MAX_ROWS_PER_RULE = 50  # report this many rows per broken rule, then summarise the rest

RowCheck = Callable[[pd.DataFrame], pd.Series]


@dataclass(frozen=True)
class Rule:
    """A row rule: ``ok(df)`` is True for rows that pass.

    ``needs`` lists the columns the rule reads; when one is absent the rule is skipped (the missing
    column is reported on its own). ``describe(df, index)`` may give a row-specific text.
    """

    column: str | None
    text: str
    ok: RowCheck
    needs: tuple[str, ...]
    describe: Callable[[pd.DataFrame, int], str] | None = None


@dataclass(frozen=True)
class TableSpec:
    """Columns and rules of one cohort file."""

    stem: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = field(default_factory=tuple)

    def schema(self) -> pa.DataFrameSchema:
        """The pandera schema of the file's columns (required and optional, any type).

        Cells are raw text; the row rules are vectorised masks run by :func:`validate_table`.
        """
        columns = {c: pa.Column(None, nullable=True, required=True) for c in self.required}
        columns |= {c: pa.Column(None, nullable=True, required=False) for c in self.optional}
        return pa.DataFrameSchema(columns, strict=False, coerce=False)


# ---------------------------------------------------------------- rule builders
def _not_blank(col: str) -> Rule:
    return Rule(col, f"{col} is empty", lambda d: ~is_blank(d[col]), (col,))


MAX_DOSE_MG = 10_000  # above any single or daily dose of a migraine drug (valproate: 3,000)
MAX_ATTACK_DAYS = 30  # an attack lasts 4-72 h; a month is a typo in its end date

# a cell starting so is run as a formula by a spreadsheet that opens an output file
FORMULA_STARTS = ("=", "+", "-", "@")


def _plain_text(col: str) -> Rule:
    """A name written into output files: no formula start, no control character."""
    def ok(d: pd.DataFrame) -> pd.Series:
        text = as_text(d[col])
        bad = text.str.startswith(FORMULA_STARTS) | text.str.contains(r"[\x00-\x1f\x7f]",
                                                                    regex=True)
        return ~bad.fillna(False).astype(bool)

    return Rule(col, f"{col} may not start with =, +, - or @ nor hold control characters (a "
                     "spreadsheet opening an output file would run it as a formula)", ok, (col,))


def _timestamp(col: str) -> list[Rule]:
    first, last = plausible_window()
    return [
        Rule(col, f"{col} is not an ISO 8601 date or date-time (YYYY-MM-DD[THH:MM[:SS]][offset])",
             lambda d: ~parse_timestamps(d[col])[1], (col,)),
        Rule(col, f"{col} is outside the plausible window {first:%Y-%m-%d} – {last:%Y-%m-%d} "
                  "(a typo in the year?)", lambda d: ~outside_window(d[col]), (col,)),
    ]


def _lived(col: str) -> Rule:
    """A day the patient has lived: not after today (a diary cannot hold the future)."""
    return Rule(col, f"{col} is after today: a diary holds only days that have happened",
                lambda d: ~after_today(d[col]), (col,))


def _number(col: str, minimum: float | None = None, integer: bool = False,
            maximum: float | None = None, why: str = "") -> list[Rule]:
    rules = [Rule(col, f"{col} is not a number", lambda d: ~parse_numbers(d[col])[1], (col,))]
    if minimum is not None:
        rules.append(
            Rule(col, f"{col} must be ≥ {minimum}",
                 lambda d: ~(parse_numbers(d[col])[0] < minimum), (col,))
        )
    if maximum is not None:
        rules.append(
            Rule(col, f"{col} must be ≤ {maximum:g}{why}",
                 lambda d: ~(parse_numbers(d[col])[0] > maximum), (col,))
        )
    if integer:
        def whole(d: pd.DataFrame) -> pd.Series:
            v = parse_numbers(d[col])[0]
            return v.isna() | (v == np.round(v))
        rules.append(Rule(col, f"{col} must be a whole number", whole, (col,)))
    return rules


def _boolean(col: str) -> Rule:
    return Rule(col, f"{col} must be true/false (or yes/no, 1/0)",
                lambda d: ~parse_booleans(d[col])[1], (col,))


def _not_before(later: str, earlier: str, text: str) -> Rule:
    def ok(d: pd.DataFrame) -> pd.Series:
        a, b = parse_timestamps(d[later])[0], parse_timestamps(d[earlier])[0]
        return ~(a < b)

    return Rule(later, text, ok, (later, earlier))


def _attack_not_too_long(d: pd.DataFrame) -> pd.Series:
    end, onset = parse_timestamps(d["end"])[0], parse_timestamps(d["onset"])[0]
    return ~((end - onset) > pd.Timedelta(days=MAX_ATTACK_DAYS))


def _recurrence_after_relief(d: pd.DataFrame) -> pd.Series:
    recurred = parse_booleans(d["recurrence_48h"])[0]
    relieved = parse_booleans(d["pain_free_2h"])[0]
    bad = recurred.fillna(False).astype(bool) & ~relieved.fillna(False).astype(bool)
    return ~bad


def _one_of(col: str, allowed: tuple[str, ...]) -> Rule:
    return Rule(col, f"{col} must be one of {list(allowed)}",
                lambda d: as_text(d[col]).isin(allowed).fillna(False) | is_blank(d[col]), (col,))


def _unique(cols: tuple[str, ...], what: str) -> Rule:
    def key(d: pd.DataFrame) -> pd.DataFrame:
        """Comparable cells: times by their parsed value (10:00 equals 10:00:00)."""
        out = pd.DataFrame(index=d.index)
        for c in cols:
            text = as_text(d[c])
            if c in ("onset", "start", "time"):
                parsed, bad = parse_timestamps(d[c])
                text = parsed.astype(str).where(~bad, text)
            out[c] = text
        return out

    def ok(d: pd.DataFrame) -> pd.Series:
        return ~key(d).duplicated(keep="first")

    def describe(d: pd.DataFrame, i: int) -> str:
        k = key(d)
        first = k.index[(k == k.loc[i]).all(axis=1)][0]
        return f"duplicate {what}: same {' and '.join(cols)} as row {first + 1}"

    return Rule(None, f"duplicate {what}", ok, cols, describe)


# ---------------------------------------------------------------- the files
def observations_spec(registry: Registry) -> TableSpec:
    """``observations``: one measurement of one registry variable."""
    lo = {v.name: v.min for v in registry}
    hi = {v.name: v.max for v in registry}

    def known(d: pd.DataFrame) -> pd.Series:
        return as_text(d["variable"]).isin(list(lo)).fillna(False) | is_blank(d["variable"])

    def in_range(d: pd.DataFrame) -> pd.Series:
        var = as_text(d["variable"])
        val = parse_numbers(d["value"])[0]
        low, high = var.map(lo).astype(float), var.map(hi).astype(float)
        return ~((val < low) | (val > high))

    def describe_unknown(d: pd.DataFrame, i: int) -> str:
        return ("unknown variable: not in the registry nor declared in 'variables'"
                + did_you_mean(d.at[i, "variable"], lo))

    def describe_range(d: pd.DataFrame, i: int) -> str:
        var = registry[str(d.at[i, "variable"]).strip()]
        return (f"value outside the registry range of '{var.name}': "
                f"[{var.min:g}, {var.max:g}] {var.unit}")

    return TableSpec(
        "observations",
        required=("patient_id", "time", "variable", "value"),
        optional=("source",),
        rules=(
            _not_blank("patient_id"),
            _plain_text("patient_id"),
            _not_blank("time"),
            *_timestamp("time"),
            _lived("time"),
            _not_blank("variable"),
            Rule("variable", "unknown variable: not in the registry nor declared in 'variables'",
                 known, ("variable",), describe_unknown),
            _not_blank("value"),
            *_number("value"),
            Rule("value", "value outside the variable's registry range", in_range,
                 ("variable", "value"), describe_range),
        ),
    )


def attacks_spec(registry: Registry) -> TableSpec:
    """``attacks``: one migraine attack."""
    symptoms = set(registry.names("symptom")) - BOOKKEEPING

    def symptom_names(d: pd.DataFrame) -> pd.Series:
        def good(cell: object) -> bool:
            if cell is None or (isinstance(cell, float) and np.isnan(cell)) or cell is pd.NA:
                return True
            items = [s.strip() for s in str(cell).split(";") if s.strip()]
            return all(s in symptoms for s in items)

        return d["symptoms"].map(good).astype(bool)

    return TableSpec(
        "attacks",
        required=("patient_id", "onset"),
        optional=("end", "peak_severity", "aura", "prodrome_onset", "symptoms", "acute_medication",
                  "acute_dose_mg", "acute_time", "pain_free_2h", "postdrome_end",
                  "recurrence_48h"),
        rules=(
            _not_blank("patient_id"),
            _plain_text("patient_id"),
            _not_blank("onset"),
            *_timestamp("onset"),
            _lived("onset"),
            *_timestamp("end"),
            _lived("end"),
            _not_before("end", "onset", "attack end is before its onset"),
            Rule("end", f"attack lasts more than {MAX_ATTACK_DAYS} days (a typo in the end's "
                        "date? an attack lasts 4–72 h, status migrainosus longer)",
                 _attack_not_too_long, ("end", "onset")),
            *_number("peak_severity", minimum=0, integer=True),
            Rule("peak_severity", "peak_severity must be 0, 1, 2 or 3 (none/mild/moderate/severe)",
                 lambda d: ~(parse_numbers(d["peak_severity"])[0] > 3), ("peak_severity",)),
            _boolean("aura"),
            *_timestamp("prodrome_onset"),
            _lived("prodrome_onset"),
            _not_before("onset", "prodrome_onset", "prodrome_onset is after the attack onset"),
            Rule("symptoms",
                 f"symptoms must be ';'-separated symptom names from {sorted(symptoms)}",
                 symptom_names, ("symptoms",)),
            *_number("acute_dose_mg", minimum=0, maximum=MAX_DOSE_MG,
                     why=" (no single dose of a migraine drug comes near it)"),
            *_timestamp("acute_time"),
            _lived("acute_time"),
            _boolean("pain_free_2h"),
            *_timestamp("postdrome_end"),
            _lived("postdrome_end"),
            _not_before("postdrome_end", "end", "postdrome_end is before the attack's end"),
            _not_before("postdrome_end", "onset", "postdrome_end is before the attack onset"),
            _boolean("recurrence_48h"),
            Rule("recurrence_48h", "recurrence_48h is true for an attack that was not pain-free "
                 "at 2 h (a recurrence follows a pain-free response)", _recurrence_after_relief,
                 ("recurrence_48h", "pain_free_2h")),
            _unique(("patient_id", "onset"), "attack row"),
        ),
    )


def treatments_spec() -> TableSpec:
    """``treatments``: one course of a medication or behavioural programme."""
    return TableSpec(
        "treatments",
        required=("patient_id", "kind", "name", "start"),
        optional=("end", "dose_mg", "frequency"),
        rules=(
            _not_blank("patient_id"),
            _plain_text("patient_id"),
            _not_blank("kind"),
            _one_of("kind", TREATMENT_KINDS),
            _not_blank("name"),
            _plain_text("name"),
            _not_blank("start"),
            *_timestamp("start"),
            *_timestamp("end"),
            _not_before("end", "start", "treatment end is before its start"),
            *_number("dose_mg", minimum=0, maximum=MAX_DOSE_MG,
                     why=" (no daily dose of a migraine drug comes near it)"),
        ),
    )


def patients_spec() -> TableSpec:
    """``patients``: one patient."""
    return TableSpec(
        "patients",
        required=("patient_id",),
        optional=("sex", "birth_year", "diagnosis", "diary_start", "diary_end"),
        rules=(
            _not_blank("patient_id"),
            _plain_text("patient_id"),
            _unique(("patient_id",), "patient"),
            *_number("birth_year", minimum=1900, integer=True,
                     maximum=float(dt.date.today().year), why=" (this year)"),
            *_timestamp("diary_start"),
            _lived("diary_start"),
            *_timestamp("diary_end"),
            _lived("diary_end"),
            _not_before("diary_end", "diary_start", "diary_end is before diary_start"),
        ),
    )


def variables_spec() -> TableSpec:
    """``variables``: user variables the registry lacks."""
    builtin = {v.name for v in BUILTIN_VARIABLES}

    def min_le_max(d: pd.DataFrame) -> pd.Series:
        return ~(parse_numbers(d["min"])[0] > parse_numbers(d["max"])[0])

    return TableSpec(
        "variables",
        required=("name", "category", "unit", "min", "max", "aggregate"),
        optional=("description",),
        rules=(
            _not_blank("name"),
            _plain_text("name"),
            Rule("name", "name may not contain '.'",
                 lambda d: ~as_text(d["name"]).str.contains(".", regex=False).fillna(False),
                 ("name",)),
            Rule("name", "name redefines a built-in registry variable",
                 lambda d: ~as_text(d["name"]).isin(builtin).fillna(False), ("name",)),
            _unique(("name",), "variable"),
            _not_blank("category"),
            _one_of("category", CATEGORIES),
            _not_blank("unit"),
            _not_blank("min"),
            *_number("min"),
            _not_blank("max"),
            *_number("max"),
            Rule("max", "min is greater than max", min_le_max, ("min", "max")),
            _not_blank("aggregate"),
            _one_of("aggregate", AGGREGATES),
        ),
    )


# ---------------------------------------------------------------- running
def _suggest(missing: str, present: list[str]) -> str:
    """A hint for a missing column.

    ' (found …)' for a column present under other case or spaces, else ' (did you mean …?)'
    for the closest names, else ''.
    """
    for col in present:
        if str(col).strip().lower() == missing:
            return f" (found '{col}': check spelling, case and spaces)"
    return did_you_mean(missing, [str(c) for c in present])


def validate_table(df: pd.DataFrame, spec: TableSpec, file_name: str,
                   log: ProblemLog | None = None, offset: int = 0) -> list[Problem]:
    """Validate one raw table (lazily) and return every problem.

    At most :data:`MAX_ROWS_PER_RULE` rows are listed per rule, plus one summary line for the rest.
    ``df`` must have a default RangeIndex: row ``i`` is data row ``offset + i + 1`` (``offset``:
    rows of the same file in earlier chunks). With ``log``, problems go there (and the count
    per rule runs over every chunk) and the returned list is empty.
    """
    own = log is None
    log = ProblemLog(MAX_ROWS_PER_RULE) if own else log
    try:
        spec.schema().validate(df.head(0), lazy=True)
    except pa.errors.SchemaErrors as exc:
        for missing in exc.failure_cases["failure_case"].drop_duplicates():
            log.add(Problem(file_name, f"required column '{missing}' is missing"
                            + _suggest(str(missing), list(df.columns)), column=str(missing)))
    for rule in spec.rules:
        if any(c not in df.columns for c in rule.needs):
            continue  # the missing column is reported on its own
        rows = np.flatnonzero(~np.asarray(rule.ok(df), dtype=bool))
        if not rows.size:
            continue
        room = log.room(file_name, rule.text, rule.column)
        for i in rows[:room]:
            i = int(i)
            value = None
            if rule.column is not None and not pd.isna(df.at[i, rule.column]):
                value = str(df.at[i, rule.column])
            text = rule.describe(df, i) if rule.describe else rule.text
            log.add(Problem(file_name, text, row=offset + i + 1, column=rule.column, value=value),
                    rule=rule.text)
        rest = rows[room:]
        if rest.size:  # counted, not listed: bounded time and memory for huge invalid files
            log.count(file_name, rule.text, rule.column, n=int(rest.size),
                      first=offset + int(rest[0]) + 1, last=offset + int(rest[-1]) + 1)
    return log.problems() if own else []
