"""Strict parsers for raw cohort columns: each returns the parsed values and a mask of failures.

Nothing is coerced silently: a value that does not parse is reported, never turned into NaN.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

# ISO 8601 date or date-time, optional fraction and UTC offset ("Z", "+02:00", "+0200").
_ISO = re.compile(
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?"
    r"(?P<offset>Z|[+-]\d{2}:?\d{2})?$"
)
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
WINDOW_START = "1970-01-01"
WINDOW_AHEAD_DAYS = 366
_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


def is_blank(series: pd.Series) -> pd.Series:
    """True where a raw cell is empty (NaN/None or only white space)."""
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        blank = series.isna() | series.astype("string").str.strip().eq("").fillna(True)
        return blank.astype(bool)
    return series.isna().astype(bool)


def plausible_window() -> tuple[pd.Timestamp, pd.Timestamp]:
    """Dates a diary can hold: from 1970-01-01 to a year after today (docs/SCHEMA.md §1)."""
    return (pd.Timestamp(WINDOW_START),
            pd.Timestamp.now().normalize() + pd.Timedelta(days=WINDOW_AHEAD_DAYS))


def last_lived_day() -> pd.Timestamp:
    """The latest day a diary can hold: tomorrow by UTC's calendar (docs/SCHEMA.md §1).

    A patient east of UTC is already living tomorrow; no one is living the day after.
    """
    return pd.Timestamp.now(tz="UTC").tz_localize(None).normalize() + pd.Timedelta(days=1)


def after_today(series: pd.Series) -> pd.Series:
    """True where a valid date lies after :func:`last_lived_day` (a day that has not happened).

    Reads only the date part (like :func:`outside_window`): the cell rules run on every row.
    """
    last, window_end = last_lived_day(), plausible_window()[1]  # beyond it: said once, there
    if pd.api.types.is_datetime64_any_dtype(series):
        s = series.dt.tz_localize(None) if getattr(series.dt, "tz", None) is not None else series
        day = s.dt.normalize()
    else:
        text = series.astype("string").str.strip()
        shape_ok = text.str.match(_ISO).fillna(False).astype(bool)
        day = pd.to_datetime(text.where(shape_ok).str[:10], format="%Y-%m-%d", errors="coerce")
    return ((day > last) & (day <= window_end)).fillna(False).astype(bool)


def _years(text: pd.Series, shape_ok: pd.Series) -> pd.Series:
    return pd.to_numeric(text.where(shape_ok).str[:4], errors="coerce")


def parse_timestamps(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse ISO 8601 timestamps to naive local wall-clock time.

    docs/SCHEMA.md: times without an offset are the patient's local time; a time with an offset is
    read as the wall-clock time it states (the offset is dropped, not converted to UTC), so the
    day an event belongs to is the day the patient lived it.

    Returns
    -------
    parsed : Series of datetime64[ns]
        NaT where blank, invalid or outside the plausible window (:func:`outside_window`).
    invalid : Series of bool
        True where the cell is non-blank but not a valid ISO 8601 date/time.

    """
    blank = is_blank(series)
    if pd.api.types.is_datetime64_any_dtype(series):
        parsed = series
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_localize(None)
        first, last = plausible_window()
        parsed = parsed.astype("datetime64[ns]")
        return parsed.where((parsed >= first) & (parsed <= last)), pd.Series(
            False, index=series.index)
    text = series.astype("string").str.strip()
    shape_ok = text.str.match(_ISO).fillna(False).astype(bool) & _offset_ok(text)
    years = _years(text, shape_ok)
    representable = shape_ok & years.between(1678, 2261).fillna(False).astype(bool)
    naive = text.where(representable).str.replace(_OFFSET, "", regex=True).str.replace(",", ".")
    parsed = pd.to_datetime(naive, format="ISO8601", errors="coerce").astype("datetime64[ns]")
    outside = outside_window(series)
    invalid = (~blank & parsed.isna() & ~outside).astype(bool)
    return parsed.where(~outside), invalid


def _offset_ok(text: pd.Series) -> pd.Series:
    """False where a UTC offset is not one a clock shows (beyond ±14:00, or minutes ≥ 60)."""
    ok = pd.Series(True, index=text.index)
    zoned = text.str.contains(r"\d[+-]\d{2}:?\d{2}$", regex=True).fillna(False).astype(bool)
    if not zoned.any():  # most diaries hold no offset: no per-row extraction
        return ok
    parts = text[zoned].str.extract(
        r"[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?([+-])(\d{2}):?(\d{2})$")
    hours, minutes = pd.to_numeric(parts[1]), pd.to_numeric(parts[2])
    bad = (hours > 14) | (minutes >= 60) | ((hours == 14) & (minutes > 0))
    ok[zoned] = ~bad.fillna(False).astype(bool)
    return ok


def outside_window(series: pd.Series) -> pd.Series:
    """True where a well-formed date lies outside :func:`plausible_window` (year 1, 2300 …)."""
    first, last = plausible_window()
    if pd.api.types.is_datetime64_any_dtype(series):
        s = series.dt.tz_localize(None) if getattr(series.dt, "tz", None) is not None else series
        return (s.notna() & ((s < first) | (s > last))).astype(bool)
    text = series.astype("string").str.strip()
    shape_ok = text.str.match(_ISO).fillna(False).astype(bool) & _offset_ok(text)
    years = _years(text, shape_ok)
    day = pd.to_datetime(text.where(shape_ok & years.between(1678, 2261).fillna(False)
                                    .astype(bool)).str[:10], format="%Y-%m-%d", errors="coerce")
    out = (years < first.year) | (years > last.year) | (day < first.normalize()) | (day > last)
    return (shape_ok & out.fillna(False)).astype(bool)


def parse_numbers(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse numbers; blank → NaN (not invalid), text or ±inf → invalid."""
    blank = is_blank(series)
    if pd.api.types.is_bool_dtype(series):
        values = series.astype(float)
    elif pd.api.types.is_numeric_dtype(series):
        values = series.astype(float)
    else:
        values = pd.to_numeric(series.astype("string").str.strip(), errors="coerce").astype(float)
    invalid = (~blank & (values.isna() | np.isinf(values.fillna(0.0)))).astype(bool)
    return values.where(~invalid), invalid


def parse_booleans(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse booleans from true/false, yes/no, 1/0 (any case); blank → <NA>."""
    blank = is_blank(series)
    if pd.api.types.is_bool_dtype(series):
        return series.astype("boolean"), pd.Series(False, index=series.index)
    text = series.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=series.index, dtype="boolean")
    out[text.isin(_TRUE).fillna(False).astype(bool)] = True
    out[text.isin(_FALSE).fillna(False).astype(bool)] = False
    invalid = (~blank & out.isna()).astype(bool)
    return out, invalid


def as_text(series: pd.Series) -> pd.Series:
    """Strings with surrounding white space removed; blank → <NA>."""
    text = series.astype("string").str.strip()
    return text.mask(text.eq(""))


_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_day(text: str, what: str = "date") -> pd.Timestamp:
    """A calendar day given as ``YYYY-MM-DD`` (nothing else: ``31/12/2025`` is ambiguous).

    Raises ``ValueError`` naming ``what`` and the rule.
    """
    if not isinstance(text, str) or not _DAY.match(text.strip()):
        raise ValueError(f"{what} {text!r} is not a day in the form YYYY-MM-DD")
    try:
        return pd.Timestamp(dt.date.fromisoformat(text.strip()))
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a calendar day") from None
