"""Issue 35: FHIR in (the specification's own examples, a headache record, hostile resources,
a round trip of the committed cohort) and wearable exports (Apple Health streamed, Fitbit via
Fitabase on a published sample), added to a diary cohort."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from conftest import COMMITTED, ROOT
from typer.testing import CliRunner

from migraine_bayes import api
from migraine_bayes.adapters.apple_health import apple_health_tables
from migraine_bayes.adapters.common import write_cohort
from migraine_bayes.adapters.fhir_in import (
    KIND_SYSTEM,
    MEDICATION_SYSTEM,
    SNOMED,
    VARIABLE_SYSTEM,
    fhir_tables,
)
from migraine_bayes.cli import app
from migraine_bayes.cohort.io import load_cohort
from migraine_bayes.errors import InputDataError
from migraine_bayes.state import build_panel
from migraine_bayes.synthetic.apple_export import HEADER, records, write_apple_health

PUBLIC = ROOT / "tests" / "data" / "public"
SPEC = PUBLIC / "fhir-r4-examples"
FITABASE = PUBLIC / "fitabase"
BERLIN = ZoneInfo("Europe/Berlin")
runner = CliRunner()


# ------------------------------------------------------------------ FHIR in
def test_the_fhir_specifications_own_examples_go_in(tmp_path) -> None:
    """The R4 specification's example resources (nobody here wrote them): the heart rate
    observation and the patient are read (sex, birth year; never the name or address), the
    rest is counted in notices by what it is, and the day of the observation stays unknown —
    a clinical record is no headache diary."""
    c = api.import_data("fhir", sorted(SPEC.glob("*.json")), tmp_path / "c")
    obs = c.observations.set_index("variable")
    assert obs.loc["heart_rate", "value"] == 44.0
    assert obs.loc["diary_entry", "value"] == 0.0  # outcome unknown, not attack-free
    assert c.patients.set_index("patient_id").loc["example", "sex"] == "M"
    assert c.patients.set_index("patient_id").loc["example", "birth_year"] == 1974
    assert "Chalmers" not in (tmp_path / "c" / "patients.csv").read_text()
    said = " ".join(c.notices)
    for what in ("Asthma", "Blood pressure systolic & diastolic", "status on-hold",
                 "Tylenol PM"):
        assert what in said
    assert c.registry["heart_rate"].unit == "bpm"


def _resource(kind: str, pid: str = "p1", **fields) -> dict:
    return {"resourceType": kind, "subject": {"reference": f"Patient/{pid}"}, **fields}


def _headache_record() -> dict:
    """Two weeks of a headache diary with two episodes, a triptan during one and a
    preventive course, as a hospital system's FHIR export would hold them."""
    entries = [{"resourceType": "Patient", "id": "p1", "gender": "female",
                "birthDate": "1988-04-02", "name": [{"family": "Doe"}]}]
    for d in pd.date_range("2024-05-01", "2024-05-14"):
        entries.append(_resource("Observation", status="final", code={"coding": [
            {"system": SNOMED, "code": "25064002", "display": "Headache"}]},
            effectiveDateTime=f"{d.date()}T21:00:00+02:00", valueBoolean=False))
        entries.append(_resource("Observation", status="final", code={"coding": [
            {"system": "http://loinc.org", "code": "93832-4"}]},
            effectiveDateTime=f"{d.date()}T07:00:00+02:00",
            valueQuantity={"value": 420 + d.day, "unit": "min",
                           "system": "http://unitsofmeasure.org", "code": "min"}))
    entries += [
        _resource("Condition", code={"coding": [{"system": SNOMED, "code": "4473006"}]},
                  onsetDateTime="2024-05-03T06:30:00+02:00",
                  abatementDateTime="2024-05-03T18:00:00+02:00",
                  severity={"coding": [{"system": SNOMED, "code": "24484000"}]}),
        _resource("Condition", code={"coding": [{"system": "http://hl7.org/fhir/sid/icd-10",
                                                 "code": "G43.0"}]},
                  onsetDateTime="2024-05-09T14:00:00+02:00"),
        _resource("Condition", code={"coding": [{"system": SNOMED, "code": "37796009"}]},
                  category=[{"coding": [{"code": "problem-list-item"}]}],
                  onsetDateTime="2010-01-01"),
        _resource("MedicationAdministration", status="completed",
                  medicationCodeableConcept={"coding": [
                      {"system": "http://www.whocc.no/atc", "code": "N02CC01",
                       "display": "sumatriptan"}]},
                  effectiveDateTime="2024-05-03T07:15:00+02:00",
                  dosage={"dose": {"value": 50, "unit": "mg", "code": "mg"}}),
        _resource("MedicationAdministration", status="completed",
                  medicationCodeableConcept={"coding": [
                      {"system": "http://www.whocc.no/atc", "code": "M01AE01",
                       "display": "ibuprofen"}]},
                  effectiveDateTime="2024-05-13T10:00:00+02:00"),
        _resource("MedicationStatement", status="active",
                  medicationCodeableConcept={"coding": [
                      {"system": "http://www.whocc.no/atc", "code": "C07AA05",
                       "display": "propranolol"}]},
                  effectivePeriod={"start": "2024-05-06"},
                  dosage=[{"doseAndRate": [{"doseQuantity": {"value": 40, "unit": "mg",
                                                              "code": "mg"}}]}]),
    ]
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} for r in entries]}


