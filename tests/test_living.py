"""The living twin: update by particle filter, drift checks, retraining, audit trail, crashes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import COMMITTED, ROOT
from typer.testing import CliRunner

from migraine_bayes import api
from migraine_bayes.cli import app
from migraine_bayes.cohort.io import Cohort, load_cohort
from migraine_bayes.cohort.truncate import truncate
from migraine_bayes.living.drift import check_drift
from migraine_bayes.living.retraining import RetrainPolicy, retrain, retraining_reasons
from migraine_bayes.metrics import log_score
from migraine_bayes.model.kernel import probabilities
from migraine_bayes.store import audit
from migraine_bayes.twin.core import DigitalTwin
from migraine_bayes.twin.forecast import posterior_terms
from migraine_bayes.twin.record import TwinError

PID = "syn125-005"
START = pd.Timestamp("2025-01-06")
FIT_DAYS = 300


def day(n: int) -> pd.Timestamp:
    """Date of diary day ``n`` (0-based)."""
    return START + pd.Timedelta(days=n)


@pytest.fixture(scope="module")
def cohort() -> Cohort:
    return load_cohort(COMMITTED).subset([PID])


@pytest.fixture(scope="module")
def fitted(cohort, tmp_path_factory) -> Path:
    """A twin of one patient fitted on the first 300 diary days, saved once."""
    twin = DigitalTwin.fit_patient(truncate(cohort, day(FIT_DAYS - 1)), PID, validate=False)
    return twin.save(tmp_path_factory.mktemp("fitted") / "twin")


def copy_twin(src: Path, dst: Path) -> Path:
    DigitalTwin.load(src).save(dst)
    return dst


def shifted(cohort: Cohort, first: int, last: int, share: float, seed: int = 0) -> Cohort:
    """The cohort up to day ``last`` with extra attacks on ``share`` of days first..last: a
    synthetic upward shift of the patient's latent susceptibility."""
    c = truncate(cohort, day(last))
    rng = np.random.default_rng(seed)
    had = set(c.attacks["onset"].dt.normalize())
    new = [day(d) + pd.Timedelta(hours=10) for d in range(first, last + 1)
           if rng.random() < share and day(d) not in had]
    extra = pd.DataFrame({"patient_id": PID, "onset": new})
    attacks = pd.concat([c.attacks, extra], ignore_index=True).sort_values("onset")
    return Cohort(c.observations, attacks.reset_index(drop=True), c.treatments, c.patients,
                  c.registry, c.source, list(c.notices))


def plain_p(twin: DigitalTwin, panel, days: np.ndarray) -> np.ndarray:
    return probabilities(posterior_terms(twin.posterior.posterior, twin.design(panel), 0, days,
                                         twin.domain)).mean(0)


def test_update_one_day_moves_the_forecast_and_survives_save(fitted, cohort, tmp_path) -> None:
    twin = DigitalTwin.load(fitted)
    before = twin.forecast()
    assert str(before["date"].iloc[0]) == str(day(FIT_DAYS).date())
    table = twin.update(truncate(cohort, day(FIT_DAYS)))
    assert len(table) == 1 and str(table["date"].iloc[0]) == str(day(FIT_DAYS).date())
    assert 0 < table["p_attack"].iloc[0] < 1 and table["ess"].iloc[0] > 0
    after = twin.forecast(horizon=3)
    assert str(after["date"].iloc[0]) == str(day(FIT_DAYS + 1).date())
    assert twin.meta["filter"]["last_date"][PID] == str(day(FIT_DAYS).date())
    loaded = DigitalTwin.load(twin.save(tmp_path / "t"))
    pd.testing.assert_frame_equal(loaded.forecast(horizon=3), after)
    np.testing.assert_array_equal(loaded.filter_state.offset, twin.filter_state.offset)
    assert twin.update(truncate(cohort, day(FIT_DAYS))).empty  # nothing new: nothing moves
    with pytest.raises(TwinError, match="already seen"):
        twin.update(truncate(cohort, day(FIT_DAYS - 5)))


