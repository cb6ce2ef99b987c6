"""Bad input gets one clear error listing every problem with file/row/column/rule."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import small_tables, write_tables

from migraine_bayes.cohort.io import cohort_from_frames, from_wide, load_cohort
from migraine_bayes.errors import InputDataError


def problems_of(folder: Path) -> list:
    with pytest.raises(InputDataError) as info:
        load_cohort(folder)
    return info.value.problems


def test_valid_small_cohort_loads_typed(small_cohort_dir: Path) -> None:
    cohort = load_cohort(small_cohort_dir)
    assert cohort.patient_ids == ["p1", "p2"]
    assert pd.api.types.is_datetime64_any_dtype(cohort.observations["time"])
    assert cohort.observations["value"].dtype == float
    assert cohort.attacks["peak_severity"].tolist() == [2, 3, 1]
    assert pd.isna(cohort.attacks.loc[2, "end"])
    assert len(cohort.observations) == 60  # nothing dropped


def test_every_listed_problem_is_reported_together(tmp_path: Path) -> None:
    tables = small_tables()
    obs = tables["observations"]
    obs.loc[0, "variable"] = "mood_score"  # unknown variable
    obs.loc[1, "value"] = "1300"  # pressure out of range
    extra = pd.DataFrame([["p1", "2024-03-02T09:00", "resting_hr", "900"],  # out of range
                          ["p1", "03/02/2024", "stress", "3"]],  # unparseable timestamp
                         columns=obs.columns)
    tables["observations"] = pd.concat([obs, extra], ignore_index=True)
    att = tables["attacks"]
    att.loc[0, "end"] = "2024-03-03T05:00"  # end before onset
    dup = att.iloc[[1]]
    orphan = pd.DataFrame([["p9", "2024-03-05T10:00", "", ""]], columns=att.columns)
    tables["attacks"] = pd.concat([att, dup, orphan], ignore_index=True)
    folder = write_tables(tmp_path / "bad", tables)
    probs = problems_of(folder)
    text = "\n".join(map(str, probs))
    expected = [
        ("observations.csv", 1, "variable", "unknown variable"),
        ("observations.csv", 2, "value", "registry range of 'pressure'"),
        ("observations.csv", 61, "value", "registry range of 'resting_hr'"),
        ("observations.csv", 62, "time", "ISO 8601"),
        ("attacks.csv", 1, "end", "end is before its onset"),
        ("attacks.csv", 4, None, "duplicate attack row: same patient_id and onset as row 2"),
    ]
    for file, row, column, rule in expected:
        assert any(p.file == file and p.row == row and p.column == column and rule in p.rule
                   for p in probs), f"missing {file} row {row} {column} {rule!r} in\n{text}"
    # the orphan patient shows up only after the per-file rules pass: fix those, re-check
    assert "line 63" in text  # row 62 of a CSV is on line 63 (the header is line 1)


def test_patient_in_attacks_without_diary_period(tmp_path: Path) -> None:
    tables = small_tables()
    orphan = pd.DataFrame([["p9", "2024-03-05T10:00", "", ""]], columns=tables["attacks"].columns)
    tables["attacks"] = pd.concat([tables["attacks"], orphan], ignore_index=True)
    probs = problems_of(write_tables(tmp_path / "c", tables))
    assert len(probs) == 1
    p = probs[0]
    assert (p.file, p.row, p.column) == ("attacks.csv", 4, "patient_id")
    assert "no diary period" in p.rule and p.value == "p9"


def test_attack_outside_declared_diary_period(tmp_path: Path) -> None:
    tables = small_tables()
    tables["attacks"].loc[2, "onset"] = "2024-04-20T10:00"
    probs = problems_of(write_tables(tmp_path / "c", tables))
    assert [(p.file, p.row, p.column) for p in probs] == [("attacks.csv", 3, "onset")]
    assert "outside the patient's diary period 2024-03-01–2024-03-10" in probs[0].rule


def test_missing_required_column_with_spelling_hint(tmp_path: Path) -> None:
    tables = small_tables()
    tables["observations"] = tables["observations"].rename(columns={"value": "Value"})
    probs = problems_of(write_tables(tmp_path / "c", tables))
    assert len(probs) == 1
    assert probs[0].column == "value" and "required column 'value' is missing" in probs[0].rule
    assert "found 'Value'" in probs[0].rule


@pytest.mark.parametrize("content", ["", "patient_id,onset\n"])
def test_empty_files(tmp_path: Path, content: str) -> None:
    folder = write_tables(tmp_path / "c", small_tables())
    (folder / "observations.csv").write_text(content)
    probs = problems_of(folder)
    assert [p.file for p in probs] == ["observations.csv"]
    assert "empty" in probs[0].rule or "no data rows" in probs[0].rule


def test_missing_required_file_and_ambiguous_formats(tmp_path: Path) -> None:
    folder = write_tables(tmp_path / "c", small_tables())
    (folder / "attacks.csv").unlink()
    pd.read_csv(folder / "patients.csv").to_parquet(folder / "patients.parquet")
    rules = [p.rule for p in problems_of(folder)]
    assert any("required file attacks.csv" in r for r in rules)
    assert any("both patients.csv and patients.parquet" in r for r in rules)


def test_other_rules_name_the_cell(tmp_path: Path) -> None:
    tables = small_tables()
    tables["attacks"]["aura"] = ["maybe", "yes", "0"]
    tables["attacks"]["symptoms"] = ["yawning;fatigue", "sneezing", ""]
    tables["attacks"].loc[1, "peak_severity"] = "7"
    tables["treatments"].loc[0, "kind"] = "surgery"
    tables["treatments"].loc[0, "dose_mg"] = "-70"
    tables["observations"].loc[3, "value"] = "high"
    tables["observations"].loc[4, "patient_id"] = ""
    probs = problems_of(write_tables(tmp_path / "c", tables))
    got = {(p.file, p.row, p.column) for p in probs}
    assert {("attacks.csv", 1, "aura"), ("attacks.csv", 2, "symptoms"),
            ("attacks.csv", 2, "peak_severity"), ("treatments.csv", 1, "kind"),
            ("treatments.csv", 1, "dose_mg"), ("observations.csv", 4, "value"),
            ("observations.csv", 5, "patient_id")} <= got


def test_many_failures_are_summarised_not_flooded(tmp_path: Path) -> None:
    tables = small_tables()
    tables["observations"]["variable"] = "not_a_variable"
    probs = problems_of(write_tables(tmp_path / "c", tables))
    assert len(probs) == 51
    assert "10 more rows" in probs[-1].rule


def test_nothing_is_clipped_or_dropped_on_the_edge(tmp_path: Path) -> None:
    tables = small_tables()
    tables["observations"].loc[0, ["variable", "value"]] = ["stress", "10"]  # max is valid
    cohort = load_cohort(write_tables(tmp_path / "c", tables))
    assert cohort.observations.loc[0, "value"] == 10.0


def test_user_variables_extend_the_registry(tmp_path: Path) -> None:
    tables = small_tables()
    tables["variables"] = pd.DataFrame({"name": ["migraine_app_score"], "category": ["symptom"],
                                        "unit": ["0-5"], "min": ["0"], "max": ["5"],
                                        "aggregate": ["max"]})
    extra = pd.DataFrame([["p1", "2024-03-02", "migraine_app_score", "4"],
                          ["p1", "2024-03-03", "migraine_app_score", "6"]],
                         columns=tables["observations"].columns)
    tables["observations"] = pd.concat([tables["observations"], extra], ignore_index=True)
    probs = problems_of(write_tables(tmp_path / "c", tables))
    assert [(p.row, p.column) for p in probs] == [(62, "value")]
    assert "'migraine_app_score': [0, 5] 0-5" in probs[0].rule


def test_bad_variables_file(tmp_path: Path) -> None:
    tables = small_tables()
    tables["variables"] = pd.DataFrame({"name": ["stress", "x.y"], "category": ["mood", "trigger"],
                                        "unit": ["", "u"], "min": ["5", "0"], "max": ["1", "1"],
                                        "aggregate": ["median", "max"]})
    probs = problems_of(write_tables(tmp_path / "c", tables))
    rules = {(p.row, p.column, p.rule.split(" (")[0]) for p in probs if p.file == "variables.csv"}
    assert (1, "name", "name redefines a built-in registry variable") in rules
    assert (2, "name", "name may not contain '.'") in rules
    assert any(r[:2] == (1, "category") for r in rules)
    assert any(r[:2] == (1, "aggregate") for r in rules)
    assert (1, "max", "min is greater than max") in rules
    assert (1, "unit", "unit is empty") in rules


def test_parquet_and_csv_give_the_same_cohort(tmp_path: Path, small_cohort_dir: Path) -> None:
    a = load_cohort(small_cohort_dir)
    folder = tmp_path / "pq"
    a.write(folder, observations_format="parquet")
    b = load_cohort(folder)
    pd.testing.assert_frame_equal(a.observations, b.observations)
    pd.testing.assert_frame_equal(a.attacks, b.attacks)


def test_parquet_timestamps_are_checked_like_text(tmp_path: Path,
                                                  small_cohort_dir: Path) -> None:
    """Typed Parquet times: a year pandas cannot hold is named by file, row and column (not an
    overflow); a zoned time is the wall clock of its zone; a date column reads as a date."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    a = load_cohort(small_cohort_dir)
    obs = a.observations.copy()
    micros = (obs["time"] - pd.Timestamp("1970-01-01")) // pd.Timedelta(microseconds=1)
    micros = micros.to_numpy().copy()
    micros[4] = (pd.Timestamp("2262-01-01").value // 1000) * 2  # year ~2554: beyond ns
    table = pa.table({"patient_id": obs["patient_id"].astype(str), "variable":
                      obs["variable"].astype(str), "value": obs["value"],
                      "time": pa.array(micros, type=pa.timestamp("us"))})
    folder = write_tables(tmp_path / "c", {k: v for k, v in small_tables().items()
                                           if k != "observations"})
    pq.write_table(table, folder / "observations.parquet")
    problems = problems_of(folder)
    assert [(p.file, p.row, p.column) for p in problems] == [
        ("observations.parquet", 5, "time")], problems
    assert "outside the plausible window" in problems[0].rule
    zoned = obs["time"].dt.tz_localize("Asia/Tokyo")
    pq.write_table(table.set_column(3, "time", pa.array(zoned)), folder / "observations.parquet")
    b = load_cohort(folder)
    pd.testing.assert_series_equal(b.observations["time"], a.observations["time"])
    dates = pa.array(obs["time"].dt.date)
    pq.write_table(table.set_column(3, "time", dates), folder / "observations.parquet")
    assert (load_cohort(folder).observations["time"] == obs["time"].dt.normalize()).all()


def test_offsets_keep_local_wall_clock_day(tmp_path: Path) -> None:
    tables = small_tables()
    tables["attacks"].loc[0, "onset"] = "2024-03-03T23:30:00+09:00"
    tables["attacks"].loc[0, "end"] = ""
    cohort = load_cohort(write_tables(tmp_path / "c", tables))
    assert cohort.attacks.loc[0, "onset"] == pd.Timestamp("2024-03-03T23:30")


def test_from_wide_melts_and_skips_empty_cells() -> None:
    wide = pd.DataFrame({"user": ["a", "a", "b"], "ts": ["2024-01-01", "2024-01-02", "2024-01-01"],
                         "HRV": [40.0, None, 55.0], "RHR": [60, 61, 58], "ignored": [1, 2, 3]})
    long = from_wide(wide, {"HRV": "hrv_rmssd", "RHR": "resting_hr"}, patient_column="user",
                     time_column="ts", source="band")
    assert len(long) == 5 and set(long["variable"]) == {"hrv_rmssd", "resting_hr"}
    assert (long["source"] == "band").all()
    attacks = pd.DataFrame({"patient_id": ["a"], "onset": ["2024-01-02T08:00"]})
    cohort = cohort_from_frames(long, attacks)
    assert cohort.patient_ids == ["a", "b"]


def test_from_wide_reports_missing_columns() -> None:
    wide = pd.DataFrame({"time": ["2024-01-01"], "HRV": [40.0]})
    with pytest.raises(InputDataError) as info:
        from_wide(wide, {"HRV": "hrv_rmssd", "Steps": "steps"})
    cols = {p.column for p in info.value.problems}
    assert cols == {"patient_id", "Steps"}


def test_names_that_a_spreadsheet_would_run_as_formulas_are_refused(tmp_path: Path) -> None:
    """A patient id or treatment name written into forecast, backtest or export files must not
    start a formula (``=HYPERLINK(...)``, ``@SUM``, ``+cmd``) nor hide a control character."""
    tables = small_tables()
    for table in ("observations", "attacks", "treatments", "patients"):
        tables[table]["patient_id"] = tables[table]["patient_id"].replace(
            "p2", '=HYPERLINK("http://x","p2")')
    tables["treatments"].loc[0, "name"] = "@erenumab"
    probs = problems_of(write_tables(tmp_path / "c", tables))
    where = {(p.file, p.column) for p in probs}
    assert {("observations.csv", "patient_id"), ("attacks.csv", "patient_id"),
            ("patients.csv", "patient_id"), ("treatments.csv", "name")} <= where
    assert all("formula" in p.rule for p in probs if p.column in ("patient_id", "name"))
    tables = small_tables()
    tables["patients"].loc[0, "patient_id"] = "p1\x07"
    assert any(p.column == "patient_id" and "control characters" in p.rule
               for p in problems_of(write_tables(tmp_path / "d", tables)))
