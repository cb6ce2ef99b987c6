"""Study-shaped diaries: short, staggered diaries, headache days, patients new at the split."""

from __future__ import annotations

import filecmp
import json

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from migraine_bayes.cohort.io import Cohort, load_cohort
from migraine_bayes.cohort.truncate import truncate
from migraine_bayes.evaluation import backtest
from migraine_bayes.evaluation.online_baselines import online_forecasts, prior_days
from migraine_bayes.interventions import compare, parse_scenarios
from migraine_bayes.model.inference import SamplerSettings
from migraine_bayes.state import build_panel
from migraine_bayes.synthetic.study import simulate_study
from migraine_bayes.twin.core import DigitalTwin

STUDY = ROOT / "data" / "study"
STUDY_SEED = 20261126  # `make data`
QUICK = SamplerSettings(draws=300, tune=300, chains=2, cores=2)
SPLIT = "2020-06-30"


@pytest.fixture(scope="module")
def study() -> Cohort:
    return load_cohort(STUDY)


@pytest.fixture(scope="module")
def short_twin(study: Cohort) -> DigitalTwin:
    """A cohort twin of sixteen 1–7-week diaries, fitted with the default settings."""
    periods = study.diary_periods()
    days = (periods["end"] - periods["start"]).dt.days + 1
    ids = sorted(days[days <= 49].index[:16])
    return DigitalTwin.fit_cohort(study, ids, outcome="headache_day")


# ---------------------------------------------------------------- the generator
def test_the_committed_study_is_what_the_generator_makes(tmp_path) -> None:
    simulate_study(130, seed=STUDY_SEED).write(tmp_path / "study")
    for name in ("observations.csv", "attacks.csv", "treatments.csv", "patients.csv",
                 "variables.csv", "truth.json"):
        assert filecmp.cmp(tmp_path / "study" / name, STUDY / name, shallow=False), name
    assert sum(f.stat().st_size for f in STUDY.iterdir()) < 2_000_000


def test_the_study_looks_like_a_published_diary_study(study: Cohort) -> None:
    truth = json.loads((STUDY / "truth.json").read_text())
    periods = study.diary_periods()
    weeks = ((periods["end"] - periods["start"]).dt.days + 1) / 7
    assert 100 <= len(periods) <= 150
    assert weeks.min() >= 1 and weeks.max() <= 17 and 3 <= weeks.median() <= 5
    assert (periods["start"].max() - periods["start"].min()).days > 2 * 365  # staggered
    rates = np.array([np.mean(p["headache"]) for p in truth["patients"]])
    assert 0.3 <= np.median(rates) <= 0.7 and (rates > 0.75).sum() >= 5
    runs = [np.diff(np.flatnonzero(np.diff(np.r_[0, p["headache"], 0])))[::2].max()
            for p in truth["patients"] if any(p["headache"])]
    assert np.median(runs) >= 2  # multi-day headaches
    att = study.attacks
    assert att["end"].isna().all() and (att["onset"] == att["onset"].dt.normalize()).all()
    assert set(study.observations["variable"]) == {"diary_entry", "airq", "medication"}
    treated = [p for p in truth["patients"] if p["treatment"]]
    assert len(treated) >= 0.5 * len(periods)
    starts = np.array([p["treatment"]["start_day"] / p["diary_days"] for p in treated])
    assert (starts > 0.2).all() and (starts < 0.7).all()  # part-way through each diary
    effects = np.array([p["treatment"]["log_odds_ratio"] for p in treated])
    assert effects.std() > 0.2  # heterogeneous


# ---------------------------------------------------------------- short diaries
def test_short_diaries_fit_with_every_check_passing(short_twin: DigitalTwin) -> None:
    diag = short_twin.meta["diagnostics"]
    assert diag["ok"] and diag["divergences"] == 0, diag
    days = [c["diary_days"] for c in short_twin.meta["coverage"].values()]
    assert max(days) <= 49 and min(days) <= 14
    # headache days persist: the yesterday term is learned positive, not assumed negative
    assert float(short_twin.posterior.posterior["mu_gamma"].mean()) > 0.5


# ---------------------------------------------------------------- a patient from day one
def _new_patients(study: Cohort, twin: DigitalTwin, n: int = 1) -> list[str]:
    periods = study.diary_periods()
    days = (periods["end"] - periods["start"]).dt.days + 1
    return sorted(p for p in days[days >= 35].index if p not in twin.patients)[:n]


def test_new_patients_are_forecast_from_the_population_then_learned(
        study: Cohort, short_twin: DigitalTwin) -> None:
    new = _new_patients(study, short_twin, 4)
    cohort = study.subset([*short_twin.patients, *new])
    starts = study.diary_periods()["start"]
    width = {0: [], 28: []}
    for pid in new:
        for k in width:
            day = starts[pid] + pd.Timedelta(days=k)
            f = short_twin.forecast(cohort, date=str(day.date()), horizon=7)
            rows = f[f["patient_id"] == pid]
            assert rows.iloc[0]["date"] == day.date()
            assert rows.iloc[0]["issued_at"] == (day - pd.Timedelta(days=1)).date()
            width[k].append((rows["p_high"] - rows["p_low"]).mean())
    assert min(width[0]) > 0.4  # the population predictive: wide
    assert np.mean(width[28]) < 0.85 * np.mean(width[0])  # ... narrowing with their days
    assert not set(new) & set(short_twin.patients)  # forecasting does not change the twin


