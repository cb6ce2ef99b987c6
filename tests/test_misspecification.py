"""The misspecification suite: its generators break the twin's assumptions as they say, and a
CI-sized backtest of the suite runs (the full one is `make validate`)."""

from __future__ import annotations

import numpy as np
import pytest

from migraine_bayes.evaluation.misspecification import GENERATORS, run_suite
from migraine_bayes.model import FeatureOptions
from migraine_bayes.synthetic.cohort import simulate_cohort, trigger_term


def test_lagged_and_shaped_terms() -> None:
    z = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    trig = {"log_or_per_unit": 0.5, "contrast": 2.0, "threshold": 0.0, "shape": "linear"}
    np.testing.assert_allclose(trigger_term({**trig, "lag": 1}, z),
                               [np.nan, 0.0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(trigger_term({**trig, "lag": 2}, z)[2:], [0.0, 0.5, 1.0])
    thr = trigger_term({**trig, "shape": "threshold", "threshold": 3.0, "scaled": True}, z)
    np.testing.assert_allclose(thr, [0, 0, 0, 1.0, 1.0])  # log OR at the contrast, from 3 on
    sat = trigger_term({**trig, "shape": "saturating"}, z)
    assert sat[1] == pytest.approx(0.5 * 2 * np.tanh(0.5)) and sat[4] < 1.0 < 0.5 * 4
    below = trigger_term({**trig, "shape": "below", "threshold": -8.0}, -z * 4)
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


@pytest.mark.slow  # a statistical check: make validate and .ci/run
@pytest.mark.filterwarnings("ignore::migraine_bayes.model.inference.InferenceWarning")
def test_small_suite_runs_twin_beside_oracle(tmp_path) -> None:
    table = run_suite(patients=3, days=130, test_days=35, generators=["lagged"],
                      draws=150, seed=3, options=FeatureOptions((1, 2)),
                      deviations="horseshoe")  # a distributed lag, sparse deviations
    models = set(table["model"])
    assert {"twin", "oracle", "base_rate"} <= models
    twin = table[table["model"] == "twin"].iloc[0]
    oracle = table[table["model"] == "oracle"].iloc[0]
    assert twin["days"] == oracle["days"] > 50 and np.isfinite(twin["auc"])
    assert twin["auc_gap"] == pytest.approx(twin["auc"] - oracle["auc"])
    assert twin["auc_vs_oracle_low"] <= twin["auc_gap"] <= twin["auc_vs_oracle_high"]
    comb = table[table["model"] == "twin+partner"].iloc[0]  # paired against its better part
    assert comb["log_score_best_part"] in ("twin", "boosting")
    assert comb["log_score_vs_best_low"] <= comb["log_score_vs_best"] <= comb[
        "log_score_vs_best_high"]
    from migraine_bayes.evaluation.misspecification import write
    text = (write(table, tmp_path) / "misspecification.md").read_text()
    assert "| lagged |" in text and ("vs boosting" in text or "vs twin" in text)


def test_filtered_oracle_sits_between_knowing_and_ignoring_the_hidden_state() -> None:
    """The filtered oracle infers the hidden state from past outcomes: with a strong state
    (sd 1.5, persistence 0.97) it beats the same oracle fed no outcomes (the state averaged
    out) and is calibrated, and it does not beat the oracle that sees the state."""
    from scipy.special import expit, logit

    from migraine_bayes.evaluation.oracles import filtered_oracle_probability
    from migraine_bayes.metrics import log_score
    from migraine_bayes.state import build_panel
    from migraine_bayes.synthetic.cohort import _ar1

    sc = simulate_cohort(4, 365, 2)
    panel = build_panel(sc.cohort)
    rng = np.random.default_rng(0)
    days = np.arange(30, 365)
    parts = []
    for truth in sc.truth["patients"]:
        rest = logit(np.asarray(truth["p_attack"])) - np.asarray(truth["latent"])
        x = _ar1(rng, rest.size, 0.97, 1.5)
        p = expit(rest + x)
        y = (rng.random(p.size) < p).astype(float)
        strong = dict(truth, latent=list(x), p_attack=list(p), rho=0.97, latent_sd=1.5,
                      symptoms=None)
        q = panel.sel(patient=truth["patient_id"]).copy()
        q["onset"] = ("day", y[: q.sizes["day"]])
        blind = q.assign(onset=q["onset"] * np.nan)
        parts.append((y[days], p[days], filtered_oracle_probability(strong, q, days, seed=1),
                      filtered_oracle_probability(strong, blind, days, seed=1)))
    y, knowing, filtered, averaged = map(np.concatenate, zip(*parts, strict=True))
    assert log_score(y, filtered) > log_score(y, averaged) + 0.02
    assert log_score(y, knowing) > log_score(y, filtered)
    assert abs(filtered.mean() - y.mean()) < 0.02  # the filter's forecasts are calibrated
