"""Forecast metrics, the rolling-origin backtest, baselines and the oracle."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import COMMITTED, ROOT, TRAIN_UNTIL

from migraine_bayes import api, metrics
from migraine_bayes.cohort.io import load_cohort
from migraine_bayes.evaluation import ex_ante_panel, one_step_errors
from migraine_bayes.evaluation.backtest import BACKTEST_COLUMNS, walk_forward
from migraine_bayes.evaluation.oracles import oracle_probability
from migraine_bayes.state import build_panel


# ---------------------------------------------------------------- metrics
def test_classification_matches_a_hand_count() -> None:
    y = np.array([1, 1, 0, 0, 0, 1, 0, 0])
    p = np.array([0.9, 0.2, 0.6, 0.1, 0.1, 0.7, 0.05, 0.3])
    m = metrics.classification(y, p, 0.5)  # TP 2, FN 1, FP 1, TN 4
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(4 / 5)
    assert m["ppv"] == pytest.approx(2 / 3)
    assert m["npv"] == pytest.approx(4 / 5)
    assert m["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert m["diagnostic_odds_ratio"] == pytest.approx(2 * 4 / (1 * 1))


def test_lead_time_counts_the_alarm_run_ending_on_the_attack() -> None:
    y = np.array([0, 0, 1, 0, 1, 0, 0, 1])
    p = np.array([0.1, 0.6, 0.7, 0.1, 0.2, 0.6, 0.7, 0.8])
    assert metrics.lead_times(y, p, 0.5).tolist() == [2.0, 0.0, 3.0]


def test_calibration_intervals_cover_a_calibrated_forecaster(rng) -> None:
    p = rng.uniform(0.02, 0.5, 20000)
    y = (rng.random(p.size) < p).astype(float)
    c = metrics.calibration_curve(y, p, bins=10, level=0.9)
    covered = (c["low"] <= c["p_mean"]) & (c["p_mean"] <= c["high"])
    assert covered.sum() >= 8  # 90% intervals: 9 of 10 expected
    assert metrics.expected_calibration_error(y, p) < 0.02
    assert metrics.expected_calibration_error(y, np.clip(p * 1.5, 0, 1)) > 0.05


def test_scores_survive_a_backtest_without_attacks() -> None:
    from migraine_bayes.evaluation.scores import score_table

    days = pd.date_range("2025-01-01", periods=30).date
    pred = pd.DataFrame({"patient_id": "p", "date": list(days) * 2,
                         "model": ["twin"] * 30 + ["base_rate"] * 30,
                         "p_attack": np.linspace(0.05, 0.3, 60), "attack": 0.0})
    s = score_table(pred, 0.1, n_boot=50).set_index("model")
    assert np.isnan(s.loc["twin", "auc"]) and np.isnan(s.loc["twin", "auc_low"])
    assert s.loc["twin", "brier"] > 0 and s.loc["twin", "specificity"] < 1


# ---------------------------------------------------------------- ex-ante information
def test_ex_ante_features_use_only_earlier_days() -> None:
    panel = build_panel(load_cohort(COMMITTED), patients=["syn125-002"])
    train = np.array([200])
    before = ex_ante_panel(panel, train)
    changed = panel.copy(deep=True)
    k = list(panel["feature"].values).index("trigger.stress")
    changed["value"].values[0, 250, k] += 5.0  # day 250's stress, as recorded
    after = ex_ante_panel(changed, train)
    stress = before["imputed"].sel(feature="trigger.stress").values[0]
    stress2 = after["imputed"].sel(feature="trigger.stress").values[0]
    np.testing.assert_array_equal(stress[:251], stress2[:251])  # day 250 predicted from 249
    assert stress2[251] != stress[251]  # ... and day 251 from 250
    assert (before["imputed_sd"].sel(feature="trigger.stress").values[0, 201:300] > 0).all()


def test_one_step_state_prediction_beats_the_mean_for_persistent_series() -> None:
    panel = build_panel(load_cohort(COMMITTED))
    errors = one_step_errors(panel, np.full(panel.sizes["patient"], 300)).set_index("feature")
    # weather is persistent: yesterday predicts today far better than the patient's mean
    for f in ("environmental.pressure", "environmental.temperature"):
        assert errors.loc[f, "mae"] < 0.8 * errors.loc[f, "mae_mean_only"], errors.loc[f]
    assert (errors["n"] > 0).all()


def test_oracle_with_symptoms_is_sharper_than_the_hazard_and_calibrated() -> None:
    cohort = load_cohort(COMMITTED)
    truth = json.loads((COMMITTED / "truth.json").read_text())
    panel = build_panel(cohort)
    ys, hazard, oracle = [], [], []
    for i, t in enumerate(truth["patients"]):
        q = panel.isel(patient=i)
        days = np.flatnonzero(~np.isnan(q["onset"].values) & q["in_diary"].values)[1:]
        ys.append(q["onset"].values[days])
        hazard.append(np.asarray(t["p_attack"])[days])
        oracle.append(oracle_probability(t, q, days))
    y, h, o = map(np.concatenate, (ys, hazard, oracle))
    assert metrics.brier(y, o) < metrics.brier(y, h)
    assert metrics.roc_auc(y, o) > metrics.roc_auc(y, h) + 0.05
    assert abs(o.mean() - y.mean()) < 0.01  # calibrated in the large


# ---------------------------------------------------------------- the backtest
def test_backtest_table_follows_the_schema(small_backtest) -> None:
    out = small_backtest[1]
    f = pd.read_csv(out)
    assert list(f.columns)[: len(BACKTEST_COLUMNS)] == BACKTEST_COLUMNS
    dates, issued = pd.to_datetime(f["date"]), pd.to_datetime(f["issued_at"])
    assert ((dates - issued) == pd.Timedelta(days=1)).all()
    assert (dates > pd.Timestamp(TRAIN_UNTIL)).all()
    assert f["attack"].dropna().isin([0, 1]).all()
    assert ((f["p_low"] <= f["p_attack"]) & (f["p_attack"] <= f["p_high"])).all()
    for _, g in f.groupby("patient_id"):
        assert (pd.to_datetime(g["date"]).diff().dropna() == pd.Timedelta(days=1)).all()
    assert f["top_factors"].str.contains(":").all()
    paths = api.backtest_paths(out)
    assert all(p.is_file() for p in paths.values())


def test_backtest_scores_every_model_with_intervals(small_backtest) -> None:
    scores = small_backtest[0].scores.set_index("model")
    assert {"twin", "logistic", "boosting", "base_rate", "oracle", "oracle_filtered",
            "oracle_hazard"} <= set(scores.index)
    for name in ("auc", "brier", "ece"):
        assert (scores[f"{name}_low"] <= scores[name]).all()
        assert (scores[name] <= scores[f"{name}_high"]).all()
    assert scores.loc["twin", "auc"] > scores.loc["base_rate", "auc"]
    tripod = small_backtest[0].validation.set_index("model")  # TRIPOD+AI measures
    for name in ("auprc", "observed_expected", "cal_slope", "brier_skill"):
        assert (tripod[f"{name}_low"] <= tripod[name]).all(), name
        assert (tripod[name] <= tripod[f"{name}_high"]).all(), name
    assert tripod.loc["twin", "brier_skill"] > 0
    assert len(small_backtest[0].decision_curve) > 10
    groups = small_backtest[0].by_subgroup  # TRIPOD+AI: performance by subgroup
    assert {"history", "sex", "wearable"} <= set(groups["subgroup"])
    twin_by_sex = groups[(groups["model"] == "twin") & (groups["subgroup"] == "sex")]
    assert len(twin_by_sex) and twin_by_sex["days"].sum() <= tripod.loc["twin", "days"]


def test_walk_forward_never_sees_the_day_it_forecasts(small_backtest) -> None:
    result, _ = small_backtest
    twin = next(iter(result.twins[0].values()))
    panel = build_panel(load_cohort(COMMITTED), patients=[twin.patients[0]])
    start = int((panel["date"].values[0] <= np.datetime64(TRAIN_UNTIL)).sum())
    altered = panel.copy(deep=True)
    day = start + 20
    altered["onset"].values[0, day:] = 1.0 - np.nan_to_num(altered["onset"].values[0, day:])
    origin = pd.Timestamp(TRAIN_UNTIL)
    for information in ("observed", "ex_ante"):
        ahead = None if information == "observed" else ex_ante_panel(panel, np.array([start]))
        a = walk_forward(twin, panel, ahead, start, start + 40, origin,
                         np.random.default_rng(3))
        b = walk_forward(twin, altered, ahead, start, start + 40, origin,
                         np.random.default_rng(3))
        pa = [r["p_attack"] for r in a]
        pb = [r["p_attack"] for r in b]
        assert pa[:21] == pb[:21]  # up to and including the altered day itself
        assert pa[21:] != pb[21:]  # later forecasts learn from it


@pytest.mark.slow  # ~110 s: out of `make test`; `make validate` and .ci/run run it
def test_the_twin_forecasts_the_committed_cohort_best(tmp_path) -> None:
    """Issue 5's target on the committed cohort (all 12 patients, last 61 days)."""
    result = api.backtest(COMMITTED, tmp_path / "bt.csv", TRAIN_UNTIL, information="observed",
                          seed=0, refit_every=61, structure="fixed")
    s = result.scores.set_index("model")
    twin = s.loc["twin"]
    assert twin["auc"] >= s.loc["oracle", "auc"] - 0.03, s
    assert twin["auc"] >= s.loc["oracle_filtered", "auc"] - 0.02, s  # the diaries' bound
    for baseline in ("logistic", "boosting", "base_rate"):
        assert twin["auc"] > s.loc[baseline, "auc"], s
    # a cohort twin's wearable feature of a patient without a wearable is the population's
    from migraine_bayes.analysis.sensitivity import trigger_sensitivities

    sens = trigger_sensitivities(next(iter(result.twins[0].values()))).set_index(
        ["patient_id", "feature"])
    assert sens.loc[("syn125-001", "physiological.resting_hr@lag1"), "coverage"] == 0
    assert sens.loc[("syn125-001", "physiological.resting_hr@lag1"), "evidence"].startswith(
        "no data")
    assert sens.loc[("syn125-005", "physiological.resting_hr@lag1"), "coverage"] > 0.5
    # issue target 0.03, measured 0.029; 10 equal-count bins of 65 days put even the oracle's
    # ECE at 0.017-0.026 from sampling noise alone, hence the margin
    assert twin["ece"] <= 0.035, s


@pytest.mark.slow
def test_ex_ante_backtest_of_the_committed_cohort() -> None:
    """121 days forecast the evening before; table to reports/validation/.

    Origins every 30 days from 2025-09-06 until the last diary day (2026-01-05): four full
    windows and the last day from a fifth.
    """
    out = ROOT / "reports" / "validation" / "backtest_ex_ante.csv"
    result = api.backtest(COMMITTED, out, "2025-09-06", information="ex_ante", seed=0,
                          structure="fixed")
    s = result.scores.set_index("model")
    assert len(result.forecasts["origin"].unique()) == 5
    assert s.loc["twin", "auc"] > s.loc["base_rate", "auc"] + 0.2, s
    for baseline in ("logistic", "boosting", "base_rate"):
        assert s.loc["twin", "brier"] <= s.loc[baseline, "brier"], s