def test_a_headache_record_in_fhir(tmp_path) -> None:
    """Diary observations make the kept days, episodes become attacks (severity, aura, end),
    the triptan taken during an attack is its acute medication, the preventive course a
    treatment, sleep minutes become hours; a problem-list migraine is a diagnosis, not an
    attack, and a dose outside any attack is said."""
    path = tmp_path / "record.json"
    path.write_text(json.dumps(_headache_record()))
    c = api.import_data("fhir", [path], tmp_path / "c")
    a = c.attacks.sort_values("onset").reset_index(drop=True)
    assert len(a) == 2
    assert (a.loc[0, "peak_severity"], bool(a.loc[0, "aura"])) == (3, True)
    assert a.loc[0, "end"] == pd.Timestamp("2024-05-03 18:00")
    assert (a.loc[0, "acute_medication"], a.loc[0, "acute_dose_mg"]) == ("sumatriptan", 50)
    assert a.loc[0, "acute_time"] == pd.Timestamp("2024-05-03 07:15")
    t = c.treatments.iloc[0]
    assert (t["kind"], t["name"], t["dose_mg"]) == ("preventive", "propranolol", 40)
    panel = build_panel(c)
    assert int(panel["in_diary"].sum()) == 14
    sleep = c.observations[c.observations["variable"] == "sleep_duration"]
    assert sleep["value"].iloc[0] == pytest.approx((420 + 1) / 60)
    said = " ".join(c.notices)
    assert "problem list" in said and "outside any attack" in said


@pytest.mark.parametrize("change, expected", [
    (lambda b: b["entry"][1]["resource"].update(effectiveDateTime="31/05/2024"),
     "record.json, row 2, column 'effectiveDateTime': not valid FHIR Observation"),
    (lambda b: b["entry"][2]["resource"]["valueQuantity"].update(value="abc"),
     "record.json, row 3, column 'valueQuantity.value': not valid FHIR Observation"),
    (lambda b: b["entry"][2]["resource"]["valueQuantity"].update(code="kg", unit="kg"),
     "row 3, column 'valueQuantity.code': unit of sleep_duration must be one of h, min"),
    (lambda b: b["entry"][1]["resource"].pop("valueBoolean"),
     "row 2, column 'valueBoolean': a headache diary observation needs valueBoolean"),
    (lambda b: b["entry"][-6]["resource"].pop("onsetDateTime"),
     "column 'onsetDateTime': a headache episode needs onsetDateTime"),
    (lambda b: b["entry"][1]["resource"].pop("subject"),
     "row 2, column 'subject': no subject Patient/"),
    (lambda b: b["entry"][2]["resource"].update(valueQuantity={"value": 2000, "unit": "min",
                                                               "code": "min"}),
     "row 3, column 'valueQuantity.value': "),
])
def test_a_bad_fhir_resource_is_named_by_entry_and_field(tmp_path, change, expected) -> None:
    bundle = _headache_record()
    change(bundle)
    path = tmp_path / "record.json"
    path.write_text(json.dumps(bundle))
    with pytest.raises(InputDataError) as err:
        api.import_data("fhir", [path], tmp_path / "c")
    assert expected in str(err.value)
    assert not (tmp_path / "c").exists()