def test_update_and_simulate_a_patient_with_no_day_yet(study: Cohort,
                                                       short_twin: DigitalTwin) -> None:
    import copy

    twin = copy.deepcopy(short_twin)
    pid = _new_patients(study, twin)[0]
    start = study.diary_periods().loc[pid, "start"]
    before = _join(study.subset(twin.patients),
                   truncate(study.subset([pid]), start - pd.Timedelta(days=1)))
    assert before.diary_periods().loc[pid, "end"] < start  # 0 diary days
    table = twin.update(before, seed=1)
    assert pid in twin.patients and table.empty
    assert twin.meta["admitted"] == [pid]
    cleaner_air = parse_scenarios([{"name": "cleaner_air", "type": "behavioral", "params": {
        "behavior": "covariate", "variable": "environmental.airq", "operation": "shift",
        "value": -10.0}}])
    run = compare(twin, cleaner_air, horizon_days=14, n_draws=500, seed=0, patients=[pid])[0]
    base = run.summary("baseline")["expected_attacks"]
    assert 0 < base["mean"] < 14 and base["high"] - base["low"] > 2  # the population: wide
    after = _join(study.subset(twin.patients[:-1]),
                  truncate(study.subset([pid]), start + pd.Timedelta(days=13)))
    table = twin.update(after, seed=1)
    assert set(table["patient_id"]) == {pid} and len(table) == 14


def _join(a: Cohort, b: Cohort) -> Cohort:
    """Two cohorts' patients in one (same registry)."""
    return Cohort(*(pd.concat([getattr(a, t), getattr(b, t)], ignore_index=True)
                    for t in ("observations", "attacks", "treatments", "patients")),
                  a.registry, "joined")


# ---------------------------------------------------------------- online baselines
def test_prior_strength_is_recovered_from_beta_binomial_counts(rng) -> None:
    m, r0 = 20.0, 0.4
    rates = rng.beta(m * r0, m * (1 - r0), 400)
    n = rng.integers(7, 60, 400)
    k = rng.binomial(n, rates)
    assert 12 < prior_days(k, n, r0) < 32


def test_online_baselines_use_only_earlier_outcomes(study: Cohort) -> None:
    ids = study.patient_ids[:6]
    panel = build_panel(study, patients=ids)
    train = np.full(6, 10)
    rows = pd.DataFrame([{"patient_id": p, "day": d,
                          "date": pd.Timestamp(panel["date"].values[i, d]).date(),
                          "attack": 0.0} for i, p in enumerate(ids) for d in range(10, 20)])
    a = online_forecasts(panel, "headache_day", train, rows)
    changed = panel.copy(deep=True)
    changed["headache_day"].values[0, 15] = 1 - np.nan_to_num(
        changed["headache_day"].values[0, 15])
    b = online_forecasts(changed, "headache_day", train, rows)
    first = (a["patient_id"] == ids[0]).to_numpy()
    date15 = rows.loc[(rows["patient_id"] == ids[0]) & (rows["day"] == 15), "date"].iloc[0]
    upto = first & (a["date"] <= date15).to_numpy()
    np.testing.assert_array_equal(a.loc[upto, "p_attack"], b.loc[upto, "p_attack"])
    assert (a.loc[first & ~upto, "p_attack"] != b.loc[first & ~upto, "p_attack"]).any()


# ---------------------------------------------------------------- the study backtest
def _awkward_cohort(study: Cohort) -> tuple[Cohort, str, str, str]:
    """Study patients around the split 2020-06-30, up to 45 days after it.

    Six diaries end before the split, seven span it (one with a three-week gap after it),
    five start after it (one cut to a single day).
    """
    periods = study.diary_periods()
    cut, stop = pd.Timestamp(SPLIT), pd.Timestamp(SPLIT) + pd.Timedelta(days=45)
    before = list(periods[periods["end"] <= cut].sort_values("end").index[-6:])
    spanning = list(periods[(periods["start"] <= cut) & (periods["end"] > cut)].index)
    later = list(periods[(periods["start"] > cut) & (periods["start"] <= stop)]
                 .sort_values("start").index)
    gap = max(spanning, key=lambda p: periods.loc[p, "end"])
    one_day, starts_after = later[1], later[0]
    c = truncate(study.subset(before + spanning + later), stop)
    s1 = periods.loc[one_day, "start"]
    g0 = cut + pd.Timedelta(days=5)
    g1 = g0 + pd.Timedelta(days=21)

    def keep(df: pd.DataFrame, col: str) -> pd.DataFrame:
        t = df[col]
        drop = ((df["patient_id"] == one_day) & (t.dt.normalize() > s1)) | (
            (df["patient_id"] == gap) & (t >= g0) & (t < g1))
        return df[~drop].reset_index(drop=True)

    patients = c.patients.copy()
    patients.loc[patients["patient_id"] == one_day, "diary_end"] = s1
    cohort = Cohort(keep(c.observations, "time"), keep(c.attacks, "onset"),
                    c.treatments[c.treatments["patient_id"] != one_day].reset_index(drop=True),
                    patients, c.registry, "awkward study")
    return cohort, one_day, starts_after, gap


