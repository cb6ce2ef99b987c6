"""The daily panel: aggregation, outcomes and their known days, derived features, exposure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import small_tables

from migraine_bayes.cohort.io import cohort_from_frames, load_cohort
from migraine_bayes.state import build_panel, state_from_panel
from migraine_bayes.state.derived import cycle_day, days_since_attack, sleep_debt


@pytest.fixture
def panel(small_cohort_dir: Path):
    return build_panel(load_cohort(small_cohort_dir))


def test_dims_coords_and_self_description(panel) -> None:
    assert dict(panel.sizes) == {"patient": 2, "day": 10, "feature": 9, "intervention": 1}
    assert list(panel["patient"].values) == ["p1", "p2"]
    assert "trigger.stress" in panel["feature"].values
    assert panel["feature_unit"].sel(feature="environmental.pressure").item() == "hPa"
    assert panel["intervention_kind"].item() == "preventive"
    assert str(panel["date"].sel(patient="p1", day=0).values)[:10] == "2024-03-01"


def test_complete_diary_outcomes(panel) -> None:
    onset = panel["onset"].sel(patient="p1").values
    np.testing.assert_array_equal(np.flatnonzero(onset == 1), [2, 6])
    assert not np.isnan(onset).any()  # no diary_entry rows: every day is known
    hd = panel["headache_day"].sel(patient="p1").values
    np.testing.assert_array_equal(np.flatnonzero(hd == 1), [2, 6, 7])  # 22:00 → 10:00 next day


def test_diary_entry_days_define_known_outcomes() -> None:
    t = small_tables()
    entries = pd.DataFrame([["p1", f"2024-03-{d:02d}T21:00", "diary_entry", "1"]
                            for d in (1, 2, 4, 5)], columns=t["observations"].columns)
    t["observations"] = pd.concat([t["observations"], entries], ignore_index=True)
    panel = build_panel(cohort_from_frames(**t))
    onset = panel["onset"].sel(patient="p1").values
    # known: entry days 0, 1, 3, 4 plus attack days 2 and 6; everything else unknown
    known = np.flatnonzero(~np.isnan(onset))
    np.testing.assert_array_equal(known, [0, 1, 2, 3, 4, 6])
    assert onset[2] == 1 and onset[6] == 1 and onset[0] == 0
    assert "trigger.diary_entry" not in panel["feature"].values


def test_aggregation_rules_follow_the_registry() -> None:
    t = small_tables()
    rows = [["p1", "2024-03-02T10:00", "steps", "100"], ["p1", "2024-03-02T15:00", "steps", "250"],
            ["p1", "2024-03-02T08:00", "resting_hr", "60"],
            ["p1", "2024-03-02T09:00", "resting_hr", "70"],
            ["p1", "2024-03-02T09:00", "yawning", "0"], ["p1", "2024-03-02T19:00", "yawning", "1"]]
    extra = pd.DataFrame(rows, columns=t["observations"].columns)
    t["observations"] = pd.concat([t["observations"], extra], ignore_index=True)
    p = build_panel(cohort_from_frames(**t)).sel(patient="p1", day=1)["value"]
    assert p.sel(feature="physiological.steps").item() == 350  # sum
    assert p.sel(feature="physiological.resting_hr").item() == 65  # mean
    assert p.sel(feature="symptom.yawning").item() == 1  # max


def test_missing_is_never_zero_and_is_imputed_with_sd(panel) -> None:
    t = small_tables()
    obs = t["observations"]
    t["observations"] = obs[~((obs["patient_id"] == "p1") & (obs["variable"] == "stress")
                              & obs["time"].str.startswith("2024-03-05"))]
    p = build_panel(cohort_from_frames(**t)).sel(patient="p1", feature="trigger.stress")
    assert np.isnan(p["value"].sel(day=4).item())
    assert not p["present"].sel(day=4).item()
    assert 4 <= p["imputed"].sel(day=4).item() <= 6
    assert p["imputed_sd"].sel(day=4).item() > 0
    assert p["coverage"].item() == pytest.approx(0.9)


def test_systematically_missing_feature_is_flagged() -> None:
    t = small_tables()
    obs = t["observations"]
    t["observations"] = obs[~((obs["patient_id"] == "p2") & (obs["variable"] == "sleep_duration"))]
    p = build_panel(cohort_from_frames(**t))
    sm = p["systematic_missing"].sel(feature="trigger.sleep_duration")
    assert sm.sel(patient="p2").item() and not sm.sel(patient="p1").item()
    filled = p["imputed"].sel(patient="p2", feature="trigger.sleep_duration").values
    np.testing.assert_allclose(filled, 7.5)  # cohort mean, flagged as such


def test_exposure_ramps_up_from_the_start_day(panel) -> None:
    e = panel["exposure"].sel(patient="p2", intervention="erenumab").values
    assert (e[:3] == 0).all() and 0 < e[3] < e[4] < e[9] < 1
    assert (panel["exposure"].sel(patient="p1").values == 0).all()


def test_derived_features_use_only_the_past() -> None:
    onset = np.array([[0, 1, 0, 0, 1, 0.0]])
    np.testing.assert_array_equal(days_since_attack(onset)[0], [np.nan, np.nan, 1, 2, 3, 1])
    mens = np.array([[0, 1, 1, 0, 0, 0, 1, 1.0]])
    np.testing.assert_array_equal(cycle_day(mens)[0], [np.nan, 1, 2, 3, 4, 5, 1, 2])
    sleep = np.array([[7, 7, 8, 7, 5, 9.0]])
    np.testing.assert_array_equal(sleep_debt(sleep)[0], [np.nan, np.nan, np.nan, 0, 2, 0])


def test_pressure_change_and_letdown_in_panel(panel) -> None:
    p = panel.sel(patient="p1")["value"]
    assert np.isnan(p.sel(feature="derived.pressure_change", day=0).item())
    assert p.sel(feature="derived.pressure_change", day=1).item() == pytest.approx(1.0)
    # stress 4,5,6,4,...: the drop from 6 to 4 on day 3 is a let-down of 2
    assert p.sel(feature="derived.stress_letdown", day=3).item() == 2
    assert p.sel(feature="derived.stress_letdown", day=2).item() == 0


def test_state_from_panel(panel) -> None:
    s = state_from_panel(panel, "p2", 5)
    assert s.trigger["stress"] == 8.0 and s.environmental["pressure"] == 1015.0
    assert 0 < s.treatment["exposure:erenumab"] < 1
    assert str(s.date.date()) == "2024-03-06"


def test_yesterday_unrecorded_marks_the_day_after_an_unknown_outcome() -> None:
    t = small_tables()
    days = pd.date_range("2024-03-01", periods=10, freq="D")
    entries = [("p1", f"{d:%Y-%m-%d}T21:00", "diary_entry", "1") for i, d in enumerate(days)
               if i != 4]
    t["observations"] = pd.concat([t["observations"], pd.DataFrame(
        entries, columns=["patient_id", "time", "variable", "value"])], ignore_index=True)
    panel = build_panel(cohort_from_frames(**t), horizon_days=3)
    flag = panel["value"].sel(patient="p1", feature="derived.yesterday_unrecorded").values
    # day 0: nothing known before the diary; day 5 follows the unrecorded day 4; after the
    # diary end (day 9) only the first future day's yesterday is known
    np.testing.assert_array_equal(flag, [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1])


def test_acute_use_days_count_the_month_before_never_the_day_itself() -> None:
    from migraine_bayes.state.derived import OVERUSE_MIN_HISTORY, acute_use_days

    use = np.zeros((1, 60))
    use[0, [20, 40, 41]] = 1
    known = np.ones((1, 60), dtype=bool)
    out = acute_use_days(use, known)
    assert np.isnan(out[0, :OVERUSE_MIN_HISTORY]).all()  # too little history
    # the dose of day 20 counts from day 21 on (21 known days so far: scaled to 30)
    assert out[0, 20] == 0 and out[0, 21] == pytest.approx(30 / 21)
    assert out[0, 40] == 1 and out[0, 41] == 2  # today's dose is not in today's value
    assert out[0, 50] == 3 and out[0, 51] == 2  # day 20 leaves the window on day 51
    half = known.copy()  # 15 of the 30 days before day 30 known, one dose: 2 per 30 days
    half[0, :15] = False
    assert acute_use_days(use, half)[0, 30] == pytest.approx(2.0)
    half[0, :17] = False  # 13 known: too few
    assert np.isnan(acute_use_days(use, half)[0, 30])


def test_acute_medication_on_attack_rows_becomes_a_panel_feature() -> None:
    t = small_tables()
    c = cohort_from_frames(**t)
    assert "derived.acute_use_days" not in build_panel(c)["feature"].values  # none recorded
    att = t["attacks"].copy()
    att["acute_medication"] = "sumatriptan"
    att["acute_time"] = pd.to_datetime(att["onset"]) + pd.Timedelta(hours=1)
    panel = build_panel(cohort_from_frames(**{**t, "attacks": att}))
    assert "derived.acute_use_days" in panel["feature"].values
    unit = panel["feature_unit"].sel(feature="derived.acute_use_days").item()
    assert unit == "days in 30"