def test_a_fhir_mapping_adds_codes_and_is_checked(tmp_path) -> None:
    """A site's own codes: a stress scale observation and an RxNorm drug, by a TOML mapping;
    NDJSON (bulk export) read line by line; a misspelt key is named with the nearest."""
    lines = [json.dumps({"resourceType": "Patient", "id": "p9"}),
             json.dumps(_resource("Observation", "p9", status="final",
                                  code={"coding": [{"system": "urn:site", "code": "stress"}]},
                                  effectiveDateTime="2024-02-01", valueInteger=7)),
             json.dumps(_resource("Condition", "p9", code={"coding": [
                 {"system": SNOMED, "code": "37796009"}]},
                 onsetDateTime="2024-02-01T08:00:00Z")),
             json.dumps(_resource("MedicationStatement", "p9", status="completed",
                                  medicationCodeableConcept={"coding": [
                                      {"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                       "code": "1148", "display": "rizatriptan"}]},
                                  effectiveDateTime="2024-02-01T09:00:00Z"))]
    data = tmp_path / "bulk.ndjson"
    data.write_text("\n".join(lines) + "\n")
    mapping = tmp_path / "m.toml"
    mapping.write_text('[observations]\n"urn:site|stress" = { variable = "stress" }\n'
                       '[medications]\n"http://www.nlm.nih.gov/research/umls/rxnorm|1148" = '
                       '{ kind = "acute", name = "rizatriptan" }\n')
    c = api.import_data("fhir", [data], tmp_path / "c", mapping=mapping)
    assert c.observations.set_index("variable").loc["stress", "value"] == 7
    assert c.attacks["acute_medication"].iloc[0] == "rizatriptan"
    mapping.write_text('[observation]\n"urn:site|stress" = { variable = "stres" }\n')
    with pytest.raises(InputDataError, match=r"unknown key 'observation'.*did you mean "
                                             r"'observations'"):
        fhir_tables([data], mapping)
    data.write_text(lines[0] + "\n{not json\n")
    with pytest.raises(InputDataError, match=r"bulk.ndjson, row 2: not JSON"):
        fhir_tables([data])


def _bundle(cohort) -> dict:
    """A cohort as a FHIR collection Bundle: observations under the package's variable code
    system (wall times with the Berlin offset of the day), attacks as Conditions, acute doses
    as MedicationAdministrations, courses as MedicationStatements; a complete diary's days
    as diary_entry observations."""
    def stamp(t) -> str:
        wall = pd.Timestamp(t).to_pydatetime()
        minutes = int(wall.replace(tzinfo=BERLIN).utcoffset().total_seconds() // 60)
        return wall.strftime("%Y-%m-%dT%H:%M:%S") + f"+{minutes // 60:02d}:{minutes % 60:02d}"

    out: list[dict] = []
    for p in cohort.patients.itertuples():
        out.append({"resourceType": "Patient", "id": p.patient_id,
                    "gender": {"F": "female", "M": "male"}.get(p.sex, "unknown"),
                    "birthDate": str(int(p.birth_year))})
    units = {v.name: v.unit for v in cohort.registry}
    obs = [cohort.observations]
    keeps = set(cohort.observations.loc[cohort.observations["variable"] == "diary_entry",
                                        "patient_id"])
    for pid, r in cohort.diary_periods().iterrows():
        if pid not in keeps:
            obs.append(pd.DataFrame({"patient_id": pid, "variable": "diary_entry",
                                     "time": pd.date_range(r["start"], r["end"]),
                                     "value": 1.0}))
    for o in pd.concat(obs, ignore_index=True).itertuples():
        out.append(_resource("Observation", o.patient_id, status="final",
                             code={"coding": [{"system": VARIABLE_SYSTEM, "code": o.variable}]},
                             effectiveDateTime=stamp(o.time),
                             valueQuantity={"value": float(o.value),
                                            "unit": units[o.variable]}))
    severity = {1: "255604002", 2: "6736007", 3: "24484000"}
    for a in cohort.attacks.itertuples():
        res = _resource("Condition", a.patient_id, onsetDateTime=stamp(a.onset),
                        code={"coding": [{"system": SNOMED, "code": "4473006" if a.aura is True
                                          else "37796009"}]})
        if not pd.isna(a.end):
            res["abatementDateTime"] = stamp(a.end)
        if not pd.isna(a.peak_severity) and int(a.peak_severity) in severity:
            res["severity"] = {"coding": [{"system": SNOMED,
                                           "code": severity[int(a.peak_severity)]}]}
        out.append(res)
        if isinstance(a.acute_medication, str) and not pd.isna(a.acute_time):
            med = _resource("MedicationAdministration", a.patient_id, status="completed",
                            medicationCodeableConcept={"coding": [
                                {"system": MEDICATION_SYSTEM, "code": a.acute_medication}]},
                            effectiveDateTime=stamp(a.acute_time))
            if not pd.isna(a.acute_dose_mg):
                med["dosage"] = {"dose": {"value": float(a.acute_dose_mg), "code": "mg"}}
            out.append(med)
    for t in cohort.treatments.itertuples():
        period = {"start": stamp(t.start)} | ({} if pd.isna(t.end) else {"end": stamp(t.end)})
        res = _resource("MedicationStatement", t.patient_id, status="active",
                        category={"coding": [{"system": KIND_SYSTEM, "code": t.kind}]},
                        medicationCodeableConcept={"coding": [
                            {"system": MEDICATION_SYSTEM, "code": t.name}]},
                        effectivePeriod=period)
        if not pd.isna(t.dose_mg):
            res["dosage"] = [{"doseAndRate": [{"doseQuantity": {"value": float(t.dose_mg),
                                                                "code": "mg"}}]}]
        out.append(res)
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} for r in out]}


def _subset(cohort, patients: list[str]):
    import dataclasses

    keep = {t: getattr(cohort, t)[getattr(cohort, t)["patient_id"].isin(patients)]
            .reset_index(drop=True) for t in ("observations", "attacks", "treatments",
                                               "patients")}
    return dataclasses.replace(cohort, **keep)


def _same_panel(a, b) -> None:
    """The same kept days, headache days and every daily feature (the model's input)."""
    assert a.sizes == b.sizes
    for var in ("in_diary", "headache_day", "onset"):
        np.testing.assert_array_equal(a[var].values, b[var].values)
    np.testing.assert_allclose(a["value"].values, b["value"].values, rtol=1e-12,
                               equal_nan=True)


ROUND_TRIP = ["syn125-001", "syn125-003"]  # a complete diary; an acute course


def test_the_committed_cohort_round_trips_through_fhir(tmp_path) -> None:
    """Two patients of the committed cohort (a complete diary with hourly weather, an acute
    course) written as a FHIR Bundle and imported back: the same panel — kept days, headache
    days, onsets, every daily feature, the acute-medication counts included. (All 12 patients,
    wristbands too: `test_a_round_tripped_cohort_gives_the_same_forecasts`.)"""
    cohort = _subset(load_cohort(COMMITTED), ROUND_TRIP)
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(_bundle(cohort)))
    back = api.import_data("fhir", [path], tmp_path / "back")
    _same_panel(build_panel(cohort), build_panel(back))
    assert set(back.treatments["name"]) == set(cohort.treatments["name"])


