"""Two-stage cohort fits on Dask workers (issue 16), and the population insights' mixture.

The distributed path must give the in-process path's posteriors (same seeds), survive a worker
killed mid-run, and resume an interrupted fit without refitting finished patients.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from migraine_bayes.analysis.insights import (
    attack_rates,
    deconvolved_mixture,
    subgroups,
    trigger_shares,
)
from migraine_bayes.model.inference import SamplerSettings
from migraine_bayes.state import build_panel
from migraine_bayes.synthetic.cohort import simulate_cohort
from migraine_bayes.twin.cluster import ClusterOptions
from migraine_bayes.twin.record import HORIZON_DAYS
from migraine_bayes.twin.two_stage import PLAN, POPULATION, WorkDir, fit_two_stage

SETTINGS = SamplerSettings(draws=100, tune=100, chains=2, cores=1, seed=3)
POPULATION_SETTINGS = SamplerSettings(draws=150, tune=150, chains=2, cores=2, seed=3)


class Stop(Exception):
    """Raised from the progress callback to interrupt a fit."""


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(n_patients=4, n_days=90, seed=161).cohort


def _fit(cohort, work, cluster_options, progress=None):
    return fit_two_stage(cohort, settings=SETTINGS, population_settings=POPULATION_SETTINGS,
                         cluster_options=cluster_options, work_dir=work, progress=progress)


def _with_population(source, target):
    """A work directory holding only ``source``'s plan and stage-1 posterior."""
    target.mkdir()
    for name in (PLAN, POPULATION):
        shutil.copy2(source / name, target / name)
    return target


@pytest.fixture(scope="module")
def in_process(cohort, tmp_path_factory):
    work = tmp_path_factory.mktemp("two-stage") / "work"
    twin = _fit(cohort, work, ClusterOptions(workers=0, population_patients=3))
    return twin, work


@pytest.fixture(scope="module")
def dask_cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        yield cluster


def _on(cluster):
    """The stage-2 options of the cluster (the in-process fit's stage-1 size: same plan)."""
    return ClusterOptions(scheduler=cluster.scheduler_address, population_patients=3)


def _same_posteriors(a, b):
    pa, pb = a.posterior.posterior, b.posterior.posterior
    assert set(pa.data_vars) == set(pb.data_vars)
    for name in pa.data_vars:
        np.testing.assert_array_equal(pa[name].values, pb[name].values, err_msg=name)


@pytest.mark.slow  # two-stage fits (make test's budget): CI runs them after it
def test_in_process_twin_is_a_cohort_twin(in_process, cohort):
    twin, work = in_process
    fitting = twin.meta["fitting"]
    assert twin.meta["hierarchical"] and twin.patients == cohort.patient_ids
    assert len(fitting["population_patients"]) == 3
    assert set(fitting["patients"]) == set(cohort.patient_ids) and not fitting["not_fitted"]
    post = twin.posterior.posterior
    assert post["lengthscale"].dims == ("chain", "draw", "patient")  # each patient's own
    assert "mu_alpha" in post and post["mu_alpha"].sizes["draw"] == post["alpha"].sizes["draw"]
    table = twin.forecast(horizon=2)
    assert len(table) == 8 and table["p_attack"].between(0, 1).all()
    for pid, rows in table.groupby("patient_id"):  # checks_ok is each patient's own
        assert (rows["checks_ok"] == fitting["patients"][pid]["ok"]).all()
    new = simulate_cohort(n_patients=1, n_days=30, seed=999).cohort  # an unseen patient
    panel = build_panel(new, horizon_days=HORIZON_DAYS)
    assert len(twin.forecast_panel(panel)) == 1
    assert len(list((work / "patients").glob("*.nc"))) == 4


@pytest.mark.slow  # two-stage fits (make test's budget): CI runs them after it
def test_workers_give_the_in_process_posteriors(in_process, cohort, dask_cluster, tmp_path):
    twin, work = in_process
    other = _fit(cohort, _with_population(work, tmp_path / "work"),
                 _on(dask_cluster))
    _same_posteriors(twin, other)
    workers = {f["worker"] for f in other.meta["fitting"]["patients"].values()}
    assert len(workers) == 2 and not any(w.endswith(f":{os.getpid()}") for w in workers)


@pytest.mark.slow  # two-stage fits (make test's budget): CI runs them after it
def test_a_killed_worker_does_not_lose_a_patient(in_process, cohort, dask_cluster, tmp_path):
    from distributed import Client

    twin, work = in_process
    killed = threading.Event()
    with Client(dask_cluster) as client:
        def kill_a_busy_worker(stage, done=None, total=None):
            if done == 1 and not killed.is_set():
                busy = [a for a, keys in client.processing().items() if keys]
                pids = client.run(os.getpid)
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.set()

        other = _fit(cohort, _with_population(work, tmp_path / "work"),
                     _on(dask_cluster),
                     progress=kill_a_busy_worker)
        client.wait_for_workers(2, timeout=120)
    assert killed.is_set()
    assert set(other.meta["fitting"]["patients"]) == set(cohort.patient_ids)
    assert not other.meta["fitting"]["not_fitted"]
    _same_posteriors(twin, other)  # the lost task was rerun with its own seed


