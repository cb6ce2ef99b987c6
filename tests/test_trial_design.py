"""Issue 37: Bayesian N-of-1 design — the information gain against closed forms, the Laplace
analysis against brute force, calibration, the recommendation, adaptive allocation, and the
`design` command on a fitted twin."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from migraine_bayes import api
from migraine_bayes.cli import app
from migraine_bayes.interventions import trial_design as td

runner = CliRunner()


def test_information_gain_matches_the_conjugate_normal_closed_form() -> None:
    """Mean KL from prior to posterior over the prior predictive is the mutual information:
    0.5 log(1 + n s0² / σ²) for a normal mean with a normal prior."""
    rng = np.random.default_rng(0)
    m0, s0, sigma, n, sims = 0.3, 0.8, 2.0, 12, 200_000
    theta = rng.normal(m0, s0, sims)
    ybar = rng.normal(theta, sigma / math.sqrt(n))
    var = 1.0 / (1.0 / s0 ** 2 + n / sigma ** 2)
    mean = var * (m0 / s0 ** 2 + n * ybar / sigma ** 2)
    eig = td.kl_normal(mean, np.full(sims, var), m0, s0 ** 2).mean()
    assert eig == pytest.approx(0.5 * math.log(1 + n * s0 ** 2 / sigma ** 2), rel=0.01)


def test_the_laplace_analysis_gives_the_fisher_information_of_a_long_diary() -> None:
    """With many days the logistic posterior of the effect is normal with the Fisher
    information's variance: the information gain is 0.5 log(1 + s0² Σ p(1-p) x²)."""
    rng = np.random.default_rng(1)
    sims, days, p0, s0 = 400, 2002, 0.2, 0.5
    x = np.tile(np.repeat([0.0, 1.0], 7), days // 14)[None, :].repeat(sims, 0)
    delta = rng.normal(0.0, s0, sims)
    eta = math.log(p0 / (1 - p0)) + delta[:, None] * x
    y = (rng.random((sims, days)) < 1 / (1 + np.exp(-eta))).astype(float)
    mean, cov = td.laplace(y, np.ones_like(y, bool), np.full(days, math.log(p0 / (1 - p0))),
                           x[..., None], np.array([0.0]), np.array([[s0 ** 2]]))
    eig = td.kl_normal(mean[:, 0], cov[:, 0, 0], 0.0, s0 ** 2).mean()
    fisher = (days / 2) * p0 * (1 - p0)
    assert eig == pytest.approx(0.5 * math.log(1 + s0 ** 2 * fisher), rel=0.06)
    assert np.corrcoef(mean[:, 0], delta)[0, 1] > 0.9


def _world(seed: int, sims: int, days: int = 84) -> tuple[np.ndarray, td.Baseline]:
    """Baseline paths of a drifting patient and the analyst's model of them."""
    rng = np.random.default_rng(seed)

    def paths(n: int) -> np.ndarray:
        ar = np.zeros((n, days))
        e = rng.normal(0, 0.12, (n, days))
        for h in range(1, days):
            ar[:, h] = 0.95 * ar[:, h - 1] + e[:, h]
        return math.log(0.2 / 0.8) + rng.normal(0, 0.3, (n, 1)) + ar
    return paths(sims), td.baseline_model(paths(4000))


def test_the_laplace_analysis_agrees_with_brute_force_on_one_patient() -> None:
    """One simulated 12-week diary of a drifting patient: the effect's posterior by the
    vectorised Laplace approximation (weekly levels and the effect) against importance
    sampling from the prior with 400,000 draws."""
    eta0, model = _world(2, 1)
    prior = td.Prior(-0.35, 0.4, "behavioral")
    rng = np.random.default_rng(3)
    on = td.assignment(td.FIXED_ABAB, 1, rng)
    x = td.exposure(on, "behavioral")
    y = (rng.random(eta0.shape) < 1 / (1 + np.exp(-(eta0 - 0.5 * x)))).astype(float)
    weeks = 12
    levels = np.repeat(np.eye(weeks), 7, axis=0)[None]
    design = np.concatenate([levels, x[..., None]], axis=-1)
    cov0 = np.zeros((weeks + 1, weeks + 1))
    cov0[:weeks, :weeks] = model.cov[:weeks, :weeks]
    cov0[-1, -1] = prior.sd ** 2
    mean0 = np.append(model.mean[:weeks], prior.mean)
    mean, cov = td.laplace(y, np.ones_like(y, bool), model.offset[:84], design, mean0, cov0)
    draws = rng.multivariate_normal(mean0, cov0, 400_000)
    eta = model.offset[:84][None] + draws @ design[0].T
    loglik = (y[0] * eta - np.logaddexp(0, eta)).sum(axis=1)
    w = np.exp(loglik - loglik.max())
    w /= w.sum()
    exact_mean = float(w @ draws[:, -1])
    exact_sd = float(np.sqrt(w @ (draws[:, -1] - exact_mean) ** 2))
    assert 1 / np.square(w).sum() > 2000  # enough effective draws to be the truth
    assert mean[0, -1] == pytest.approx(exact_mean, abs=0.1 * exact_sd)
    assert math.sqrt(cov[0, -1, -1]) == pytest.approx(exact_sd, rel=0.1)


def test_stated_decision_probabilities_are_calibrated_when_the_model_holds() -> None:
    """Futures drawn from the analyst's own model (drifting baseline, effect from the
    prior): the probability a decision is right, as stated at the stop, is how often it is
    (each bin of ≥ 150 trials within 0.05), with the stopping rule on."""
    eta0, model = _world(4, 6000, 112)
    prior = td.Prior(-0.35, 0.4, "behavioral")
    rng = np.random.default_rng(5)
    truth = td.Truth(eta0, rng.normal(prior.mean, prior.sd, eta0.shape[0]),
                     rng.random(eta0.shape))
    out = td.evaluate(td.Schedule(2, 16, "random", 0, True, 0.8), truth, prior, model)
    rows = [r for r in td.reliability(out.stated, out.correct) if r["n"] >= 150]
    assert len(rows) >= 3
    for r in rows:
        assert abs(r["stated"] - r["observed"]) <= 0.05, r
    assert out.weeks.mean() < 16  # the rule stops some trials early


def test_the_recommendation_is_the_shortest_schedule_not_worse_than_the_fixed_abab() -> None:
    def outcome(schedule: td.Schedule, correct: np.ndarray, weeks: float) -> td.Outcome:
        n = correct.size
        return td.Outcome(schedule, correct, np.full(n, 0.7), np.full(n, weeks), correct,
                          np.zeros(n), np.zeros(n))

    rng = np.random.default_rng(6)
    base = rng.random(2000) < 0.7
    worse = base & (rng.random(2000) < 0.8)  # 14 points worse: out
    ref = outcome(td.FIXED_ABAB, base, 12)
    short_bad = outcome(td.Schedule(1, 8), worse, 6)
    short_ok = outcome(td.Schedule(2, 8), base.copy(), 7.5)
    long_ok = outcome(td.Schedule(2, 16), base.copy(), 11)
    assert td.recommend([short_bad, short_ok, long_ok], ref) is short_ok


def test_thompson_sampling_is_replayable_and_loses_less_than_a_crossover() -> None:
    """Three options, one clearly best: Thompson sampling replays the same choices on the
    same diary and seed, ends on the best option more often than on any other, and loses
    fewer attacks than a fixed crossover (regret against the oracle; the study in
    docs/trial-design.md measures by how much)."""
    eta0, model = _world(7, 300, 112)
    rng = np.random.default_rng(8)
    deltas = np.stack([np.zeros(300), rng.normal(-0.9, 0.1, 300), np.zeros(300)], axis=1)
    u = rng.random(eta0.shape)
    priors = [td.Prior(-0.35, 0.4, "behavioral")] * 2
    runs = {p: td.allocate(eta0, deltas, u, priors, model, 2, 8, p, seed=9)
            for p in ("crossover", "thompson", "oracle")}
    again = td.allocate(eta0, deltas, u, priors, model, 2, 8, "thompson", seed=9)
    np.testing.assert_array_equal(again.choices, runs["thompson"].choices)
    assert np.allclose(runs["oracle"].regret, 0)
    assert runs["thompson"].regret.mean() < 0.85 * runs["crossover"].regret.mean()
    ends = np.bincount(runs["thompson"].final_best, minlength=3) / 300
    assert ends[1] > max(ends[0], ends[2]) and ends[1] > 1 / 3 + 0.15


def test_design_and_decide_on_a_fitted_twin(committed_twins, tmp_path) -> None:
    """`design` for a committed patient against a preventive it took (its own posterior is the
    prior) writes a plan with the recommended schedule beside the fixed ABAB and a calendar;
    `design --decide` applies the plan's rule to the twin and records it in the audit trail;
    a bad comparison is refused by name."""
    twin = committed_twins["syn125-001"]
    twin.save(tmp_path / "twin")
    plan = tmp_path / "plan.json"
    res = runner.invoke(app, ["design", str(tmp_path / "twin"), "--patient", "syn125-001",
                              "--compare", "current,galcanezumab", "--sims", "200", "--weeks", "12",
                              "--out", str(plan)])
    assert res.exit_code == 0, res.output
    data = json.loads(plan.read_text())
    assert data["prior"]["basis"] == "the patient's posterior"
    assert data["recommended"]["p_correct"] >= data["fixed_abab"]["p_correct"] - 0.1
    assert data["calendar"][0]["block"] == 1 and "recommended:" in res.output
    res = runner.invoke(app, ["design", str(tmp_path / "twin"), "--patient", "syn125-001",
                              "--decide", str(plan)])
    assert res.exit_code == 0, res.output
    assert "recorded in the audit trail" in res.output
    assert api.audit_verify(tmp_path / "twin").ok
    res = runner.invoke(app, ["design", str(tmp_path / "twin"), "--patient", "syn125-001",
                              "--compare", "current,erenumabb"])
    assert res.exit_code == 2 and "did you mean 'erenumab'" in res.output