def test_update_after_a_latent_shift_beats_the_unupdated_twin(fitted, cohort) -> None:
    twin = DigitalTwin.load(fitted)
    data = shifted(cohort, FIT_DAYS, FIT_DAYS + 41, share=0.25)
    seen = float(twin.course["n_attacks"].sel(patient=PID))
    course = twin.course
    table = twin.update(data)
    # the attack course learns the new attacks; an update without new ones keeps it
    assert twin.course is not course and float(twin.course["n_attacks"].sel(patient=PID)) > seen
    kept = twin.course
    assert twin.update(data).empty and twin.course is kept
    known = table["outcome"].notna().to_numpy()
    days = np.arange(FIT_DAYS, FIT_DAYS + len(table))
    y = table["outcome"].to_numpy()[known]
    updated = log_score(y, table["p_attack"].to_numpy()[known])
    unupdated = log_score(y, plain_p(DigitalTwin.load(fitted), twin.panel, days)[known])
    assert updated > unupdated + 0.01, (updated, unupdated)
    assert twin.filter_state.offset[0].mean() > 0.1  # the filter learnt the upward shift


def test_audit_trail_records_forecasts_and_joins_outcomes(fitted, cohort, tmp_path) -> None:
    path = copy_twin(fitted, tmp_path / "twin")
    folder = truncate(cohort, day(FIT_DAYS + 2)).write(tmp_path / "cohort")
    api.forecast(path, horizon=3)  # issued after day 299 for days 300-302
    res = api.update(path, folder, retrain_when_due=False)
    assert len(res["days"]) == 3
    api.forecast(path)
    table = audit.prediction_outcomes(path)
    assert len(table) == 4 and set(table["twin_version"]) == {1.0}
    first = table[table["issued_at"] == str(day(FIT_DAYS - 1).date())]
    assert first["outcome"].notna().all()  # outcomes joined once they arrived
    assert table.iloc[-1]["outcome"] != table.iloc[-1]["outcome"]  # not yet known: NaN
    assert table["data_hash"].str.len().eq(16).all()
    assert list(audit.events(path)["kind"]) == ["update"]
    with sqlite3.connect(path / audit.FILE) as con, pytest.raises(sqlite3.DatabaseError,
                                                                  match="append-only"):
        con.execute("DELETE FROM forecasts")


CRASH = """
import os, sys
from migraine_bayes import api
real, calls = os.replace, [0]
def dying(a, b):
    calls[0] += 1
    if calls[0] == int(sys.argv[3]):
        os._exit(9)  # killed: no cleanup, no exception handling
    return real(a, b)
os.replace = dying
api.update(sys.argv[1], sys.argv[2], retrain_when_due=False)
"""