@pytest.mark.filterwarnings("ignore::migraine_bayes.model.inference.InferenceWarning")  # quick fits
def test_a_study_backtest_forecasts_every_patient_from_their_first_day(study: Cohort) -> None:
    cohort, one_day, starts_after, gap = _awkward_cohort(study)
    truth = json.loads((STUDY / "truth.json").read_text())
    result = backtest(cohort, SPLIT, information="ex_ante", settings=QUICK,
                      truth=truth, outcome="headache_day", refit_every=30, seed=2)
    f = result.forecasts
    assert {one_day, starts_after, gap} <= set(f["patient_id"])
    assert (f["date"] > pd.Timestamp(SPLIT).date()).all()
    assert ((pd.to_datetime(f["date"]) - pd.to_datetime(f["issued_at"]))
            == pd.Timedelta(days=1)).all()
    first = f[f["patient_id"] == starts_after].iloc[0]
    assert first["history_days"] == 0 and first["p_high"] - first["p_low"] > 0.3
    assert len(f[f["patient_id"] == one_day]) == 1
    assert f[f["patient_id"] == gap]["attack"].isna().sum() == 21  # the gap: no outcome
    assert f["origin"].nunique() == 2  # refitted after 30 days
    models = set(result.scores["model"])
    assert {"twin", "running_rate", "running_logistic", "oracle", "oracle_filtered"} <= models
    assert set(result.by_history["history"]) >= {"0", "1-7"}
    assert result.scores.set_index("model").loc["twin", "auc"] > 0.6
    assert {"patient_id", "model", "auc"} <= set(result.by_patient.columns)


# ---------------------------------------------------------------- make validate
STUDY_SPLIT = "2021-01-05"  # the last third of the study's calendar (2019-01-14 – 2022-01-02)


@pytest.mark.slow
def test_the_study_backtest_beats_the_online_baselines() -> None:
    """The calendar split of ``data/study``: tables to ``reports/validation/``."""
    from migraine_bayes import api

    out = ROOT / "reports" / "validation" / "study_backtest.csv"
    result = api.backtest(STUDY, out, STUDY_SPLIT, outcome="headache_day", seed=0,
                          structure="fixed")
    s = result.scores.set_index("model")
    for baseline in ("running_rate", "running_logistic"):
        assert s.loc["twin", "auc"] > s.loc[baseline, "auc"], s
        assert s.loc["twin", "brier"] < s.loc[baseline, "brier"], s
    early = result.predictions.merge(
        result.forecasts[["patient_id", "date", "history_days"]], on=["patient_id", "date"])
    early = early[(early["model"] == "twin") & (early["history_days"] <= 7)]
    from migraine_bayes.metrics import expected_calibration_error

    assert expected_calibration_error(early["attack"].to_numpy(),
                                      early["p_attack"].to_numpy()) <= 0.05


@pytest.mark.slow
def test_the_study_programme_effect_is_covered() -> None:
    """90% intervals of the programme's effect cover the truth in 80–97% of treated patients."""
    truth = json.loads((STUDY / "truth.json").read_text())
    twin = DigitalTwin.fit_cohort(load_cohort(STUDY), outcome="headache_day")
    assert twin.meta["diagnostics"]["ok"], twin.meta["diagnostics"]
    delta = twin.posterior.posterior["delta"].sel(intervention="relaxation_training")
    covered = []
    for p in truth["patients"]:
        if p["treatment"]:
            lo, hi = np.quantile(delta.sel(patient=p["patient_id"]).values, [0.05, 0.95])
            covered.append(lo <= p["treatment"]["log_odds_ratio"] <= hi)
    assert 0.8 <= np.mean(covered) <= 0.97, np.mean(covered)


def test_cli_forecasts_a_patient_the_twin_has_not_seen(tmp_path, study: Cohort,
                                                        short_twin: DigitalTwin) -> None:
    from typer.testing import CliRunner

    from migraine_bayes.cli import app

    pid = _new_patients(study, short_twin)[0]
    folder = study.subset([*short_twin.patients, pid]).write(tmp_path / "cohort")
    short_twin.save(tmp_path / "twin")
    start = study.diary_periods().loc[pid, "start"]
    out = tmp_path / "f.csv"
    res = CliRunner().invoke(app, ["forecast", str(tmp_path / "twin"), "--cohort", str(folder),
                                   "--date", str(start.date()), "--out", str(out)])
    assert res.exit_code == 0, res.output
    f = pd.read_csv(out)
    row = f[f["patient_id"] == pid].iloc[0]
    assert row["date"] == str(start.date()) and 0 < row["p_attack"] < 1
    assert DigitalTwin.load(tmp_path / "twin").patients == short_twin.patients
