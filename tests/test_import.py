"""Issue 35: importers — daily diary tables (a published headache log, hostile tables, a round
trip of the committed cohort)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import COMMITTED, ROOT
from typer.testing import CliRunner

from migraine_bayes.adapters.diary import import_diary
from migraine_bayes.cli import app
from migraine_bayes.cohort.io import load_cohort
from migraine_bayes.errors import InputDataError
from migraine_bayes.state import build_panel

KD = ROOT / "tests" / "data" / "public" / "kostecki_dillon"
runner = CliRunner()


def test_a_published_headache_log_goes_in_with_its_15_line_mapping(tmp_path) -> None:
    """The Kostecki-Dillon logs (R package carData; nobody here wrote them): 133 patients, one
    row per patient-day. Every kept day and headache day is counted against the raw file."""
    mapping = KD / "mapping.toml"
    assert len(mapping.read_text().splitlines()) <= 15
    out = tmp_path / "kd"
    res = runner.invoke(app, ["import", "diary", str(KD / "KosteckiDillon.csv"), "--mapping",
                              str(mapping), "--out", str(out)])
    # the file holds one repeated row: refused, named, and the way out said
    assert res.exit_code == 2, res.output
    assert "row 2852 (line 2853), column 'dos'" in res.output and "--dedupe" in res.output
    assert not out.exists()
    res = runner.invoke(app, ["import", "diary", str(KD / "KosteckiDillon.csv"), "--mapping",
                              str(mapping), "--out", str(out), "--dedupe"])
    assert res.exit_code == 0, res.output
    raw = pd.read_csv(KD / "KosteckiDillon.csv").drop(columns=["rownames"], errors="ignore")
    raw = raw.loc[:, ~raw.columns.str.startswith("Unnamed")].drop_duplicates()
    c = load_cohort(out)
    assert len(c.patient_ids) == raw["id"].nunique() == 133
    kept = c.observations[c.observations["variable"] == "diary_entry"]
    assert len(kept) == len(raw) and len(c.attacks) == (raw["headache"] == "yes").sum()
    assert c.attacks["end"].isna().all()
    # the environmental index, declared with its range, on the row's day
    first = raw.iloc[0]
    day = pd.Timestamp("1990-01-01") + pd.Timedelta(days=int(first["dos"]))
    air = c.observations[(c.observations["variable"] == "air_quality")
                         & (c.observations["patient_id"] == str(first["id"]))]
    assert air.loc[air["time"] == day, "value"].item() == first["airq"]
    # biofeedback starts on the day `time` reads 0, even where that day has no row
    bio = c.treatments[(c.treatments["name"] == "biofeedback")].set_index("patient_id")
    one = raw[raw["id"] == 1]
    start = pd.Timestamp("1990-01-01") + pd.Timedelta(days=int(one["dos"].iloc[0]
                                                               - one["time"].iloc[0]))
    assert bio.loc["1", "start"] == start and 0 not in set(one["time"])
    assert set(c.treatments["kind"]) == {"behavioral", "preventive"}
    assert "2666 headache days" in res.output and "--outcome headache_day" in res.output


def _write(tmp_path: Path, text: str, name: str = "diary.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


MAPPING = """
[headache]
column = "headache"
yes = ["1"]
no = ["0"]
severity = "sev"
medication = "drug"
medication_none = ["none"]
[table]
patient = "pid"
date = "date"
missing = ["", "NA"]
[variables]
sleep = { name = "sleep_duration" }
stress = { name = "stress", codes = { low = 2, medium = 5, high = 8 } }
"""
GOOD = """pid,date,headache,sev,drug,sleep,stress
A,2024-03-01,0,,none,7.5,low
A,2024-03-02,1,2,sumatriptan,6,high
A,2024-03-03,NA,,,NA,
A,2024-03-04,0,,ibuprofen,8,medium
"""


def test_a_diary_table_day_by_day(tmp_path) -> None:
    """Headache days become attacks and kept days, a missing marker leaves the day unknown
    (never an invented attack-free day), codes and severity are read, a dose without
    headache is said, not silently dropped."""
    mapping = _write(tmp_path, MAPPING, "m.toml")
    c = import_diary([_write(tmp_path, GOOD)], mapping)
    obs = c.observations.set_index(["variable", "time"])["value"]
    kept = obs.loc["diary_entry"]
    assert list(kept.index.day) == [1, 2, 4]  # day 3 is unknown, not attack-free
    assert obs.loc[("stress", pd.Timestamp("2024-03-02"))] == 8
    assert obs.loc[("sleep_duration", pd.Timestamp("2024-03-01"))] == 7.5
    a = c.attacks.iloc[0]
    assert len(c.attacks) == 1 and a["onset"] == pd.Timestamp("2024-03-02")
    assert a["peak_severity"] == 2 and a["acute_medication"] == "sumatriptan"
    assert any("1 acute doses on days without headache" in n and "row 4" in n
               for n in c.notices)
    panel = build_panel(c)
    assert np.isnan(panel["headache_day"].values[0, 2])
    assert list(panel["headache_day"].values[0, [0, 1, 3]]) == [0, 1, 0]


@pytest.mark.parametrize(("table", "expected"), [
    (GOOD.replace("A,2024-03-02,1,", "A,2024-03-02,yes,"),
     "diary.csv, row 2 (line 3), column 'headache': headache cell is neither"),
    (GOOD.replace("2024-03-02", "2024-13-02"),
     "diary.csv, row 2 (line 3), column 'date': not a date"),
    (GOOD.replace(",6,high", ",26,high"),  # sleep beyond the registry's 24 h
     "diary.csv, row 2 (line 3), column 'sleep'"),
    (GOOD.replace(",6,high", ",6,very high"),
     "diary.csv, row 2 (line 3), column 'stress': not one of the codes"),
    (GOOD.replace(",7.5,low", ",seven,low"),
     "diary.csv, row 1 (line 2), column 'sleep': 'sleep_duration': not a number"),
    (GOOD.replace("headache,", "headach,"), "column 'headache': column is missing (did you"),
    (GOOD + "A,2024-03-04,1,,,8,medium\n", "row 5 (line 6), column 'date': a second row of "
                                          "the same patient and day (first: row 4)"),
    (GOOD.replace("A,2024-03-04", "A,2030-03-04"), "diary.csv, row 4 (line 5)"),
])
def test_a_bad_diary_row_is_named_by_file_row_and_column(tmp_path, table, expected) -> None:
    mapping = _write(tmp_path, MAPPING, "m.toml")
    with pytest.raises(InputDataError) as err:
        import_diary([_write(tmp_path, table)], mapping)
    assert expected in str(err.value), str(err.value)


@pytest.mark.parametrize(("mapping", "expected"), [
    (MAPPING.replace("missing =", "mising ="), "unknown key 'mising' in [table] (did you mean "
                                               "'missing'?)"),
    (MAPPING.replace('"sleep_duration"', '"sleep_duratoin"'),
     "'sleep_duratoin' is not a registry variable (did you mean 'sleep_duration'"),
    (MAPPING.replace('date = "date"', ""), "needs either 'date'"),
    (MAPPING.replace('no = ["0"]', 'no = ["0", "1"]'), "a value is both 'yes' and 'no'"),
    ("[table\n", "not a TOML file"),
])
def test_a_bad_mapping_is_named_by_key(tmp_path, mapping, expected) -> None:
    with pytest.raises(InputDataError) as err:
        import_diary([_write(tmp_path, GOOD)], _write(tmp_path, mapping, "m.toml"))
    assert expected in str(err.value) and "m.toml" in str(err.value), str(err.value)


def test_long_excel_and_parquet_tables(tmp_path) -> None:
    """One row per patient-day-item, and the same diary as Excel and Parquet."""
    wide = pd.read_csv(_write(tmp_path, GOOD), dtype=str, keep_default_na=False)
    want = import_diary([tmp_path / "diary.csv"], _write(tmp_path, MAPPING, "m.toml"))
    long = wide.melt(["pid", "date"], var_name="item", value_name="value")
    extra = pd.DataFrame({"pid": ["A"], "date": ["2024-03-01"], "item": ["mood"],
                          "value": ["ok"]})
    pd.concat([long, extra]).to_csv(tmp_path / "long.csv", index=False)
    long_map = MAPPING.replace('date = "date"', 'date = "date"\nitem = "item"\nvalue = "value"')
    got = import_diary([tmp_path / "long.csv"], _write(tmp_path, long_map, "l.toml"))
    assert any("1 item(s) not in the mapping, not imported: ['mood']" in n for n in got.notices)
    wide.to_excel(tmp_path / "diary.xlsx", index=False)
    wide.to_parquet(tmp_path / "diary.parquet")
    for other in (got, import_diary([tmp_path / "diary.xlsx"], tmp_path / "m.toml"),
                  import_diary([tmp_path / "diary.parquet"], tmp_path / "m.toml")):
        for table in ("observations", "attacks", "patients"):
            a = getattr(want, table).sort_values(list(getattr(want, table).columns[:2]))
            b = getattr(other, table).sort_values(list(getattr(other, table).columns[:2]))
            pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_an_import_never_clobbers_and_a_failed_one_leaves_the_folder(tmp_path) -> None:
    mapping = _write(tmp_path, MAPPING, "m.toml")
    out = tmp_path / "cohort"
    args = ["import", "diary", str(_write(tmp_path, GOOD)), "--mapping", str(mapping),
            "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "--force" in res.output
    bad = _write(tmp_path, GOOD.replace("2024-03-02", "2024-03-32"), "bad.csv")
    res = runner.invoke(app, [*args[:2], str(bad), *args[3:], "--force"])
    assert res.exit_code == 2 and "bad.csv, row 2" in res.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _recorded(panel, cohort) -> list[str]:
    """The panel features that are registry variables as recorded (no derived ones)."""
    return [f for f in panel["feature"].values
            if f.split(".", 1)[0] in ("trigger", "physiological", "environmental")
            and f.split(".", 1)[1] in cohort.registry]


def _same_days(back, panel, features: list[str]) -> None:
    """The same diary days, headache days and daily values (a round trip's promise)."""
    n = min(back.sizes["day"], panel.sizes["day"])
    for var in ("in_diary", "headache_day"):
        np.testing.assert_array_equal(back[var].values[:, :n], panel[var].values[:, :n])
    np.testing.assert_allclose(back["value"].sel(feature=features).values[:, :n],
                               panel["value"].sel(feature=features).values[:, :n],
                               rtol=1e-12, equal_nan=True)


def test_the_committed_cohort_round_trips_through_a_diary_table(tmp_path) -> None:
    """The committed cohort written as a daily diary table (its daily values by the registry's
    aggregation, headache days, unknown days blank) and imported back: the same kept days,
    headache days and daily values."""
    cohort = load_cohort(COMMITTED)
    panel = build_panel(cohort)
    features = _recorded(panel, cohort)
    rows = []
    for pid in panel["patient"].values:
        p = panel.sel(patient=pid)
        days = np.flatnonzero(p["in_diary"].values)
        head = p["headache_day"].values[days]
        table = pd.DataFrame({"pid": pid, "date": pd.DatetimeIndex(p["date"].values[days])
                              .strftime("%Y-%m-%d"),
                              "headache": np.where(np.isnan(head), "",
                                                   np.where(head > 0, "y", "n"))})
        for f in features:
            v = p["value"].sel(feature=f).values[days]
            table[f] = [repr(float(x)) if x == x else "" for x in v]
        rows.append(table)
    pd.concat(rows).to_csv(tmp_path / "diary.csv", index=False)
    lines = ["headache = { column = \"headache\", yes = [\"y\"], no = [\"n\"] }",
             "[table]", 'patient = "pid"', 'date = "date"', "[variables]"]
    lines += [f'"{f}" = {{ name = "{f.split(".", 1)[1]}" }}' for f in features]
    (tmp_path / "m.toml").write_text("\n".join(lines) + "\n")
    back = build_panel(import_diary([tmp_path / "diary.csv"], tmp_path / "m.toml"))
    assert list(back["patient"].values) == list(panel["patient"].values)
    _same_days(back, panel, features)


# ---------------------------------------------------------------- REDCap
REDCAP = ROOT / "tests" / "data" / "public" / "redcapr"


def test_published_redcap_exports_go_in_with_their_dictionary(tmp_path) -> None:
    """REDCapR's test projects (nobody here wrote them): a repeating instrument's instances are
    the days, the dictionary's choices give the patients' sex, the declared variables their
    values; a project whose instrument holds three readings on one day is refused at those
    rows."""
    project = REDCAP / "multilevel-model-1"
    out = tmp_path / "ml"
    res = runner.invoke(app, ["import", "redcap", str(project / "data.csv"), "--dictionary",
                              str(project / "dictionary.csv"), "--mapping",
                              str(project / "mapping.toml"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    raw = pd.read_csv(project / "data.csv", dtype=str)
    visits = raw[raw["redcap_repeat_instrument"] == "appointment"]
    c = load_cohort(out)
    assert len(c.patient_ids) == raw["patient_id"].nunique() == 20
    sexes = raw.dropna(subset=["gender_id"]).set_index("patient_id")["gender_id"]
    labels = {"1": "male", "2": "female", "255": "unknown"}
    assert c.patients.set_index("patient_id")["sex"].to_dict() == {
        pid: labels[code] for pid, code in sexes.items()}
    # no headache field: every visit day is in the diary, none is counted attack-free
    entry = c.observations[c.observations["variable"] == "diary_entry"]
    assert len(entry) == len(visits) and (entry["value"] == 0).all()
    assert np.isnan(build_panel(c)["headache_day"].values).all()
    phys = c.observations[c.observations["variable"] == "physical_item_1"]
    want = visits.assign(time=pd.to_datetime(visits["date_at_visit"]),
                         value=visits["phys_1"].astype(float))
    got = phys.merge(want, on=["patient_id", "time"], suffixes=("", "_raw"))
    assert len(got) == len(visits) and (got["value"] == got["value_raw"]).all()
    project = REDCAP / "repeating-instruments"
    res = runner.invoke(app, ["import", "redcap", str(project / "data.csv"), "--dictionary",
                              str(project / "dictionary.csv"), "--mapping",
                              str(project / "mapping.toml"), "--out", str(tmp_path / "bp")])
    assert res.exit_code == 2
    assert "data.csv, row 3 (line 4), column 'date_bp': a second row of the same patient " \
           "and day (first: row 2)" in res.output


DICTIONARY = '''"Variable / Field Name","Form Name","Section Header","Field Type","Field Label",\
"Choices, Calculations, OR Slider Labels","Field Note",\
"Text Validation Type OR Show Slider Number","Text Validation Min","Text Validation Max"
record_id,enrolment,,text,"Record ID",,,,,
sex,enrolment,,radio,Sex,"1, Female | 2, Male",,,,
diary_date,daily_diary,,text,Date,,,date_ymd,,
headache,daily_diary,,yesno,"Headache today?",,,,,
severity,daily_diary,,radio,Severity,"1, Mild | 2, Moderate | 3, Severe",,,,
'''


def test_the_committed_cohort_round_trips_through_a_redcap_export(tmp_path) -> None:
    """The committed cohort as a REDCap project (a repeating daily-diary instrument, a yesno
    headache field, the registry variables as validated number fields) and back: the same
    kept days, headache days and daily values."""
    cohort = load_cohort(COMMITTED)
    panel = build_panel(cohort)
    features = _recorded(panel, cohort)
    names = {f: f.split(".", 1)[1] for f in features}
    dictionary = DICTIONARY + "".join(
        f'{n},daily_diary,,text,{n},,,number,{cohort.registry[n].min:g},'
        f'{cohort.registry[n].max:g}\n' for n in names.values())
    rows = []
    for pid in panel["patient"].values:
        p = panel.sel(patient=pid)
        rows.append({"record_id": pid, "redcap_repeat_instrument": "",
                     "redcap_repeat_instance": "", "sex": "1"})
        for k, d in enumerate(np.flatnonzero(p["in_diary"].values), start=1):
            head = p["headache_day"].values[d]
            row = {"record_id": pid, "redcap_repeat_instrument": "daily_diary",
                   "redcap_repeat_instance": str(k),
                   "diary_date": pd.Timestamp(p["date"].values[d]).strftime("%Y-%m-%d"),
                   "headache": "" if head != head else str(int(head))}
            for f, n in names.items():
                v = p["value"].sel(feature=f).values[d]
                row[n] = repr(float(v)) if v == v else ""
            rows.append(row)
    pd.DataFrame(rows).fillna("").to_csv(tmp_path / "export.csv", index=False)
    (tmp_path / "dictionary.csv").write_text(dictionary)
    (tmp_path / "m.toml").write_text(
        '[redcap]\ninstrument = "daily_diary"\n[table]\ndate = "diary_date"\n'
        '[headache]\ncolumn = "headache"\n[patients]\nsex = "sex"\n[variables]\n'
        + "".join(f'{n} = {{ name = "{n}" }}\n' for n in names.values()))
    res = runner.invoke(app, ["import", "redcap", str(tmp_path / "export.csv"),
                              "--dictionary", str(tmp_path / "dictionary.csv"), "--mapping",
                              str(tmp_path / "m.toml"), "--out", str(tmp_path / "back")])
    assert res.exit_code == 0, res.output
    back_cohort = load_cohort(tmp_path / "back")
    assert set(back_cohort.patients["sex"]) == {"Female"}
    back = build_panel(back_cohort)
    _same_days(back, panel, features)


@pytest.mark.parametrize(("change", "expected"), [
    (("2024-03-02,1,3", "2024-03-02,1,4"), "export.csv, row 3 (line 4), column 'severity': "
                                          "not one of the codes of severity"),
    (("2024-03-02,1,3", "2024-03-02,2,3"), "export.csv, row 3 (line 4), column 'headache': "
                                          "headache cell is neither"),
    (("P1,,,1,,,", "P1,,,1,,1,"), "export.csv, row 1 (line 2), column 'headache': a diary "
                                  "field filled outside the diary instrument"),
    (('column = "headache"', 'column = "headach"'), "no field 'headach' in the data "
                                                    "dictionary (did you mean 'headache'?)"),
    (('instrument = "daily_diary"', 'instrument = "daily"'), "no instrument 'daily' in the "
                                                             "data dictionary"),
])
def test_a_bad_redcap_record_is_named(tmp_path, change, expected) -> None:
    export = ("record_id,redcap_repeat_instrument,redcap_repeat_instance,sex,diary_date,"
              "headache,severity\nP1,,,1,,,\nP1,daily_diary,1,,2024-03-01,0,\n"
              "P1,daily_diary,2,,2024-03-02,1,3\n")
    mapping = ('[redcap]\ninstrument = "daily_diary"\n[table]\ndate = "diary_date"\n'
               '[headache]\ncolumn = "headache"\nseverity = "severity"\n')
    old, new = change
    export, mapping = export.replace(old, new), mapping.replace(old, new)
    (tmp_path / "export.csv").write_text(export)
    (tmp_path / "d.csv").write_text(DICTIONARY)
    (tmp_path / "m.toml").write_text(mapping)
    from migraine_bayes.adapters.redcap import import_redcap

    with pytest.raises(InputDataError) as err:
        import_redcap([tmp_path / "export.csv"], tmp_path / "d.csv", tmp_path / "m.toml")
    assert expected in str(err.value), str(err.value)


def test_a_longer_export_appends_only_its_new_days(tmp_path) -> None:
    """Incremental import: the same export twice changes nothing (the files are not even
    rewritten); a longer one adds its new days; one that changes an imported day is refused
    and the cohort left as it was."""
    mapping = _write(tmp_path, MAPPING, "m.toml")
    out = tmp_path / "cohort"
    short = _write(tmp_path, GOOD, "short.csv")
    args = ["import", "diary", "--mapping", str(mapping), "--out", str(out), "--append"]
    assert runner.invoke(app, [*args, str(short)]).exit_code == 0
    stamp = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    res = runner.invoke(app, [*args, str(short)])
    assert res.exit_code == 0 and "nothing new" in res.output and "unchanged" in res.output
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamp
    longer = _write(tmp_path, GOOD + "A,2024-03-05,1,3,sumatriptan,5,high\n"
                    "B,2024-03-05,0,,none,7,low\n", "long.csv")
    res = runner.invoke(app, [*args, str(longer)])
    assert res.exit_code == 0 and "appended 6 observations, 1 attacks" in res.output
    c = load_cohort(out)
    assert len(c.attacks) == 2 and c.patient_ids == ["A", "B"]
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    changed = _write(tmp_path, GOOD.replace(",7.5,low", ",7,low") + "A,2024-03-06,0,,,,\n",
                     "changed.csv")
    res = runner.invoke(app, [*args, str(changed)])
    assert res.exit_code == 2 and "changes days already imported" in res.output
    assert "patient 'A', 2024-03-01" in res.output and "--force" in res.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# ---------------------------------------------------------------- FHIR out
def test_forecasts_go_out_as_valid_fhir_risk_assessments(committed_twins, tmp_path) -> None:
    """`forecast --fhir`: a searchset Bundle a FHIR model library (fhir.resources) accepts,
    one RiskAssessment per forecast row with its probability, interval, day, factors by their
    human names and the twin's version; the same forecast keeps its id."""
    from fhir.resources.R4B.bundle import Bundle

    twin = committed_twins["syn125-001"]
    twin.save(tmp_path / "twin")
    out = tmp_path / "f.json"
    res = runner.invoke(app, ["forecast", str(tmp_path / "twin"), "--horizon", "3", "--fhir",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    bundle = Bundle.model_validate(data)
    assert bundle.type == "searchset" and bundle.total == 3
    csv = tmp_path / "f.csv"
    assert runner.invoke(app, ["forecast", str(tmp_path / "twin"), "--horizon", "3", "--out",
                               str(csv)]).exit_code == 0
    table = pd.read_csv(csv)
    for entry, (_, row) in zip(data["entry"], table.iterrows(), strict=True):
        risk = entry["resource"]
        p = risk["prediction"][0]
        assert p["probabilityDecimal"] == pytest.approx(row["p_attack"], abs=1e-6)
        band = p["extension"][0]["valueRange"]
        assert band["low"]["value"] == pytest.approx(row["p_low"], abs=1e-6)
        assert band["high"]["value"] == pytest.approx(row["p_high"], abs=1e-6)
        assert p["whenPeriod"]["start"] == str(row["date"])[:10]
        assert risk["occurrenceDateTime"] == str(row["issued_at"])[:10]
        assert risk["meta"]["source"].startswith("urn:migraine-bayes:twin:twin:v")
        assert all("." not in b["display"].split(":")[0] for b in risk["basis"])  # human names
    assert runner.invoke(app, ["forecast", str(tmp_path / "twin"), "--horizon", "3", "--fhir",
                               "--out", str(out), "--force"]).exit_code == 0
    again = json.loads(out.read_text())
    assert [e["resource"]["id"] for e in again["entry"]] == [
        e["resource"]["id"] for e in data["entry"]]


@pytest.mark.slow  # make validate: ~10 minutes on 2 cores
def test_the_published_headache_log_backtests_end_to_end(tmp_path) -> None:
    """The Kostecki-Dillon logs, imported with their 15-line mapping, backtest end to end:
    a calendar split at 1991-12-31 (76 patients before it, the rest forecast from the
    population on their first day), headache days, the twin beside the online baselines."""
    from migraine_bayes import api

    out = tmp_path / "kd"
    api.import_data("diary", [KD / "KosteckiDillon.csv"], out, KD / "mapping.toml",
                    dedupe=True)
    result = api.backtest(out, tmp_path / "bt.csv", "1991-12-31", outcome="headache_day",
                          seed=1, refit_every=62, structure="fixed")
    scores = result.scores.set_index("model")
    assert scores.loc["twin", "days"] > 1000
    # headache days persist: the twin must do at least as well as yesterday's outcome
    assert scores.loc["twin", "auc"] >= scores.loc["running_logistic", "auc"] - 0.02, scores
    assert scores.loc["twin", "auc"] > scores.loc["base_rate", "auc"]
    (ROOT / "reports" / "validation").mkdir(parents=True, exist_ok=True)
    result.scores.to_csv(ROOT / "reports" / "validation" / "kostecki_dillon_backtest.csv",
                         index=False)
