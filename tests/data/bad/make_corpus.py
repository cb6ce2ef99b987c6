"""Write the bad-input corpus: one small cohort folder per case, each with ``expected.txt``.

Every case is a copy of one valid two-patient cohort with one thing broken, as a hostile but fair
user would break it. ``expected.txt`` holds the text (one fragment per line) the rejection must
contain. Run from the repository root to rewrite the committed corpus::

    .venv/bin/python tests/data/bad/make_corpus.py
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
Tables = dict[str, pd.DataFrame]


def base() -> Tables:
    """Two patients × 20 days: sleep, stress, caffeine; a few attacks; declared periods."""
    rng = np.random.default_rng(20261126)
    obs, att = [], []
    for pid in ("P-01", "P-02"):
        for d in pd.date_range("2024-03-01", periods=20):
            obs += [(pid, f"{d:%Y-%m-%d}T07:00", "sleep_duration", round(rng.uniform(5, 9), 1)),
                    (pid, f"{d:%Y-%m-%d}T20:00", "stress", int(rng.integers(0, 10))),
                    (pid, f"{d:%Y-%m-%d}T20:00", "caffeine", int(rng.integers(0, 400)))]
        for k in (2, 7, 13):
            d = pd.Timestamp("2024-03-01") + pd.Timedelta(days=k)
            att.append((pid, f"{d:%Y-%m-%d}T10:00", f"{d:%Y-%m-%d}T16:00", 2, "false",
                        f"{d:%Y-%m-%d}T08:00", f"{d:%Y-%m-%d}T10:30", "rizatriptan", 10))
    return {
        "observations": pd.DataFrame(obs, columns=["patient_id", "time", "variable", "value"]
                                     ).astype(object),
        "attacks": pd.DataFrame(att, columns=["patient_id", "onset", "end", "peak_severity",
                                              "aura", "prodrome_onset", "acute_time",
                                              "acute_medication", "acute_dose_mg"]
                                ).astype(object),
        "patients": pd.DataFrame({"patient_id": ["P-01", "P-02"], "sex": ["F", "M"],
                                  "birth_year": [1985, 1990]}),
    }


def obs_row(t: Tables, *row: object) -> None:
    t["observations"].loc[len(t["observations"])] = list(row)


def att_row(t: Tables, **cells: object) -> None:
    a = t["attacks"]
    a.loc[len(a)] = [cells.get(c, "") for c in a.columns]


def set_cell(stem: str, row: int, column: str, value: object) -> Callable[[Tables], None]:
    def edit(t: Tables) -> None:
        t[stem][column] = t[stem][column].astype(object)
        t[stem].loc[row, column] = value
    return edit


def declare(t: Tables) -> None:
    t["patients"]["diary_start"] = "2024-03-01"
    t["patients"]["diary_end"] = "2024-03-20"


def cases() -> dict[str, tuple[Callable[[Tables], None], list[str]]]:
    """name → (edit of the base tables, fragments the message must contain)."""
    window = "outside the plausible window"
    out: dict[str, tuple[Callable[[Tables], None], list[str]]] = {
        "stray_date_1900": (lambda t: obs_row(t, "P-01", "1900-03-05T07:00", "stress", 3),
                            [window, "row 121", "column 'time'"]),
        "stray_date_2100": (lambda t: obs_row(t, "P-01", "2100-03-05T07:00", "stress", 3),
                            [window]),
        "year_0001": (lambda t: obs_row(t, "P-01", "0001-05-01T07:00", "stress", 3), [window]),
        "year_2300_and_other_errors": (
            lambda t: (obs_row(t, "P-01", "2300-01-01", "stress", 3),
                       obs_row(t, "P-01", "2024-03-05T07:00", "stress", 11)),
            [window, "outside the registry range"]),
        "attack_in_2100": (lambda t: att_row(t, patient_id="P-01", onset="2100-01-01T10:00"),
                           [window, "attacks.csv"]),
        "stray_date_years_before": (
            lambda t: obs_row(t, "P-02", "2021-06-01T07:00", "stress", 3),
            ["more than 180 days from the rest", "P-02"]),
        "outside_declared_period": (
            lambda t: (declare(t), obs_row(t, "P-01", "2024-04-02T07:00", "stress", 3)),
            ["outside the patient's declared diary period"]),
        "exact_duplicate_observation": (
            lambda t: obs_row(t, *t["observations"].iloc[4]),
            ["exact duplicate of row 5", "--dedupe"]),
        "three_sleep_rows_one_day": (
            lambda t: [obs_row(t, "P-01", f"2024-03-03T0{h}:00", "sleep_duration", 10)
                       for h in (1, 2, 3)],
            ["sum to", "above its daily maximum 24 h"]),
        "hourly_steps_summed": (
            lambda t: [obs_row(t, "P-01", f"2024-03-04T{h:02d}:00", "steps", 50000)
                       for h in range(24)],
            ["'steps' sum to 1.2e+06", "daily maximum 100000"]),
        "conflicting_values_same_time": (
            lambda t: obs_row(t, "P-01", "2024-03-01T20:00", "stress", 9),
            ["different value of this variable at the same time"]),
        "same_minute_attacks": (
            lambda t: att_row(t, patient_id="P-01", onset="2024-03-03T10:00:30",
                              end="2024-03-03T12:00", peak_severity=2),
            ["same minute as row 1"]),
        "exact_duplicate_attack": (lambda t: att_row(t, **t["attacks"].iloc[0].to_dict()),
                                   ["duplicate attack row: same patient_id and onset as row 1"]),
        "overlapping_attacks": (
            lambda t: att_row(t, patient_id="P-01", onset="2024-03-03T14:00",
                              end="2024-03-03T20:00", peak_severity=1),
            ["overlapping attacks"]),
        "acute_time_weeks_before": (set_cell("attacks", 1, "acute_time", "2024-02-14T10:00"),
                                    ["acute_time is outside its attack", "row 2"]),
        "prodrome_months_before": (set_cell("attacks", 2, "prodrome_onset", "2023-08-14T10:00"),
                                   ["prodrome_onset is more than 72 h"]),
        "unicode_hyphen_id": (set_cell("observations", 7, "patient_id", "P\u201001"),
                              ["looks like 'P-01'", "<U+2010>"]),
        "cyrillic_letter_id": (set_cell("observations", 9, "patient_id", "\u0420-01"),
                               ["looks like 'P-01'"]),
        "lower_case_id": (set_cell("attacks", 0, "patient_id", "p-01"), ["looks like 'P-01'"]),
        "letter_o_for_zero_id": (set_cell("observations", 5, "patient_id", "P-O1"),
                                 ["looks like 'P-01'", "'P-O1'"]),
        "letter_l_for_one_id": (set_cell("attacks", 0, "patient_id", "P-0l"),
                                ["looks like 'P-01'", "'P-0l'"]),
        "greek_capital_id": (set_cell("observations", 7, "patient_id", "\u03a1-01"),
                             ["looks like 'P-01'", "<U+03A1>"]),
        "formula_patient_id": (set_cell("observations", 2, "patient_id", "=1+2"),
                               ["row 3", "column 'patient_id'", "formula"]),
        "zero_width_space_id": (set_cell("observations", 3, "patient_id", "P-01\u200b"),
                                ["looks like 'P-01'", "<U+200B>"]),
        "not_iso_date": (set_cell("observations", 0, "time", "03/01/2024 07:00"),
                         ["not an ISO 8601 date"]),
        "impossible_date": (set_cell("observations", 0, "time", "2024-02-30"),
                            ["not an ISO 8601 date"]),
        "unknown_variable": (set_cell("observations", 0, "variable", "sleep_hours"),
                             ["unknown variable"]),
        "value_out_of_range": (set_cell("observations", 0, "value", 30),
                               ["outside the registry range of 'sleep_duration'"]),
        "value_not_a_number": (set_cell("observations", 1, "value", "high"),
                               ["value is not a number"]),
        "value_infinite": (set_cell("observations", 1, "value", "inf"),
                           ["value is not a number"]),
        "blank_patient_id": (set_cell("observations", 2, "patient_id", " "),
                             ["patient_id is empty"]),
        "missing_value_column": (lambda t: t.__setitem__(
            "observations", t["observations"].drop(columns="value")),
            ["required column 'value' is missing"]),
        "misspelled_column": (lambda t: t.__setitem__(
            "observations", t["observations"].rename(columns={"value": "Value"})),
            ["found 'Value'"]),
        "attack_end_before_onset": (set_cell("attacks", 0, "end", "2024-03-03T09:00"),
                                    ["attack end is before its onset"]),
        "severity_five": (set_cell("attacks", 0, "peak_severity", 5),
                          ["peak_severity must be 0, 1, 2 or 3"]),
        "aura_maybe": (set_cell("attacks", 0, "aura", "maybe"), ["aura must be true/false"]),
        "prodrome_after_onset": (set_cell("attacks", 0, "prodrome_onset", "2024-03-03T11:00"),
                                 ["prodrome_onset is after the attack onset"]),
        "negative_dose": (set_cell("attacks", 0, "acute_dose_mg", -10),
                          ["acute_dose_mg must be ≥ 0"]),
        "unknown_symptom": (lambda t: t["attacks"].insert(3, "symptoms", "aura_flash"),
                            ["symptoms must be ';'-separated"]),
        "orphan_attack_patient": (
            lambda t: att_row(t, patient_id="P-03", onset="2024-03-05T10:00"),
            ["patient 'P-03' has no diary period"]),
        "attack_outside_declared_period": (
            lambda t: (declare(t), att_row(t, patient_id="P-01", onset="2024-03-25T10:00")),
            ["attack onset outside the patient's diary period"]),
        "duplicate_patient": (lambda t: t.__setitem__("patients", pd.concat(
            [t["patients"], t["patients"].iloc[:1]], ignore_index=True)),
            ["duplicate patient"]),
        "diary_end_before_start": (
            lambda t: (declare(t), set_cell("patients", 0, "diary_end", "2024-02-01")(t)),
            ["diary_end is before diary_start"]),
        "birth_year_1800": (set_cell("patients", 0, "birth_year", 1800),
                            ["birth_year must be ≥ 1900"]),
        "sleep_from_two_sources": (
            lambda t: (t["observations"].__setitem__("source", "diary"),
                       obs_row(t, "P-02", "2024-03-04T06:30", "sleep_duration", 6.5, "wristband")),
            ["'sleep_duration' of this patient comes from 2 sources on one day (diary, "
             "wristband)", "column 'source'"]),
        "birth_year_2999": (set_cell("patients", 1, "birth_year", 2999),
                            ["birth_year must be ≤", "row 2"]),
        "acute_dose_1e300": (set_cell("attacks", 1, "acute_dose_mg", 1e300),
                             ["acute_dose_mg must be ≤ 10000", "row 2"]),
        "attack_of_300_days": (set_cell("attacks", 0, "end", "2024-12-28T16:00"),
                               ["attack lasts more than 30 days", "column 'end'"]),
        "utc_offset_99_hours": (set_cell("observations", 4, "time", "2024-03-02T20:00+99:99"),
                                ["not an ISO 8601 date", "row 5"]),
        "patient_only_in_patients": (
            lambda t: (declare(t), t.__setitem__("patients", pd.concat([t["patients"], pd.DataFrame(
                {"patient_id": ["P-03"], "sex": ["F"], "birth_year": [1980],
                 "diary_start": ["2024-03-01"], "diary_end": ["2024-04-29"]})],
                ignore_index=True))),
            ["patient P-03 has a declared diary period but no observation and no attack",
             "row 3", "column 'patient_id'"]),
        "declared_period_far_beyond_data": (
            lambda t: (declare(t), set_cell("patients", 0, "diary_end", "2025-03-20")(t)),
            ["declared diary period reaches 365 days beyond patient P-01's records",
             "column 'diary_end'"]),
        "silent_month_counted_as_kept": (
            lambda t: obs_row(t, "P-01", "2024-04-20T20:00", "stress", 3),
            ["30 days in a row (2024-03-21 to 2024-04-19) hold no record of patient P-01",
             "row 121", "column 'time'"]),
        "weather_for_a_month_after_the_diary": (
            lambda t: [obs_row(t, "P-02", f"{day:%Y-%m-%d}T12:00", "pressure", 1012)
                       for day in pd.date_range("2024-03-21", periods=30)],
            ["30 days at the end of patient P-02's diary hold no record of the patient",
             "row 150", "column 'time'"]),
        "an_observation_every_170_days": (
            lambda t: [obs_row(t, "P-02", f"{day:%Y-%m-%d}T20:00", "stress", 3)
                       for day in pd.date_range(end="2024-03-01", periods=22, freq="170D")[:-1]],
            ["169 days in a row", "hold no record of patient P-02"]),
    }
    treat = pd.DataFrame({"patient_id": ["P-01"], "kind": ["preventive"], "name": ["erenumab"],
                          "start": ["2024-03-05"], "end": [""], "dose_mg": [70]})
    out["treatment_kind_unknown"] = (
        lambda t: t.__setitem__("treatments", treat.assign(kind="pill")),
        ["kind must be one of"])
    out["formula_treatment_name"] = (
        lambda t: t.__setitem__("treatments", treat.assign(name="@SUM(A1)")),
        ["column 'name'", "formula"])
    out["treatment_end_before_start"] = (
        lambda t: t.__setitem__("treatments", treat.assign(end="2024-03-01")),
        ["treatment end is before its start"])
    out["variable_redefines_builtin"] = (
        lambda t: t.__setitem__("variables", pd.DataFrame(
            {"name": ["stress"], "category": ["trigger"], "unit": ["0-10"], "min": [0],
             "max": [10], "aggregate": ["mean"]})),
        ["redefines a built-in registry variable"])
    out["variable_min_above_max"] = (
        lambda t: t.__setitem__("variables", pd.DataFrame(
            {"name": ["airq"], "category": ["environmental"], "unit": ["index"], "min": [10],
             "max": [0], "aggregate": ["mean"]})),
        ["min is greater than max"])
    def quoted_newline(t: Tables) -> None:
        t["observations"]["source"] = "diary"
        t["observations"].loc[2, "source"] = "diary app\n(paper copy)"  # one cell, two lines
        t["observations"].loc[10, "value"] = 11  # stress beyond 10, on line 13 of the file

    out["quoted_newline_before_the_bad_row"] = (
        quoted_newline, ["observations.csv, row 11 (line 13), column 'value'"])
    return out


# cases that need raw bytes rather than tables: name → (files, fragments)
RAW = {
    "empty_observations_file": ({"observations.csv": b""}, ["file is empty"]),
    "header_only_observations": ({"observations.csv": b"patient_id,time,variable,value\n"},
                                 ["header but no data rows"]),
    "not_utf8": ({"observations.csv": "patient_id,time,variable,value\nP\xe9,2024-03-01,"
                  "stress,3\n".encode("latin-1")}, ["not UTF-8"]),
    "duplicate_column_names": ({"observations.csv": b"patient_id,time,variable,value,value\n"
                                b"P-01,2024-03-01,stress,3,4\n"}, ["duplicate column names"]),
    "ragged_row": ({"observations.csv": b"patient_id,time,variable,value\n"
                    b"P-01,2024-03-01,stress,3\nP-01,2024-03-02,stress,3,9,9\n"},
                   ["cannot parse CSV"]),
    "missing_attacks_file": ({"attacks.csv": None}, ["required file attacks.csv"]),
    "csv_and_parquet": ({"observations.parquet": "parquet"}, ["keep one of them"]),
}


def write(folder: Path, tables: Tables) -> None:
    folder.mkdir(parents=True)
    for stem, df in tables.items():
        df.to_csv(folder / f"{stem}.csv", index=False)


def main() -> None:
    for old in HERE.iterdir():
        if old.is_dir():
            shutil.rmtree(old)
    for name, (edit, expected) in cases().items():
        t = base()
        edit(t)
        write(HERE / name, t)
        (HERE / name / "expected.txt").write_text("\n".join(expected) + "\n", encoding="utf-8")
    for name, (files, expected) in RAW.items():
        t = base()
        write(HERE / name, t)
        for file, content in files.items():
            path = HERE / name / file
            if content is None:
                path.unlink()
            elif content == "parquet":
                t["observations"].astype(str).to_parquet(path, index=False)
            else:
                path.write_bytes(content)
        (HERE / name / "expected.txt").write_text("\n".join(expected) + "\n", encoding="utf-8")
    print(f"{len(cases()) + len(RAW)} cases written to {HERE}")


if __name__ == "__main__":
    main()
