"""The generator reproduces its own stated targets, measured through files → loader → panel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import COMMITTED

from migraine_bayes.cohort.io import load_cohort
from migraine_bayes.state import build_panel
from migraine_bayes.synthetic.cohort import simulate_cohort


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("big") / "cohort"
    sc = simulate_cohort(60, 365, seed=7)
    sc.write(folder)
    truth = json.loads((folder / "truth.json").read_text())
    return sc, truth, build_panel(load_cohort(folder))


def _by_id(truth: dict) -> dict[str, dict]:
    return {p["patient_id"]: p for p in truth["patients"]}


def test_attack_rate_matches_truth_and_published_range(big) -> None:
    _, truth, panel = big
    lo, hi = truth["targets"]["attacks_per_month_range"]
    rates, observed, expected = [], 0.0, 0.0
    for pid, p in _by_id(truth).items():
        onset = panel["onset"].sel(patient=pid).values
        known = ~np.isnan(onset)
        observed += np.nansum(onset)
        expected += np.asarray(p["p_attack"])[known].sum()
        if not p["interventions"] or all(i["kind"] == "acute" for i in p["interventions"]):
            rates.append(np.nansum(onset) / known.sum() * 30.44)
    assert observed / expected == pytest.approx(1.0, abs=0.06)
    rates = np.array(rates)
    assert np.mean((rates >= lo) & (rates <= hi)) >= 0.9, rates
    assert 3.0 <= np.median(rates) <= 6.0


def test_menstrual_relative_risk(big) -> None:
    _, truth, panel = big
    on, off, p_on, p_off = [], [], [], []
    for pid, p in _by_id(truth).items():
        trig = {t["feature"]: t for t in p["triggers"]}
        if p["sex"] != "F" or not trig["trigger.menstruation"]["sensitive"]:
            continue
        mens = panel["value"].sel(patient=pid, feature="trigger.menstruation").values
        onset = panel["onset"].sel(patient=pid).values
        ptrue = np.asarray(p["p_attack"])
        ok = ~np.isnan(onset) & ~np.isnan(mens)
        on += list(onset[ok & (mens == 1)])
        off += list(onset[ok & (mens == 0)])
        p_on += list(ptrue[ok & (mens == 1)])
        p_off += list(ptrue[ok & (mens == 0)])
    rr = np.mean(on) / np.mean(off)
    rr_true = np.mean(p_on) / np.mean(p_off)
    lo, hi = truth["targets"]["menstrual_relative_risk_range"]
    assert lo <= rr_true <= hi
    assert rr == pytest.approx(rr_true, abs=0.3)


def test_missingness_fractions(big) -> None:
    sc, truth, panel = big
    t = truth["targets"]
    logging = [p["patient_id"] for p in truth["patients"] if not p["complete_diary"]]
    entry = panel["diary_entry"].sel(patient=logging).values
    assert 1 - entry.mean() == pytest.approx(t["expected_diary_missing_fraction"], abs=0.03)
    stress_present = panel["present"].sel(feature="trigger.stress").values
    diary = panel["diary_entry"].values
    assert 1 - stress_present[diary].mean() == pytest.approx(t["item_dropout"], abs=0.01)
    wear = [p["patient_id"] for p in truth["patients"] if p["wearable"]]
    hrv = panel["present"].sel(patient=wear, feature="physiological.hrv_rmssd").values
    assert 1 - hrv.mean() == pytest.approx(t["expected_device_off_fraction"], abs=0.03)
    no_wear = [p["patient_id"] for p in truth["patients"] if not p["wearable"]]
    assert panel["systematic_missing"].sel(patient=no_wear,
                                           feature="physiological.hrv_rmssd").all()
    attacks = sc.cohort.attacks
    assert attacks["prodrome_onset"].notna().mean() == pytest.approx(t["prodrome_fraction"],
                                                                     abs=0.06)


def test_patients_are_heterogeneous(big) -> None:
    _, truth, _ = big
    ors = [t["odds_ratio"] for p in truth["patients"] for t in p["triggers"]
           if t["feature"] == "derived.stress_letdown"]
    assert 0.2 < np.mean(np.isclose(ors, 1.0)) < 0.6  # insensitive patients
    assert max(ors) > 2.0  # strongly sensitive ones
    decoys = [t for p in truth["patients"] for t in p["triggers"]
              if t["feature"] == "trigger.screen_time"]
    assert all(t["odds_ratio"] == 1.0 for t in decoys)


def test_same_seed_same_cohort_and_patients_independent_of_cohort_size() -> None:
    a = simulate_cohort(3, 60, seed=11)
    b = simulate_cohort(3, 60, seed=11)
    c = simulate_cohort(5, 60, seed=11)
    pd.testing.assert_frame_equal(a.cohort.observations, b.cohort.observations)
    assert a.truth == b.truth
    first3 = c.cohort.observations[c.cohort.observations["patient_id"].isin(
        a.cohort.patient_ids)].reset_index(drop=True)
    pd.testing.assert_frame_equal(a.cohort.observations, first3)
    d = simulate_cohort(3, 60, seed=12)
    assert not d.cohort.observations["value"].equals(a.cohort.observations["value"])


def test_drift_option_changes_risk_after_the_drift_day() -> None:
    sc = simulate_cohort(30, 365, seed=3, drift_fraction=1.0, drift_kinds=("baseline",))
    ratios = []
    for p in sc.truth["patients"]:
        day = p["drift"]["day"]
        assert p["drift"]["kind"] == "baseline" and 0.4 * 365 <= day <= 0.7 * 365
        prev = [i for i in p["interventions"] if i["kind"] == "preventive"]
        if not prev:
            pt = np.asarray(p["p_attack"])
            ratios.append(pt[day:].mean() / pt[:day].mean())
    assert np.median(ratios) > 1.5


def test_preventive_responders_have_lower_risk_on_treatment() -> None:
    sc = simulate_cohort(40, 365, seed=5, preventive_fraction=1.0)
    drops = []
    for p in sc.truth["patients"]:
        (prev,) = [i for i in p["interventions"] if i["kind"] == "preventive"]
        start = (pd.Timestamp(prev["start"]) - pd.Timestamp("2025-01-06")).days
        if prev["responder"]:
            pt = np.asarray(p["p_attack"])
            drops.append(pt[start + 42:].mean() / pt[:start].mean())
    assert np.median(drops) < 0.75


def test_committed_cohort_is_what_the_generator_makes(tmp_path: Path) -> None:
    committed = json.loads((COMMITTED / "truth.json").read_text())
    cfg = committed["config"]
    sc = simulate_cohort(cfg["n_patients"], cfg["n_days"], cfg["seed"])
    assert sc.truth["patients"] == committed["patients"], "run `make data` and commit"
    loaded = load_cohort(COMMITTED)
    pd.testing.assert_frame_equal(loaded.attacks, load_cohort(sc.write(tmp_path / "c")).attacks)
    size = sum(f.stat().st_size for f in COMMITTED.iterdir())
    assert size <= 5 * 2**20
