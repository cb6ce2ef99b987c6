"""One row per attack with its course, read off the ``attacks`` table (docs/SCHEMA.md).

Phases, in hours: ``prodrome_h`` (``onset − prodrome_onset``), ``headache_h`` (``end −
onset``), ``postdrome_h`` (``postdrome_end − end``); a phase whose times are missing (or zero
long) is NaN, never guessed. ``prodrome`` is True when a prodrome onset or a premonitory symptom
was recorded, False when the attack has neither but the patient records prodromes at all (else
NaN: a diary that never asks is not evidence of none). A headache or postdrome that runs into
the next attack (ends less than :data:`CUT_SHORT_MIN` minutes before its onset) was cut short
by it: ``<phase>_censored`` says so, and the fit treats its length as a lower bound.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PHASES = ("prodrome_h", "headache_h", "postdrome_h")
CUT_SHORT_MIN = 10


def course_records(attacks: pd.DataFrame, patients: list[str]) -> pd.DataFrame:
    """Per attack of ``patients``: phases (h), severity, aura, prodrome, symptoms, acute outcome.

    Columns: ``patient_id``, ``prodrome_h``, ``headache_h``, ``postdrome_h`` (float, NaN when
    unknown), ``<phase>_censored`` (bool), ``severity`` (Int64, 0–3), ``aura`` (boolean),
    ``prodrome`` (boolean), ``symptoms`` (tuple of names), ``drug`` (lower-case name or None),
    ``pain_free_2h``, ``recurrence_48h`` (boolean).
    """
    a = attacks[attacks["patient_id"].isin(patients)].sort_values(["patient_id", "onset"])
    a = a.reset_index(drop=True)
    nxt = a.groupby("patient_id")["onset"].shift(-1)

    def hours(later: str, earlier: str) -> pd.Series:
        if later not in a or earlier not in a:
            return pd.Series(np.nan, index=a.index)
        h = (a[later] - a[earlier]).dt.total_seconds() / 3600.0
        return h.where(h > 0)

    symptoms = (a["symptoms"] if "symptoms" in a else pd.Series(pd.NA, index=a.index)).map(
        lambda s: tuple(x.strip() for x in str(s).split(";") if x.strip())
        if isinstance(s, str) else ())
    has_onset = a["prodrome_onset"].notna() if "prodrome_onset" in a else False
    prodrome = pd.Series(has_onset | symptoms.map(bool), index=a.index, dtype="boolean")
    records_any = prodrome.groupby(a["patient_id"]).transform("any")
    prodrome = prodrome.where(records_any, pd.NA)

    def col(name: str, dtype: str) -> pd.Series:
        return a[name].astype(dtype) if name in a else pd.Series(pd.NA, index=a.index,
                                                                 dtype=dtype)

    def cut_short(col_name: str) -> pd.Series:
        if col_name not in a:
            return pd.Series(False, index=a.index)
        gap = (nxt - a[col_name]).dt.total_seconds() / 60.0
        return (gap < CUT_SHORT_MIN).fillna(False).astype(bool)

    drug = col("acute_medication", "string").str.strip().str.lower()
    return pd.DataFrame({
        "patient_id": a["patient_id"].astype(str),
        "prodrome_h": hours("onset", "prodrome_onset"),
        "headache_h": hours("end", "onset"),
        "postdrome_h": hours("postdrome_end", "end"),
        "prodrome_h_censored": False,
        "headache_h_censored": cut_short("end"),
        "postdrome_h_censored": cut_short("postdrome_end"),
        "severity": col("peak_severity", "Int64"),
        "aura": col("aura", "boolean"),
        "prodrome": prodrome,
        "symptoms": symptoms,
        "drug": drug.astype(object).where(drug.notna(), None),
        "pain_free_2h": col("pain_free_2h", "boolean"),
        "recurrence_48h": col("recurrence_48h", "boolean"),
    })