# ------------------------------------------------------------------ Fitbit (Fitabase)
DIARY_MAPPING = ('[table]\npatient = "pid"\ndate = "date"\n'
                 '[headache]\ncolumn = "headache"\nyes = ["y"]\nno = ["n"]\n')
FITBIT_IDS = "1503960366=P1,2026352035=P2,4388161847=P3,8378563200=P4"


def _diary(tmp_path: Path, ids: list[str], first: str, last: str, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    days = pd.date_range(first, last)
    table = pd.concat([pd.DataFrame({"pid": pid, "date": days.strftime("%Y-%m-%d"),
                                     "headache": np.where(rng.random(len(days)) < 0.15,
                                                          "y", "n")}) for pid in ids])
    (tmp_path / "diary.csv").write_text(table.to_csv(index=False))
    (tmp_path / "m.toml").write_text(DIARY_MAPPING)
    out = tmp_path / "study"
    res = runner.invoke(app, ["import", "diary", str(tmp_path / "diary.csv"), "--mapping",
                              str(tmp_path / "m.toml"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_a_published_fitbit_export_goes_into_a_diary_study(tmp_path) -> None:
    """The public Fitabase files (Furberg et al. 2016): their two duplicated sleep rows are
    refused by file, row and column, then dropped with --dedupe and counted; steps and sleep
    arrive as the daily values Fitbit wrote; the same export again changes nothing."""
    study = _diary(tmp_path, ["P1", "P2", "P3", "P4"], "2016-04-12", "2016-05-12")
    files = [str(FITABASE / "dailyActivity_merged.csv"), str(FITABASE / "sleepDay_merged.csv")]
    args = ["import", "fitbit", *files, "--out", str(study), "--patients", FITBIT_IDS]
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert ("sleepDay_merged.csv, row 72 (line 73), column 'TotalMinutesAsleep': exact "
            "duplicate of row 71") in res.output
    assert ", row 92 (line 93)" in res.output and "Traceback" not in res.output
    before = (study / "observations.csv").read_text()
    res = runner.invoke(app, [*args, "--dedupe"])
    assert res.exit_code == 0, res.output
    assert "dropped 2 exact duplicate rows" in res.output
    c = load_cohort(study)
    obs = c.observations.set_index(["patient_id", "variable", "time"])["value"]
    assert obs["P1", "steps", pd.Timestamp("2016-04-12")] == 13162
    assert obs["P1", "sleep_duration", pd.Timestamp("2016-04-12")] == pytest.approx(327 / 60)
    assert c.observations.query("variable == 'steps'")["source"].eq("Fitbit (Fitabase)").all()
    # 5/12/2016: 0 steps over 1440 sedentary minutes, the tracker unworn — no value, not 0
    assert ("P1", "steps", pd.Timestamp("2016-05-12")) not in obs.index
    assert "1 day(s) with 0 steps and 1440 sedentary minutes" in res.output
    again = runner.invoke(app, [*args, "--dedupe"])
    assert again.exit_code == 0 and "nothing new" in again.output
    assert (study / "observations.csv").read_text() != before


def test_a_wearable_needs_its_patients_diary_and_never_rewrites_in_silence(tmp_path) -> None:
    """A wearable alone would make every worn day an attack-free diary day: refused without
    a diary cohort, and for a patient the cohort has no diary of; an export that changes an
    imported value is refused unless --force; a bad Fitabase cell is named."""
    files = [str(FITABASE / "dailyActivity_merged.csv")]
    res = runner.invoke(app, ["import", "fitbit", *files, "--out", str(tmp_path / "none"),
                              "--patients", "1503960366=P1"])
    assert res.exit_code == 2 and "import the diary first" in res.output
    study = _diary(tmp_path, ["P1"], "2016-04-12", "2016-05-12")
    res = runner.invoke(app, ["import", "fitbit", *files, "--out", str(study), "--patients",
                              "1503960366=P1,2026352035=P9"])
    assert res.exit_code == 2 and "patient 'P9' has no diary" in res.output
    assert runner.invoke(app, ["import", "fitbit", *files, "--out", str(study), "--patients",
                               "1503960366=P1"]).exit_code == 0
    changed = tmp_path / "dailyActivity_merged.csv"
    text = (FITABASE / "dailyActivity_merged.csv").read_text()
    changed.write_text(text.replace("1503960366,4/12/2016,13162", "1503960366,4/12/2016,13163"))
    res = runner.invoke(app, ["import", "fitbit", str(changed), "--out", str(study),
                              "--patients", "1503960366=P1"])
    assert res.exit_code == 2 and "changes a value already in" in res.output
    assert "row 1 (line 2), column 'TotalSteps'" in res.output
    res = runner.invoke(app, ["import", "fitbit", str(changed), "--out", str(study),
                              "--patients", "1503960366=P1", "--force"])
    assert res.exit_code == 0 and "1 replaced" in res.output
    changed.write_text(text.replace("1503960366,4/13/2016,10735", "1503960366,13/4/2016,10735"))
    res = runner.invoke(app, ["import", "fitbit", str(changed), "--out", str(study),
                              "--patients", "1503960366=P1"])
    assert res.exit_code == 2
    assert "dailyActivity_merged.csv, row 2 (line 3), column 'ActivityDate': not a Fitabase " \
           "date" in res.output


def test_many_bad_fitabase_cells_are_listed_then_counted_once(tmp_path) -> None:
    """60 unreadable dates: the first 50 named by row, the other 10 counted (not 60 again)."""
    rows = ["Id,ActivityDate,TotalSteps"] + [f"1,13/{i % 28 + 1}/2016,100" for i in range(60)]
    path = tmp_path / "dailyActivity_merged.csv"
    path.write_text("\n".join(rows) + "\n")
    from migraine_bayes.adapters.fitbit import fitbit_tables

    with pytest.raises(InputDataError) as err:
        fitbit_tables([path])
    text = str(err.value)
    assert text.count("column 'ActivityDate': not a Fitabase date") == 51  # 50 + the summary
    assert "10 more rows (rows 51…60)" in text


# ------------------------------------------------------------------ Apple Health
def _export(tmp_path: Path, body: str, name: str = "export.xml") -> Path:
    path = tmp_path / name
    path.write_text(HEADER.replace("{export}", "2025-04-02 09:00:00 +0200") + body
                    + "</HealthData>\n")
    return path


def _rec(kind: str, start: str, end: str | None = None, value: str = "1",
         source: str = "Watch", unit: str | None = None) -> str:
    units = {"StepCount": "count", "RestingHeartRate": "count/min", "HeartRate": "count/min",
             "HeartRateVariabilitySDNN": "ms"}
    full = (f"HKQuantityTypeIdentifier{kind}" if kind in units
            else f"HKCategoryTypeIdentifier{kind}")
    unit = unit or units.get(kind)
    unit_attr = f' unit="{unit}"' if unit else ""
    return (f' <Record type="{full}" sourceName="{source}"{unit_attr} startDate="{start}" '
            f'endDate="{end or start}" value="{value}"/>\n')


def test_apple_health_daily_rules_across_sources_time_zones_and_daylight_saving() -> None:
    """Steps: iPhone and Watch count the same steps — the day takes the larger source, never
    the sum; sleep: the night over the spring change (23:00 +01:00 to 07:00 +02:00) is 7 h,
    overlapping segments count once, 'in bed' and 'awake' do not count; HRV only at night;
    a record written in India's offset is on its own local day; what no rule reads is counted."""
    asleep = "HKCategoryValueSleepAnalysisAsleepCore"
    body = "".join([
        _rec("StepCount", "2025-03-29 10:00:00 +0100", value="4000", source="iPhone"),
        _rec("StepCount", "2025-03-29 10:00:00 +0100", value="3000"),
        _rec("StepCount", "2025-03-29 18:00:00 +0100", value="2500"),
        _rec("StepCount", "2025-03-28 18:00:00 +0100", value="900",
             source="Jane Doe\u2019s Apple Watch"),
        _rec("SleepAnalysis", "2025-03-29 23:00:00 +0100", "2025-03-30 07:00:00 +0200", asleep),
        _rec("SleepAnalysis", "2025-03-30 05:00:00 +0200", "2025-03-30 06:00:00 +0200",
             "HKCategoryValueSleepAnalysisAsleepREM"),
        _rec("SleepAnalysis", "2025-03-29 22:30:00 +0100", "2025-03-30 07:30:00 +0200",
             "HKCategoryValueSleepAnalysisInBed"),
        _rec("HeartRateVariabilitySDNN", "2025-03-30 03:00:00 +0200", value="40"),
        _rec("HeartRateVariabilitySDNN", "2025-03-30 04:00:00 +0200", value="50"),
        _rec("HeartRateVariabilitySDNN", "2025-03-30 15:00:00 +0200", value="20"),
        _rec("RestingHeartRate", "2025-03-31 00:30:00 +0530", value="58"),
        _rec("BodyMass", "2025-03-30 08:00:00 +0200", value="70", unit="kg"),
    ])
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        t = apple_health_tables([_export(Path(folder), body)], ["P1"])
    obs = t.frames["observations"].set_index(["variable", "time"])["value"]
    assert obs["steps", "2025-03-29T00:00:00"] == 5500  # Watch 3000 + 2500 beats iPhone 4000
    assert obs["sleep_duration", "2025-03-30T00:00:00"] == pytest.approx(7.0)
    assert obs["hrv_sdnn", "2025-03-30T00:00:00"] == pytest.approx(45.0)
    assert obs["resting_hr", "2025-03-31T00:00:00"] == 58  # the 31st in India, the 30th in UTC
    said = " ".join(t.notices)
    assert "BodyMass: 1" in said and "several sources" in said
    assert set(t.frames["observations"]["source"]) == {"Apple Health: Watch",
                                                       "Apple Health: Apple Watch"}  # no name
    assert t.origins["observations"][0].file == "export.xml"


@pytest.mark.parametrize("body, expected", [
    (_rec("StepCount", "2025-03-29 10:00 +0100", value="10"),
     "export.xml, line 19, column 'startDate': not a date of the form"),
    (_rec("RestingHeartRate", "2025-03-29 10:00:00 +0100", value="fast"),
     "line 19, column 'value': not a number"),
    (_rec("HeartRate", "2025-03-29 10:00:00 +0100", value="1", unit="count/s"),
     "line 19, column 'unit': unit of heart_rate must be count/min"),
    (_rec("RestingHeartRate", "2025-03-29 10:00:00 +0100", value="900"),
     "export.xml, line 19, column 'value': "),
    (_rec("SleepAnalysis", "2025-03-29 23:00:00 +0100", "2025-03-29 22:00:00 +0100",
          "HKCategoryValueSleepAnalysisAsleepCore"),
     "line 19, column 'endDate': the segment ends before it starts"),
    (' <Record type="x" <broken\n', "line 19: not a readable Apple Health export"),
])
def test_a_bad_apple_health_record_is_named_by_line_and_field(tmp_path, body, expected) -> None:
    study = _diary(tmp_path, ["P1"], "2025-03-20", "2025-04-01")
    res = runner.invoke(app, ["import", "apple-health", str(_export(tmp_path, body)),
                              "--patients", "P1", "--out", str(study)])
    assert res.exit_code == 2, res.output
    assert expected in res.output and "Traceback" not in res.output


def test_a_hostile_xml_cannot_expand_or_fetch(tmp_path) -> None:
    """A billion-laughs entity or an external entity is refused before anything expands."""
    laughs = ('<?xml version="1.0"?>\n<!DOCTYPE HealthData [\n<!ENTITY a "ha">\n'
              '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">\n]>\n<HealthData>&b;</HealthData>\n')
    external = ('<?xml version="1.0"?>\n<!DOCTYPE HealthData [\n'
                '<!ENTITY x SYSTEM "file:///etc/passwd">\n]>\n<HealthData>&x;</HealthData>\n')
    for i, text in enumerate((laughs, external)):
        path = tmp_path / f"e{i}.xml"
        path.write_text(text)
        with pytest.raises(InputDataError, match=r"entity declaration .* refused"):
            apple_health_tables([path], ["P1"])
    path = tmp_path / "other.xml"
    path.write_text('<?xml version="1.0"?>\n<html><body/></html>\n')
    with pytest.raises(InputDataError, match="not <HealthData>"):
        apple_health_tables([path], ["P1"])


def test_the_committed_wristband_round_trips_through_apple_health(tmp_path) -> None:
    """A wristband patient of the committed cohort: the hourly resting HR and steps and
    the nightly sleep written as an Apple Health export (Berlin time, both daylight-saving
    changes inside), the first half imported, then the whole export, zipped as the phone
    sends it: only the new days are added, and the panel is the original's."""
    ids = ["syn125-005"]
    cohort = _subset(load_cohort(COMMITTED), ids)
    moved = cohort.observations["variable"].isin(["resting_hr", "steps", "sleep_duration"])
    import dataclasses

    study = tmp_path / "study"
    write_cohort(dataclasses.replace(cohort, observations=cohort.observations[~moved]
                                     .reset_index(drop=True)), study)
    halves, wholes = [], []
    for pid in ids:
        rows = cohort.observations[moved & (cohort.observations["patient_id"] == pid)]
        half = rows[rows["time"] < pd.Timestamp("2025-07-01")]
        halves.append(write_apple_health(tmp_path / f"{pid}-half.xml",
                                         records(half, BERLIN, "Apple Watch")))
        whole = write_apple_health(tmp_path / pid / "apple_health_export" / "export.xml",
                                   records(rows, BERLIN, "Apple Watch"))
        with zipfile.ZipFile(tmp_path / f"{pid}.zip", "w") as z:
            z.write(whole, "apple_health_export/export.xml")
        wholes.append(tmp_path / f"{pid}.zip")
    first = api.import_data("apple-health", halves, study, patients=ids)
    assert any("added" in n for n in first.notices)
    back = api.import_data("apple-health", wholes, study, patients=ids)
    assert any(n.startswith("0 daily") is False and "already in" in n for n in back.notices)
    _same_panel(build_panel(cohort), build_panel(load_cohort(study)))
    again = api.import_data("apple-health", wholes, study, patients=ids)
    assert any(n.startswith("nothing new") for n in again.notices)
    shutil.rmtree(tmp_path / ids[0])


@pytest.mark.slow  # the whole cohort through FHIR and four per-patient fits: ~2 minutes
def test_a_round_tripped_cohort_gives_the_same_forecasts(tmp_path) -> None:
    """The whole committed cohort (12 patients, 161,000 resources) through a FHIR Bundle: the
    same panel; and a patient with a complete diary and one with a wristband, fitted from the
    round trip, forecast what they forecast fitted from the original tables (same seed)."""
    from migraine_bayes.twin.core import fit_patients

    cohort = load_cohort(COMMITTED)
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(_bundle(cohort)))
    back = api.import_data("fhir", [path], tmp_path / "back")
    _same_panel(build_panel(cohort), build_panel(back))
    ids = ["syn125-001", "syn125-005"]
    one, two = fit_patients(cohort, ids), fit_patients(back, ids)
    for pid in ids:
        np.testing.assert_allclose(two[pid].forecast(horizon=7)["p_attack"],
                                   one[pid].forecast(horizon=7)["p_attack"], rtol=0, atol=1e-12)
