"""The misspecification suite: its generators break the twin's assumptions as they say, and a
CI-sized backtest of the suite runs (the full one is `make validate`)."""

from __future__ import annotations

import numpy as np
import pytest

from migraine_bayes.evaluation.misspecification import GENERATORS, run_suite
from migraine_bayes.synthetic import _trigger_term, simulate_cohort


def test_lagged_and_shaped_terms() -> None:
    z = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    trig = {"log_or_per_unit": 0.5, "contrast": 2.0, "threshold": 0.0, "shape": "linear"}
    np.testing.assert_allclose(_trigger_term({**trig, "lag": 1}, z),
                               [np.nan, 0.0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(_trigger_term({**trig, "lag": 2}, z)[2:], [0.0, 0.5, 1.0])
    thr = _trigger_term({**trig, "shape": "threshold", "threshold": 3.0, "scaled": True}, z)
    np.testing.assert_allclose(thr, [0, 0, 0, 1.0, 1.0])  # log OR at the contrast, from 3 on
    sat = _trigger_term({**trig, "shape": "saturating"}, z)
    assert sat[1] == pytest.approx(0.5 * 2 * np.tanh(0.5)) and sat[4] < 1.0 < 0.5 * 4
    below = _trigger_term({**trig, "shape": "below", "threshold": -8.0}, -z * 4)
    np.testing.assert_allclose(below, [0, 0, 1.0, 1.0, 1.0])


def test_generators_record_their_misspecification() -> None:
    lagged = simulate_cohort(3, 60, 5, **GENERATORS["lagged"]).truth["patients"][0]
    lags = {t["feature"]: t.get("lag", 0) for t in lagged["triggers"]}
    assert lags["derived.pressure_change"] == 2 and lags["trigger.alcohol"] == 1
    regimes = simulate_cohort(6, 365, 5, **GENERATORS["regimes"]).truth["patients"]
    share = np.mean([np.mean(p["regime"]["on"]) for p in regimes])
    assert 0.05 < share < 0.2  # stationary share 0.02 / (0.02 + 0.15) = 0.12
    inter = simulate_cohort(3, 120, 5, **GENERATORS["interaction"]).truth["patients"][0]
    assert inter["interaction"]["log_or"] == pytest.approx(np.log(2.5))
    fading = simulate_cohort(8, 120, 5, **GENERATORS["fading"]).truth["patients"]
    assert any(p["preventive_fade_days"] == 45.0 for p in fading)


@pytest.mark.filterwarnings("ignore::migraine_bayes.inference.InferenceWarning")
def test_small_suite_runs_twin_beside_oracle() -> None:
    table = run_suite(patients=3, days=150, test_days=40, generators=["interaction"],
                      draws=200, seed=3)
    models = set(table["model"])
    assert {"twin", "oracle", "base_rate"} <= models
    twin = table[table["model"] == "twin"].iloc[0]
    oracle = table[table["model"] == "oracle"].iloc[0]
    assert twin["days"] == oracle["days"] > 60 and np.isfinite(twin["auc"])
    assert twin["auc_gap"] == pytest.approx(twin["auc"] - oracle["auc"])
