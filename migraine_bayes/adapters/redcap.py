"""REDCap exports → a cohort: the flat CSV export read with its data dictionary.

A REDCap project exports its records as one flat CSV (``record_id``, ``redcap_event_name`` in
longitudinal projects, ``redcap_repeat_instrument`` and ``redcap_repeat_instance`` for
repeating instruments, then one column per field; a checkbox field as ``field___code``
columns) and its data dictionary as another (field name, form, type, choices, validation type,
minimum and maximum). The diary days are the instances of one repeating instrument
(``[redcap] instrument``) or the rows of the events named in ``[redcap] events``; each day's
date is a date field of that instrument. The mapping is a diary mapping
(docs/import-diary.md) plus the ``[redcap]`` table; what the dictionary knows it need not
repeat:

* the patient id is the dictionary's first field (``record_id``) unless ``[table] patient``
  says otherwise;
* a ``yesno``, ``truefalse``, ``radio`` or ``dropdown`` field is read by its choices — the raw
  code or its label (an export with labels) — as the code's number; a ``[patients]`` field as
  its label (``sex`` = "Female");
* the headache field's ``yes`` and ``no`` codes default to a ``yesno`` field's 1 and 0;
* a declared variable's ``min`` and ``max`` default to the field's validation range;
* a field the dictionary does not hold is an error (with the nearest field name), and so is a
  row outside the instrument or events that carries a mapped field.

Patient fields (``[patients]``) are read from the record's rows outside the diary instrument
(its demographics). Everything then goes through the diary adapter and the cohort's own
validation, every problem named by the export's file, row and column.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from migraine_bayes.adapters.common import validated
from migraine_bayes.adapters.diary import diary_tables, read_mapping, read_table
from migraine_bayes.adapters.mapping import MappingReader
from migraine_bayes.cohort.io import Cohort
from migraine_bayes.errors import InputDataError, Problem, did_you_mean

# the data dictionary's columns: as exported from the web page, and as the API names them
DICTIONARY_COLUMNS = {
    "field": ("Variable / Field Name", "field_name"),
    "form": ("Form Name", "form_name"),
    "type": ("Field Type", "field_type"),
    "label": ("Field Label", "field_label"),
    "choices": ("Choices, Calculations, OR Slider Labels", "select_choices_or_calculations"),
    "validation": ("Text Validation Type OR Show Slider Number",
                   "text_validation_type_or_show_slider_number"),
    "min": ("Text Validation Min", "text_validation_min"),
    "max": ("Text Validation Max", "text_validation_max"),
}
CODED = ("yesno", "truefalse", "radio", "dropdown")
REDCAP_KEYS = {"instrument", "events"}
SPECIAL = ("redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance",
           "redcap_data_access_group")


@dataclass(frozen=True)
class Field:
    """One field of a REDCap data dictionary."""

    name: str
    form: str
    type: str
    label: str
    choices: dict[str, str]  # code → label
    validation: str
    min: float | None
    max: float | None

    def codes(self) -> dict[str, float] | None:
        """Cell text (code or label) → number, for coded fields with numeric codes."""
        choices = ({"1": "Yes", "0": "No"} if self.type == "yesno" else
                   {"1": "True", "0": "False"} if self.type == "truefalse" else self.choices)
        if self.type not in CODED or not choices:
            return None
        try:
            numbers = {code: float(code) for code in choices}
        except ValueError:
            return None
        return numbers | {label: numbers[code] for code, label in choices.items()}


def read_dictionary(path: str | Path) -> dict[str, Field]:
    """The data dictionary CSV ``path`` (web or API column names), by field name."""
    path = Path(path)
    df = read_table(path)
    columns = {}
    problems = []
    for key, names in DICTIONARY_COLUMNS.items():
        found = [n for n in names if n in df.columns]
        if not found and key in ("field", "form", "type"):
            problems.append(Problem(path.name, f"column is missing: not a REDCap data "
                                               f"dictionary{did_you_mean(names[0], df.columns)}",
                                    column=names[0]))
        columns[key] = found[0] if found else None
    if problems:
        raise InputDataError(problems, str(path))
    fields = {}
    for i, row in enumerate(df.itertuples(index=False), start=1):
        get = dict(zip(df.columns, row, strict=True))
        name = get[columns["field"]]
        if not name:
            problems.append(Problem(path.name, "field name is empty", row=i,
                                    column=columns["field"]))
            continue
        choices = {}
        ftype = get[columns["type"]]
        text = get[columns["choices"]] if columns["choices"] else ""
        if ftype in ("radio", "dropdown", "checkbox") and text:
            for part in text.split("|"):
                code, sep, label = part.strip().partition(",")
                if not sep:
                    problems.append(Problem(path.name, "a choice is not 'code, label'", row=i,
                                            column=columns["choices"], value=part.strip()))
                    continue
                choices[code.strip()] = label.strip()
        fields[name] = Field(name, get[columns["form"]], ftype,
                             get[columns["label"]] if columns["label"] else name, choices,
                             get[columns["validation"]] if columns["validation"] else "",
                             _number(get, columns["min"]), _number(get, columns["max"]))
    if problems:
        raise InputDataError(problems, str(path))
    return fields


def _number(row: dict, column: str | None) -> float | None:
    if column is None or not row[column]:
        return None
    try:
        return float(row[column])
    except ValueError:
        return None  # a date range (date fields) bounds no value


def import_redcap(sources: Sequence[str | Path], dictionary: str | Path,
                  mapping: str | Path, patients: Iterable[str] | None = None,
                  dedupe: bool = False) -> Cohort:
    """The cohort of REDCap export(s) ``sources`` with their ``dictionary`` (module text)."""
    fields = read_dictionary(dictionary)
    reader = MappingReader(mapping)
    redcap = reader.table("redcap", required=True)
    reader.known("[redcap]", redcap, REDCAP_KEYS)
    instrument = reader.text("[redcap]", redcap, "instrument")
    events = reader.texts("[redcap]", redcap, "events")
    if (instrument is None) == (not events):
        reader.add("[redcap] needs either 'instrument' (the repeating instrument whose "
                   "instances are the diary days) or 'events' (the events whose rows are)",
                   "instrument")
    if instrument is not None and instrument not in {f.form for f in fields.values()}:
        reader.add(f"[redcap]: no instrument '{instrument}' in the data dictionary"
                   f"{did_you_mean(instrument, {f.form for f in fields.values()})}",
                   "instrument", instrument)
    data = _enriched(reader, fields)
    reader.check()
    m = read_mapping(mapping, data=data)
    frames = []
    for source in sources:
        path = Path(source)
        frames.append((path.name, _days(path, read_table(path), m, fields, instrument, events)))
    tables = diary_tables(frames, m, None if patients is None else list(patients), dedupe)
    return validated(tables, ", ".join(str(s) for s in sources))


def _enriched(reader: MappingReader, fields: dict[str, Field]) -> dict:
    """The mapping's tables with what the dictionary knows filled in (module text)."""
    data = copy.deepcopy(reader.data)
    data.pop("redcap", None)
    table = data.setdefault("table", {})
    if isinstance(table, dict):
        table.setdefault("patient", next(iter(fields), "record_id"))
    known = set(fields)

    def field(column: str, where: str) -> Field | None:
        base = re.sub(r"___[^_]+$", "", column)  # a checkbox option's column
        if base not in known:
            reader.add(f"{where}: no field '{column}' in the data dictionary"
                       f"{did_you_mean(column, known)}", column)
            return None
        return fields[base]

    head = data.get("headache")
    if isinstance(head, dict) and isinstance(head.get("column"), str):
        f = field(head["column"], "[headache]")
        if f is not None and f.type in ("yesno", "truefalse"):
            head.setdefault("yes", ["1", "Yes" if f.type == "yesno" else "True"])
            head.setdefault("no", ["0", "No" if f.type == "yesno" else "False"])
        if isinstance(head.get("severity"), str):
            s = field(head["severity"], "[headache] severity")
            if s is not None and s.codes():
                head.setdefault("severity_codes", s.codes())
    for column, spec in (data.get("variables") or {}).items():
        f = field(column, f"[variables.{column}]")
        if f is None or not isinstance(spec, dict):
            continue
        if "___" in column:
            spec.setdefault("codes", {"0": 0, "1": 1, "Unchecked": 0, "Checked": 1})
        elif f.codes():
            spec.setdefault("codes", f.codes())
        if {"category", "unit", "aggregate"} & set(spec):
            for bound in ("min", "max"):
                if getattr(f, bound) is not None:
                    spec.setdefault(bound, getattr(f, bound))
    for column in (data.get("patients") or {}).values():
        if isinstance(column, str):
            field(column, "[patients]")
    return data


