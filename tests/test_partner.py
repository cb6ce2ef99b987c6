"""The AI partner: online logit pooling of the twin with another model, and an HTTP partner."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from migraine_bayes.analysis.partner import HttpPartner, PartnerPredictor, combine_online
from migraine_bayes.metrics import log_score


def two_views(partner_informative: bool, days: int = 400, per_day: int = 10, seed: int = 0):
    """Forecasts of a known truth: the twin sees one signal, the partner another (or noise)."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    s1, s2 = rng.normal(0, 1.0, n), rng.normal(0, 1.0, n)
    truth = expit(-2.0 + s1 + (s2 if partner_informative else 0.0))
    seen = s2 if partner_informative else rng.normal(0, 1.0, n)  # or pure noise
    return pd.DataFrame({
        "date": np.repeat(pd.date_range("2025-01-01", periods=days), per_day),
        "p_twin": expit(-2.0 + s1), "p_partner": expit(-2.0 + seen),
        "attack": (rng.random(n) < truth).astype(float)})


def test_combination_never_uses_the_day_or_later_outcomes() -> None:
    t = two_views(True, days=60)
    base = combine_online(t)
    cut = t["date"].iloc[len(t) // 2]
    changed = t.assign(attack=np.where(t["date"] >= cut, 1 - t["attack"], t["attack"]))
    again = combine_online(changed)
    upto = (t["date"] <= cut).to_numpy()
    np.testing.assert_array_equal(base[upto], again[upto])
    assert not np.array_equal(base[~upto], again[~upto])


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    edges = np.quantile(p, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    return float(sum(abs(y[idx == b].mean() - p[idx == b].mean()) * (idx == b).mean()
                     for b in range(bins) if (idx == b).any()))


def test_an_informative_partner_helps_and_stays_calibrated() -> None:
    t = two_views(True)
    p = combine_online(t)
    late = (t["date"] >= t["date"].iloc[len(t) // 4]).to_numpy()  # after a learning period
    y = t["attack"].to_numpy()[late]
    comb = log_score(y, p[late])
    assert comb > log_score(y, t["p_twin"].to_numpy()[late]) + 0.02
    assert comb > log_score(y, t["p_partner"].to_numpy()[late]) + 0.02
    assert ece(y, p[late]) <= 0.03


def test_a_useless_partner_costs_nothing_beyond_noise() -> None:
    t = two_views(False)
    p = combine_online(t)
    y = t["attack"].to_numpy()
    assert log_score(y, p) >= log_score(y, t["p_twin"].to_numpy()) - 0.003


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        rows = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["features"]
        bad = any(r.get("stress") is None for r in rows)
        body = {"p": [0.1] if bad else [min(1.0, 0.05 * r["stress"]) for r in rows]}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args) -> None:
        pass


def test_http_partner_round_trip_and_bad_answers() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        partner = HttpPartner(f"http://127.0.0.1:{server.server_port}/predict")
        assert isinstance(partner, PartnerPredictor)
        p = partner.predict_proba(pd.DataFrame({"stress": [2.0, 6.0]}))
        np.testing.assert_allclose(p, [0.1, 0.3])
        with pytest.raises(ValueError, match="2 probabilities"):
            partner.predict_proba(pd.DataFrame({"stress": [2.0, None]}))
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ValueError, match="did not answer"):
        HttpPartner("http://127.0.0.1:9/none", timeout=1).predict_proba(
            pd.DataFrame({"stress": [1.0]}))


def test_backtest_scores_the_combination(small_backtest) -> None:
    scores = small_backtest[0].scores.set_index("model")
    assert {"twin", "boosting", "twin+partner"} <= set(scores.index)
    comb, twin = scores.loc["twin+partner"], scores.loc["twin"]
    assert comb["days"] == twin["days"]
    best = max(twin["log_score"], scores.loc["boosting", "log_score"])
    assert comb["log_score"] >= best - 0.02, scores[["log_score"]]