@pytest.mark.parametrize("kill_at", [1, 2])
def test_killed_update_leaves_previous_twin_and_audit(fitted, cohort, tmp_path, kill_at) -> None:
    path = copy_twin(fitted, tmp_path / "twin")
    api.forecast(path)
    folder = truncate(cohort, day(FIT_DAYS + 1)).write(tmp_path / "cohort")
    proc = subprocess.run([sys.executable, "-c", CRASH, str(path), str(folder), str(kill_at)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 9, proc.stderr
    twin = DigitalTwin.load(path)  # recovers a save killed between its two renames
    assert twin.filter_state is None and twin.meta["version"] == 1.0
    assert len(audit.prediction_outcomes(path)) == 1
    res = api.update(path, folder, retrain_when_due=False)  # and carries on
    assert len(res["days"]) == 2


def test_retraining_policy_reasons(fitted, cohort) -> None:
    twin = DigitalTwin.load(fitted)
    assert retraining_reasons(twin) == []
    table = twin.update(truncate(cohort, day(FIT_DAYS + 34)))
    reasons = retraining_reasons(twin, table)
    assert any("35 diary days since the last fit" in r for r in reasons), reasons
    twin.filter_state.adaptations[:] = 6
    twin.record = twin.record.replace(validation={"brier": 0.01})
    reasons = retraining_reasons(twin, table, RetrainPolicy(max_days_since_retraining=60))
    assert len(reasons) == 2, reasons
    assert any("drift adaptations" in r for r in reasons)
    assert any("more than 1.5× the initial 0.010" in r for r in reasons)


def test_retrain_makes_a_new_version_and_keeps_the_old(fitted, cohort, tmp_path,
                                                       monkeypatch) -> None:
    path = copy_twin(fitted, tmp_path / "twin")
    api.forecast(path)
    data = truncate(cohort, day(FIT_DAYS + 30))
    # a crash while the new version replaces the old one: the old version survives
    real, calls = os.replace, [0]

    def failing(a, b):
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        return real(a, b)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(KeyboardInterrupt):
        retrain(path, data, ["test"], holdout_days=21)
    monkeypatch.undo()
    assert DigitalTwin.load(path).meta["version"] == 1.0
    assert len(audit.prediction_outcomes(path)) == 1

    new = retrain(path, data, ["test"], holdout_days=21)
    assert new.meta["version"] == 1.1 and new.meta["previous_version"] == 1.0
    comp = new.meta["comparison"]
    assert comp["old"]["days"] == comp["new"]["days"] > 10
    assert {"brier", "log_score"} <= set(comp["old"]) and "new_better" in comp
    now = DigitalTwin.load(path)
    assert now.meta["version"] == 1.1
    assert now.meta["coverage"][PID]["diary_days"] == FIT_DAYS + 31
    assert DigitalTwin.load(path, version=1.0).meta["coverage"][PID]["diary_days"] == FIT_DAYS
    assert len(audit.prediction_outcomes(path)) == 1  # the audit trail came along
    assert list(audit.events(path)["kind"]) == ["retrain"]


def test_drift_checks_categorise(committed_twins, cohort) -> None:
    twin = committed_twins[PID]
    quiet = check_drift(twin, seed=1)[0]
    assert not quiet["alarm"], quiet
    assert quiet["category"] is None and 0 <= quiet["p_count"] <= 1
    up = check_drift(twin, shifted(cohort, 337, 364, share=0.4), seed=1)[0]
    assert up["alarm"] and up["category"] == "baseline shift", up
    assert up["offset_log_odds"] > 0.3 and up["p_count"] < 0.05
    # a new association: attacks moved onto the window's heaviest caffeine days
    obs = cohort.observations
    caf = obs[(obs["variable"] == "caffeine") & (obs["time"] >= day(337))].copy()
    heavy = caf.sort_values("value").tail(10)["time"].dt.normalize()
    old = cohort.attacks
    kept = old[old["onset"] < day(337)]
    moved = pd.DataFrame({"patient_id": PID, "onset": heavy + pd.Timedelta(hours=10)})
    c = Cohort(obs, pd.concat([kept, moved], ignore_index=True).sort_values("onset")
               .reset_index(drop=True), cohort.treatments, cohort.patients, cohort.registry,
               cohort.source, [])
    assoc = check_drift(twin, c, seed=1)[0]
    assert assoc["alarm"], assoc
    assert assoc["category"] in ("new association", "changed trigger sensitivity"), assoc
    # moving attacks also cuts them loose from their prodromes, which the check sees too
    assert assoc["trigger_z"]["trigger.caffeine"] > 3, assoc["trigger_z"]
    with pytest.raises(TwinError, match="at least 7"):
        check_drift(twin, window=3)


def test_cli_update_and_drift(fitted, cohort, tmp_path) -> None:
    path = copy_twin(fitted, tmp_path / "twin")
    folder = truncate(cohort, day(FIT_DAYS + 1)).write(tmp_path / "cohort")
    runner = CliRunner()
    res = runner.invoke(app, ["update", str(path), str(folder), "--no-retrain"])
    assert res.exit_code == 0, res.output
    assert "2 new day(s) filtered" in res.output
    out = tmp_path / "drift.json"
    res = runner.invoke(app, ["drift", str(path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())[0]["patient_id"] == PID
    other = load_cohort(COMMITTED).subset(["syn125-001"]).write(tmp_path / "other")
    res = runner.invoke(app, ["update", str(path), str(other)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    res = runner.invoke(app, ["drift", str(path), "--window", "3"])
    assert res.exit_code == 2


@pytest.mark.slow  # a statistical check: make validate and .ci/run
def test_small_drift_detection_study() -> None:
    """A small version of the study of ``make validate`` (figures there)."""
    from migraine_bayes.evaluation.drift_study import drift_detection_study

    table, summary = drift_detection_study(6, seed=3)
    assert set(table["drift"]) <= {"none", "baseline", "trigger"}
    assert summary["stationary_windows"] >= 30
    assert summary["false_alarm_rate"] <= 0.15, summary
    assert 0 < summary["oracle_power_within"] < 1


@pytest.mark.slow
def test_drift_detection_study() -> None:
    """≥ 50 drifting patients: detection within 42 days, false alarms per 28-day window.

    The issue asks for ≥ 80% detection; the oracle bound (a test that knows the true
    probabilities and the drift day) reaches 0.48 on these diaries and the twin's checks 0.21
    (measured; issue 6 is left open on this). The check guards that level and holds false
    alarms to the issue's 5% (measured 0.031).
    """
    from migraine_bayes.evaluation.drift_study import drift_detection_study
    from migraine_bayes.store import atomic

    table, summary = drift_detection_study(104, seed=7)
    out = ROOT / "reports" / "validation"
    atomic.write_text(out / "drift.json", json.dumps(summary, indent=1, default=float))
    atomic.write_text(out / "drift_checks.csv", table.to_csv(index=False))
    assert summary["drifting_patients"] >= 50
    assert summary["false_alarm_rate"] <= 0.05, summary
    assert summary["detected_within"] >= 0.35 * summary["oracle_power_within"], summary


# ---------------------------------------------------------------- issue 17: sequential, monitor
runner = CliRunner()


def _sequence(rng, n: int, shift_from: int | None):
    """Per-draw probabilities (S, n), features (n, K) and outcomes of one synthetic patient."""
    z = rng.normal(size=(n, 6))
    base = rng.normal(-1.7, 0.08, size=(100, 1)) + 0.3 * z[:, 0]  # epistemic spread
    p = 1 / (1 + np.exp(-base))
    eta = np.log(p[rng.integers(100)] / (1 - p[rng.integers(100)]))
    if shift_from is not None:
        eta[shift_from:] += np.log(2.0)  # the baseline odds doubled
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return p, z, y


@pytest.mark.slow  # a statistical check: make validate and .ci/run
def test_sequential_test_holds_its_false_alarm_rate_and_names_a_baseline_shift() -> None:
    from migraine_bayes.living.sequential import sequential_check

    rng = np.random.default_rng(17)
    names = [f"f{k}" for k in range(6)]
    beta = rng.normal(size=(100, 6))
    alarms, windows, found, labels = 0, 0.0, [], []
    for _ in range(24):
        p, z, y = _sequence(rng, 168, None)
        res = sequential_check(p, y, z, names, beta, rng, replicates=200)
        alarms += len(res["alarm_days"])
        windows += 168 / 28
        p, z, y = _sequence(rng, 168, 56)
        res = sequential_check(p, y, z, names, beta, rng, replicates=200)
        after = [d for d in res["alarm_days"] if d >= 56]
        found.append(bool(after))
        if res["alarm_day"] is not None and res["alarm_day"] >= 56:
            labels.append(res["category"])
    assert alarms / windows <= 0.1  # calibrated to 0.05 per 28 days (24 × 6 windows: noise)
    assert np.mean(found) >= 0.5
    assert labels.count("baseline shift") >= 0.8 * len(labels)


def test_a_feature_above_its_centre_all_run_is_labelled_a_baseline_shift() -> None:
    """A feature that sits above its centre for the whole run moves the odds as a baseline
    shift does: the alarm is a baseline shift unless attacks follow the feature's day-to-day
    changes (then a new association)."""
    from migraine_bayes.living.sequential import sequential_test

    rng = np.random.default_rng(5)
    n, after = 200, 80
    names = ["trigger.x", "trigger.w"]
    p = np.full((50, n), 0.12)
    beta = rng.normal(0, 0.1, (50, 2))  # the twin did not believe in either
    z = rng.normal(0, 1, (n, 2))
    z[after:, 0] = 2.0 + rng.normal(0, 0.2, n - after)  # high and flat after the shift
    base = np.full(n, np.log(0.12 / 0.88))
    test = sequential_test(p, z, names, np.random.default_rng(1), replicates=100)
    shifted = base + np.where(np.arange(n) >= after, np.log(4.0), 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-shifted))).astype(float)
    # by accumulated evidence and prior alone, "x more" (log 2 × 2 a day) would name it
    llr, totals = test.run(y)[2], np.zeros(len(test.labels))
    for t in range(n):
        totals = np.maximum(0.0, totals + llr[:, t])
    assert test.labels[int(np.argmax(totals + test.prior))][0] == "trigger.x"
    assert test.label(y, n - 1, beta, names)[0] == "baseline shift"
    # attacks that follow w's daily ups and downs: a feature, not the baseline
    followed = base + np.where(np.arange(n) >= after, 1.5 * z[:, 1], 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-followed))).astype(float)
    assert test.label(y, n - 1, beta, names)[0] == "new association"


def test_null_without_latent_state_weights_draws_by_their_likelihood() -> None:
    """Known per-draw probabilities: day t's null is the draws' mean weighted by their
    likelihood of the days before t (what the oracles and bounds use)."""
    from scipy.special import expit, softmax

    from migraine_bayes.living.sequential import Null

    rng = np.random.default_rng(4)
    p = expit(rng.normal(-1.5, 0.4, (50, 30)))
    y = (rng.random(30) < 0.25).astype(float)
    ll = np.where(y > 0, np.log(p), np.log1p(-p))
    expected = np.sum(softmax(np.cumsum(ll, 1) - ll, axis=0) * p, axis=0)
    assert np.allclose(Null.fixed(p).one_step(y), expected, atol=1e-12)
    assert np.allclose(Null.fixed(p).one_step(np.tile(y, (3, 1))), expected, atol=1e-12)


@pytest.mark.slow  # a statistical check: make validate and .ci/run
def test_sequential_test_expects_the_latent_wander_the_twin_fitted() -> None:
    """A stationary patient whose risk wanders as the twin's latent state says (amplitude 0.4,
    three-week memory) stays within the false-alarm rate; a doubling on top is still found."""
    from scipy.special import expit

    from migraine_bayes.living.sequential import Null, sequential_check

    rng = np.random.default_rng(5)
    names = [f"f{k}" for k in range(6)]
    beta = rng.normal(size=(100, 6))
    n, amp, rho = 168, 0.4, np.exp(-1 / 20)
    alarms, windows, found = 0, 0.0, []
    for k in range(32):
        z = rng.normal(size=(n, 6))
        eta = rng.normal(-1.7, 0.08, size=(100, 1)) + 0.3 * z[:, 0]
        null = Null(eta, np.zeros(eta.shape), np.zeros(100), np.zeros(100), np.full(100, rho),
                    np.full(100, amp), np.ones(n))
        path = np.zeros(n)  # the patient's latent wander, drawn from the null's AR(1)
        for t in range(n):
            path[t] = rho * (path[t - 1] if t else 0.0) + amp * np.sqrt(1 - rho**2) * (
                rng.standard_normal())
        logit_p = eta[rng.integers(100)] + path + (np.log(2.0) * (np.arange(n) >= 56) if k % 2
                                                   else 0.0)
        y = (rng.random(n) < expit(logit_p)).astype(float)
        res = sequential_check(null, y, z, names, beta, rng, replicates=200)
        if k % 2:
            found.append(any(d >= 56 for d in res["alarm_days"]))
        else:
            alarms += len(res["alarm_days"])
            windows += n / 28
    assert alarms / windows <= 0.1  # calibrated to 0.05 per 28 days (16 × 6 windows: noise)
    assert np.mean(found) >= 0.5


def test_count_pit_is_uniform_when_the_null_describes_the_diary() -> None:
    """Diaries drawn from the null (level uncertain, latent wander) give uniform count PITs; a
    null sure of one level when the diaries' levels vary puts them in the tails."""
    from migraine_bayes.living.sequential import Null, count_pit

    rng = np.random.default_rng(8)
    n, amp, rho = 90, 0.3, np.exp(-1 / 20)
    eta = np.broadcast_to(rng.normal(-1.7, 0.5, (200, 1)), (200, n))
    null = Null(eta, np.zeros(eta.shape), np.zeros(200), np.zeros(200), np.full(200, rho),
                np.full(200, amp), np.ones(n))
    sure = Null.fixed(null.probabilities().mean(axis=0, keepdims=True))
    pits, sure_pits = [], []
    for _ in range(150):
        y = null.simulate(rng, rng.integers(200, size=1), np.arange(n)[None], np.ones((1, n)))[0]
        pits.append(count_pit(null, y, rng, 1000))
        sure_pits.append(count_pit(sure, y, rng, 1000))
    tails = [np.mean((np.array(x) < 0.1) | (np.array(x) > 0.9)) for x in (pits, sure_pits)]
    assert abs(np.std(pits) - 0.289) < 0.05 and 0.08 < tails[0] < 0.33, tails
    assert tails[1] > 0.4, tails


@pytest.mark.slow  # a statistical check: make validate and .ci/run
def test_sequential_oracle_power_is_the_mean_of_the_oracle_on_diaries() -> None:
    """The expected sequential oracle equals the sequential oracle's detection averaged over
    diaries drawn from the same probabilities, and grows with the drift and the wait."""
    from scipy.special import expit, logit

    from migraine_bayes.evaluation.drift_study import (
        _days_to_first,
        sequential_oracle,
        sequential_oracle_power,
    )

    rng = np.random.default_rng(6)
    days, day = np.arange(80, 240), 100
    base = logit(0.15) + 0.3 * np.sin(np.arange(240) / 9)

    def patient(shift: float) -> dict:
        return {"p_attack": expit(base + shift * (np.arange(240) >= day)),
                "drift": {"kind": "baseline", "day": day, "log_odds_shift": shift}}

    drifting = patient(np.log(2.0))
    doubling = sequential_oracle_power(drifting, None, days, 0.05, rng, replicates=600)
    found = [_days_to_first(sequential_oracle(
        drifting, None, days, (rng.random(days.size) < drifting["p_attack"][days]).astype(float),
        0.05, rng), days, day) <= 42 for _ in range(80)]
    assert abs(np.mean(found) - doubling[42]) < 0.14, (np.mean(found), doubling)
    assert doubling[42] < doubling[90] < doubling[120]
    sixfold = sequential_oracle_power(patient(np.log(6.0)), None, days, 0.05, rng, replicates=600)
    assert doubling[42] < 0.8 < sixfold[42]


def test_learned_level_null_finds_the_level_the_diary_shows() -> None:
    """The drift study's level-learning bound: the level's posterior from the days before the
    cut covers the true offset, shrinks with more days, and stretches to a given spread."""
    import xarray as xr

    from migraine_bayes.evaluation.drift_study import known_null, learned_level_null

    rng = np.random.default_rng(3)
    n, offset = 400, 0.5
    p_model = np.full(n, 0.15)  # what the oracle believes; the diary runs at logit + 0.5
    p_true = 1 / (1 + np.exp(-(np.log(0.15 / 0.85) + offset)))
    onset = (rng.random(n) < p_true).astype(float)
    onset[::9] = np.nan  # unknown days are skipped
    patient = {"p_attack": p_model, "drift": {"kind": None}}
    q = xr.Dataset({"onset": ("day", onset)})
    days = np.arange(300, 320)
    assert np.allclose(known_null(patient, q, days), 0.15)
    short = learned_level_null(patient, q, days, 60, np.random.default_rng(0), draws=2000)
    long = learned_level_null(patient, q, days, 300, np.random.default_rng(0), draws=2000)
    level = np.log(long[:, 0] / (1 - long[:, 0])) - np.log(0.15 / 0.85)
    assert level.std() < 0.25 and abs(level.mean() - offset) < 3 * level.std(), level.mean()
    spread = [np.std(np.log(x[:, 0] / (1 - x[:, 0]))) for x in (short, long)]
    assert spread[1] < spread[0]
    wide = learned_level_null(patient, q, days, 300, np.random.default_rng(0), spread=0.7)
    assert abs(np.std(np.log(wide[:, 0] / (1 - wide[:, 0]))) - 0.7) < 1e-6


def test_check_sequential_on_a_twin(fitted, cohort) -> None:
    from migraine_bayes.living.drift import check_sequential

    twin = DigitalTwin.load(fitted)
    quiet = check_sequential(twin, truncate(cohort, day(FIT_DAYS + 40)), seed=1)[0]
    assert quiet["days"] > 20 and quiet["since"] == str(day(FIT_DAYS).date())
    assert 0 < quiet["p_value"] <= 1 and quiet["threshold"] > 0
    up = check_sequential(twin, shifted(cohort, FIT_DAYS, FIT_DAYS + 60, share=0.5), seed=1)[0]
    assert up["alarm"] and up["category"] == "baseline shift", up
    none = check_sequential(twin, seed=1)[0]  # nothing since the fit
    assert none["days"] == 0 and not none["alarm"]


@pytest.mark.slow  # a monitor process killed and rerun: CI runs it after make test
def test_monitor_killed_mid_walk_resumes(fitted, cohort, tmp_path) -> None:
    import signal
    import time

    path = copy_twin(fitted, tmp_path / "twin")
    folder = cohort.write(tmp_path / "cohort")
    out = tmp_path / "alarms.csv"
    walk = out.with_name("alarms.csv.walk.json")
    args = ["monitor", str(path), str(folder), "--start", str(day(FIT_DAYS).date()),
            "--every", "14", "--retrain-after", "30", "--out", str(out), "--quiet"]
    script = Path(sys.executable).with_name("migraine-twin")
    proc = subprocess.Popen([str(script), *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while not walk.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read().decode()
    os.kill(proc.pid, signal.SIGKILL)  # mid-walk: the second step is under way
    proc.communicate()  # reaped, its pipes closed
    done = json.loads(walk.read_text())["done"]
    first = pd.read_csv(out)
    assert (pd.to_datetime(first["date"]) <= pd.Timestamp(done)).all() and len(first) >= 1
    assert DigitalTwin.load(path) is not None and api.audit_verify(path).problems == []
    res = runner.invoke(app, args)  # the same command continues after the last step done
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert list(table["date"]) == ["2025-11-02", "2025-11-16", "2025-11-30", "2025-12-14",
                                   "2025-12-28", "2026-01-05"]
    assert not table.duplicated(["patient_id", "date"]).any()
    twin = DigitalTwin.load(path)
    assert api.audit_verify(path).problems == []
    if table["retrained"].any():  # the time criterion (30 days) retrains, keeping version 1
        assert twin.meta["version"] > 1.0 and (path / "versions").is_dir()
        assert any("time criterion" in r or "drift alarm" in r
                   for r in twin.meta["retrained_because"])
    assert (audit.events(path)["kind"] == "monitor").sum() >= 6


def test_monitor_refuses_a_start_inside_the_twin(fitted, cohort, tmp_path) -> None:
    path = copy_twin(fitted, tmp_path / "twin")
    res = runner.invoke(app, ["monitor", str(path), str(cohort.write(tmp_path / "c")),
                              "--start", str(day(100).date()), "--out",
                              str(tmp_path / "a.csv")])
    assert res.exit_code != 0 and "not after the last day the twin has seen" in res.output


@pytest.mark.slow  # CI runs it after make test (8 patients); make validate also runs 16
def test_monitor_study_names_a_baseline_shift_and_stays_quiet_on_a_stationary_cohort() -> None:
    """Issue 17: `monitor` on a cohort fitted before a mid-diary baseline shift alarms after it
    and labels those alarms "baseline shift"; on a stationary cohort it keeps its rate."""
    from migraine_bayes.evaluation.monitor_study import run

    r = run(ROOT / "reports" / "validation", 8, 240, 28, 21)
    shifted, quiet = r["baseline_shift"], r["stationary"]
    assert shifted["alarmed_after_shift"] >= 0.25, r
    assert shifted["labelled_baseline_shift"] >= 0.8, r
    assert quiet["alarmed_before_shift_or_stationary"] <= quiet["allowed_by_rate"], r


@pytest.mark.slow
def test_sequential_drift_study() -> None:
    """≥ 100 patients, half drifting: detection within 42/90/120 days against the oracles at the
    same false-alarm rate; false alarms per 28-day window ≤ 0.05.

    Issue 17 asks for 0.8 × the one-look oracle within 42 days, which is what the sequential
    oracle — a CUSUM knowing every true probability and the drift, not its day — reaches itself
    (312 patients, expected over outcomes: 0.38 against 0.8 × 0.49 = 0.39; 0.32 on the
    diaries; on these 104: 0.28 against 0.8 × 0.41 = 0.33). Measured on these 104: 0.08 /
    0.19 / 0.31 within 42 / 90 / 120 days against the sequential oracle's 0.15 / 0.60 / 0.79
    (expected over outcomes 0.28 / 0.63 / 0.75), false alarms 0.030 per 28 days, the twin's
    pre-drift count PITs uniform (sd 0.284; a null sure of the level: 0.338); on 312 (docs
    "Validation"): 0.08 / 0.23 / 0.34 against 0.32 / 0.74 / 0.82, false alarms 0.046 (0.051 on
    the stationary patients). The null carries the latent state
    forward as an AR(1), which holds the false-alarm rate and follows a lasting shift as it
    would a latent wander: later detection is lower than with the previous null (0.48 of the
    sequential oracle within 120 days on these 104, at false alarms 0.043), so the level guard
    is ≥ 0.35 of it within 120 days; with the bound's shape, the labels and a true null beating
    the twin's.
    """
    from migraine_bayes.evaluation.drift_study import sequential_study
    from migraine_bayes.store import atomic

    table, summary = sequential_study(104, seed=7)
    out = ROOT / "reports" / "validation"
    atomic.write_text(out / "sequential_drift.json", json.dumps(summary, indent=1, default=float))
    atomic.write_text(out / "sequential_drift.csv", table.to_csv(index=False))
    assert summary["false_alarms_per_28_days"] <= 0.05, summary
    assert summary["ratio_to_sequential_oracle_120"] >= 0.35, summary
    # knowing the drift day is worth more than any monitor's watching within 42 days, and the
    # all-knowing monitor bounds the twin's
    assert (summary["detected_within_42"] <= summary["sequential_oracle_expected_within_42"]
            <= summary["oracle_power_within_42"]), summary
    assert summary["baseline_alarms_labelled_baseline"] >= 0.8, summary
    assert summary["known_null_within_120"] > summary["detected_within_120"], summary


def test_psis_loo_of_a_fitted_twin(committed_twins) -> None:
    """The structure selection's criterion on a fitted twin: PSIS-LOO over every fitted day
    with a known outcome, an ELPD below the in-sample log score, a twin against itself no
    different."""
    from migraine_bayes.twin.selection import compare, loo, pointwise_log_likelihood

    twin = committed_twins["syn125-001"]
    ll = pointwise_log_likelihood(twin)
    design = twin.design()
    fitted = twin.record.coverage["syn125-001"]["diary_days"]
    assert ll.sizes["day"] == int((~np.isnan(design.y[0, :fitted])).sum())
    res = loo(twin)
    in_sample = float(np.log(np.exp(ll).mean(("chain", "draw"))).sum())
    assert np.isfinite(res.elpd_loo) and res.elpd_loo < in_sample and res.se > 0
    table = compare({"a": twin, "b": twin})
    assert table["elpd_diff"].abs().max() == 0 and table["se_diff"].max() == 0