@pytest.mark.slow  # two-stage fits (make test's budget): CI runs them after it
def test_an_interrupted_fit_resumes(in_process, cohort, tmp_path):
    twin, work = in_process
    resumed = _with_population(work, tmp_path / "work")
    opts = ClusterOptions(workers=0, population_patients=3)

    def stop_after_two(stage, done=None, total=None):
        if done == 2 and stage.startswith("stage 2"):
            raise Stop

    with pytest.raises(Stop):
        _fit(cohort, resumed, opts, progress=stop_after_two)
    assert len(list((resumed / "patients").glob("*.nc"))) == 2
    seen = []
    again = _fit(cohort, resumed, opts,
                 progress=lambda s, d=None, t=None: seen.append(d) if s.startswith(
                     "stage 2") else None)
    assert seen == [2, 3, 4]  # only the two missing patients were fitted
    _same_posteriors(twin, again)


@pytest.mark.slow  # two-stage fits (make test's budget): CI runs them after it
def test_work_of_other_data_or_settings_is_not_reused(in_process, tmp_path):
    _twin, work = in_process
    copy = _with_population(work, tmp_path / "work")
    key = json.loads((copy / PLAN).read_text())["key"]
    assert WorkDir(copy, key).path.joinpath(POPULATION).is_file()  # same plan: kept
    WorkDir(copy, "another cohort or other settings")
    assert not (copy / POPULATION).exists() and (copy / "patients").is_dir()


def test_deconvolved_mixture_finds_known_groups():
    rng = np.random.default_rng(0)
    centres = np.array([[0.6, 0.5, 0.0, 0.0], [0.0, 0.0, 0.7, 0.5], [0.0, 0.0, 0.0, 0.0]])
    truth = np.repeat(np.arange(3), 60)
    noise = rng.uniform(0.05, 0.25, size=(truth.size, 4)) ** 2  # each patient's own precision
    profiles = centres[truth] + rng.normal(0, 0.05, (truth.size, 4))
    m = profiles + rng.normal(0, np.sqrt(noise))
    fits = {k: deconvolved_mixture(m, noise, k, seed=1) for k in (1, 2, 3, 4, 5)}
    best = min(fits, key=lambda k: fits[k].bic)
    assert best == 3
    assert adjusted_rand_score(truth, fits[3].responsibilities.argmax(1)) >= 0.9
    # deconvolved: the subgroups' intrinsic spread is near 0.05², not inflated by the noise
    assert np.median(np.sqrt(fits[3].variances)) < 0.1


@pytest.mark.slow  # two-stage fits (make test's budget): CI runs them after it
def test_population_insights_of_a_twin(in_process):
    twin, _ = in_process
    groups = subgroups(twin, max_k=2)
    assert len(groups.labels) == 4 and set(groups.bic) == {1, 2}
    rates = attack_rates(twin)
    assert set(rates["by"]) == {"season", "weather"}
    assert ((rates["low"] <= rates["rate_30d"]) & (rates["rate_30d"] <= rates["high"])).all()
    shares = trigger_shares(twin)
    assert shares["share_mean"].between(0, 1).all() and (shares["patients"] <= 4).all()


@pytest.mark.slow  # two-stage fits (make test's budget): CI runs them after it
def test_cli_two_stage_fit(tmp_path):
    from typer.testing import CliRunner

    from migraine_bayes.cli import app
    from migraine_bayes.twin.core import DigitalTwin

    simulate_cohort(n_patients=3, n_days=60, seed=163).write(tmp_path / "c")
    out = tmp_path / "twin"
    res = CliRunner().invoke(app, ["fit", str(tmp_path / "c"), "--out", str(out), "--workers",
                                   "0", "--population-patients", "2", "--draws", "100",
                                   "--chains", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "two-stage fit: population on 2 patient(s)" in res.stdout
    assert not (tmp_path / ".twin.fitting").exists()  # removed once the twin is saved
    twin = DigitalTwin.load(out)
    assert twin.meta["fitting"]["method"] == "two-stage" and len(twin.patients) == 3
    bad = CliRunner().invoke(app, ["fit", str(tmp_path / "c"), "--out", str(tmp_path / "t2"),
                                   "--scheduler", "localhost:1"])
    assert bad.exit_code == 2 and "tcp://HOST:PORT" in bad.output