def _days(path: Path, df: pd.DataFrame, m, fields: dict[str, Field],
          instrument: str | None, events: tuple[str, ...]) -> pd.DataFrame:
    """The export's diary-day rows, each keeping its row number (``_record``).

    The record's patient fields (as labels) are joined on; a mapped diary field filled outside
    the days is an error.
    """
    problems = []
    for column in (m.patient, *SPECIAL[:1]) if events else (m.patient,):
        if column not in df.columns:
            problems.append(Problem(path.name, "column is missing"
                                    f"{did_you_mean(column, df.columns)}", column=column))
    if instrument is not None and "redcap_repeat_instrument" not in df.columns:
        problems.append(Problem(path.name, "column is missing: the export holds no repeating "
                                           "instrument", column="redcap_repeat_instrument"))
    if problems:
        raise InputDataError(problems, str(path))
    df = df.assign(_record=np.arange(1, len(df) + 1))
    day = (df["redcap_repeat_instrument"] == instrument) if instrument is not None else (
        df["redcap_event_name"].isin(set(events)))
    mapped = [c for c in m.columns if c in df.columns and c not in m.patient_columns.values()]
    outside = df[~day]
    where = "instrument" if instrument else "events"
    for c in mapped:
        filled = outside[~outside[c].isin(m.missing)]
        for record, value in zip(filled["_record"], filled[c], strict=True):
            problems.append(Problem(path.name, f"a diary field filled outside the diary {where}",
                                    row=int(record), column=c, value=value))
    if problems:
        raise InputDataError(problems[:50], str(path))
    days = df[day].copy()
    for column in m.patient_columns.values():
        if column not in df.columns:
            continue
        f = fields.get(column)
        labels = df[column].map(lambda v, f=f: f.choices.get(v, v) if f else v)
        known = labels[~df[column].isin(m.missing)]
        first = known.groupby(df.loc[known.index, m.patient]).first()
        days[column] = days[m.patient].map(first).fillna("")
    return days
