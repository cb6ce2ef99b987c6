"""TRIPOD+AI validation measures against independent computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

from migraine_bayes import metrics
from migraine_bayes.evaluation.validation import decision_curve, validation_table


def test_calibration_slope_and_intercept_match_an_independent_logistic_fit(rng) -> None:
    """Forecasts too extreme (true slope 0.6) and too high (true intercept −0.3): the Newton fit
    equals an unpenalised scikit-learn logistic regression on logit(p), and recovers both."""
    p = expit(rng.normal(-2.0, 1.2, 20_000))
    y = (rng.random(p.size) < expit(-0.3 + 0.6 * logit(p))).astype(float)
    a, b = metrics.logistic_recalibration(y, p)
    ref = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(logit(p)[:, None], y)
    assert a == pytest.approx(ref.intercept_[0], abs=1e-5)
    assert b == pytest.approx(ref.coef_[0, 0], abs=1e-5)
    assert b == pytest.approx(0.6, abs=0.05) and a == pytest.approx(-0.3, abs=0.1)
    # calibration-in-the-large: the intercept with logit(p) as offset solves sum(y) = sum(mu)
    citl, slope = metrics.logistic_recalibration(y, p, offset_only=True)
    assert slope == 1.0
    assert expit(citl + logit(p)).sum() == pytest.approx(y.sum(), rel=1e-8)
    assert metrics.observed_expected(y, p) == pytest.approx(y.sum() / p.sum())


def test_calibrated_forecasts_have_slope_one_and_no_offset(rng) -> None:
    p = expit(rng.normal(-2.0, 1.0, 30_000))
    y = (rng.random(p.size) < p).astype(float)
    a, b = metrics.logistic_recalibration(y, p)
    assert abs(b - 1) < 0.06 and abs(a) < 0.12
    assert abs(metrics.observed_expected(y, p) - 1) < 0.04


def test_average_precision_matches_scikit_learn(rng) -> None:
    y = (rng.random(500) < 0.15).astype(int)
    p = np.round(rng.random(500) * 0.5 + 0.3 * y, 2)  # ties included
    assert metrics.average_precision(y, p) == pytest.approx(average_precision_score(y, p))
    assert np.isnan(metrics.average_precision(np.zeros(5), np.linspace(0, 1, 5)))


def test_net_benefit_matches_a_hand_count() -> None:
    """10 days, 3 attacks; alarms at t = 0.2 on p ≥ 0.2: TP 3, FP 2 → 3/10 − 2/10 × 0.25."""
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.5, 0.2, 0.3, 0.25, 0.1, 0.1, 0.05, 0.05, 0.01])
    nb = metrics.net_benefit(y, p, np.array([0.2, 0.5]))
    assert nb[0] == pytest.approx(0.3 - 0.2 * 0.2 / 0.8)
    assert nb[1] == pytest.approx(0.2 - 0.0)  # TP 2 (0.9, 0.5), FP 0
    everyone = metrics.net_benefit(y, np.ones(10), np.array([0.2]))
    assert everyone[0] == pytest.approx(0.3 - 0.7 * 0.25)


def test_validation_table_and_decision_curve(rng) -> None:
    """Two patients, a calibrated twin and a flat base rate: every measure with its interval,
    the twin's Brier skill positive, its decision curve above alarm-no-one where it alarms."""
    rows = []
    for pid, shift in (("a", -2.2), ("b", -1.6)):
        eta = shift + rng.normal(0.0, 1.0, 400)
        y = (rng.random(eta.size) < expit(eta)).astype(int)
        dates = pd.date_range("2025-01-01", periods=eta.size).strftime("%Y-%m-%d")
        rows += [pd.DataFrame({"patient_id": pid, "date": dates, "model": "twin",
                               "p_attack": expit(eta), "attack": y}),
                 pd.DataFrame({"patient_id": pid, "date": dates, "model": "base_rate",
                               "p_attack": np.full(eta.size, y.mean()), "attack": y})]
    predictions = pd.concat(rows, ignore_index=True)
    table = validation_table(predictions, seed=1, n_boot=60).set_index("model")
    twin = table.loc["twin"]
    for key in ("auc", "auprc", "observed_expected", "citl", "cal_slope", "brier_skill"):
        assert twin[f"{key}_low"] <= twin[key] <= twin[f"{key}_high"], key
    assert twin["brier_skill"] > 0 and table.loc["base_rate", "brier_skill"] == pytest.approx(0)
    assert 0.7 < twin["cal_slope_low"] and twin["cal_slope_high"] > 0.9
    assert twin["within_c_patients"] == 2 and twin["within_c"] > 0.6
    curve = decision_curve(predictions, "twin")
    assert (curve["alarm_no_one"] == 0).all()
    assert (curve["net_benefit"] >= curve["alarm_everyone"] - 1e-12).iloc[5:].all()
    # the 90% bootstrap band holds the estimate at every threshold and is not degenerate
    assert (curve["net_benefit_low"] <= curve["net_benefit"] + 1e-12).all()
    assert (curve["net_benefit"] <= curve["net_benefit_high"] + 1e-12).all()
    assert (curve["net_benefit_high"] - curve["net_benefit_low"]).iloc[:10].min() > 0


def test_within_patient_c_interval_resamples_patients(rng) -> None:
    rows = []
    for k in range(8):  # eight patients whose own C differs
        y = rng.random(120) < 0.2
        p = np.clip(0.2 + (0.05 + 0.04 * k) * (y - 0.2) + rng.normal(0, 0.05, 120), 0.01, 0.99)
        rows.append(pd.DataFrame({"patient_id": f"p{k}", "date": np.arange(120),
                                  "model": "twin", "p_attack": p, "attack": y.astype(float)}))
    table = validation_table(pd.concat(rows, ignore_index=True), n_boot=300).iloc[0]
    assert table["within_c_low"] <= table["within_c"] <= table["within_c_high"]
    assert table["within_c_low"] < table["within_c_high"]
    # the interval of a median of 8 patients lies within their range
    assert table["within_c_q25"] - 0.2 < table["within_c_low"]
