from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "data" / "synthetic"
TRAIN_UNTIL = "2025-11-05"  # the committed diaries end 2026-01-05: 61 days after it


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)


def small_tables() -> dict[str, pd.DataFrame]:
    """A tiny valid cohort: two patients, ten days, as raw text tables (like a CSV read)."""
    days = pd.date_range("2024-03-01", periods=10, freq="D")
    obs = []
    for pid, base in (("p1", 4.0), ("p2", 6.0)):
        for i, d in enumerate(days):
            obs.append((pid, f"{d:%Y-%m-%d}T20:00", "stress", str(base + (i % 3))))
            obs.append((pid, f"{d:%Y-%m-%d}T12:00", "pressure", str(1010 + i)))
            obs.append((pid, f"{d:%Y-%m-%d}T08:00", "sleep_duration", "7.5"))
    observations = pd.DataFrame(obs, columns=["patient_id", "time", "variable", "value"])
    attacks = pd.DataFrame({
        "patient_id": ["p1", "p1", "p2"],
        "onset": ["2024-03-03T07:00", "2024-03-07T22:00", "2024-03-05T10:00"],
        "end": ["2024-03-03T19:00", "2024-03-08T10:00", ""],
        "peak_severity": ["2", "3", "1"],
    })
    treatments = pd.DataFrame({"patient_id": ["p2"], "kind": ["preventive"],
                               "name": ["erenumab"], "start": ["2024-03-04"], "end": [""],
                               "dose_mg": ["70"], "frequency": ["monthly"]})
    patients = pd.DataFrame({"patient_id": ["p1", "p2"], "sex": ["F", "M"],
                             "diary_start": ["2024-03-01", "2024-03-01"],
                             "diary_end": ["2024-03-10", "2024-03-10"]})
    return {"observations": observations, "attacks": attacks, "treatments": treatments,
            "patients": patients}


def write_tables(folder: Path, tables: dict[str, pd.DataFrame]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.to_csv(folder / f"{name}.csv", index=False)
    return folder


@pytest.fixture
def small_cohort_dir(tmp_path: Path) -> Path:
    return write_tables(tmp_path / "cohort", small_tables())


def _run_folder(tmp_path_factory) -> Path:
    """The temporary folder of this test run, shared by its xdist workers (each worker's
    base folder sits in it); without xdist the base folder itself (its parent outlives the
    run)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def committed_twins(tmp_path_factory) -> dict:
    """One twin per patient of the committed cohort (model compiled once), shared by tests.

    Fitted once per test run, in two halves on one design (:func:`fit_patients`'s ``only``)
    saved under the run's shared temporary folder; every test process loads them.
    """
    from filelock import FileLock

    from migraine_bayes.cohort.io import load_cohort
    from migraine_bayes.twin.core import DigitalTwin, fit_patients

    shared = _run_folder(tmp_path_factory) / "committed_twins"
    cohort = load_cohort(COMMITTED)
    ids = cohort.patient_ids
    halves = [ids[0::2], ids[1::2]]
    # two halves, each fitted once under its own lock: xdist's two workers each take the
    # half of their number first, then wait for (or fit) the other
    first = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0) % 2
    for k in (first, 1 - first):
        with FileLock(f"{shared}.{k}.lock"):
            done = shared / f"DONE.{k}"
            if not done.exists():
                for pid, twin in fit_patients(cohort, only=halves[k]).items():
                    twin.save(shared / pid)
                done.write_text(" ".join(halves[k]))
    return {pid: DigitalTwin.load(shared / pid) for pid in ids}


@pytest.fixture(scope="session")
def small_backtest(tmp_path_factory):
    """Backtest of three committed patients (one cohort twin, observed information), on disk.

    Run once per test run, like :func:`committed_twins`: the first test process backtests
    and keeps the result (its tables pickled, its twins saved) under the run's shared
    temporary folder; the others load the same result.
    """
    import pickle

    from filelock import FileLock

    from migraine_bayes import api
    from migraine_bayes.cohort.io import load_cohort
    from migraine_bayes.twin.core import DigitalTwin

    shared = _run_folder(tmp_path_factory) / "small_backtest"
    out = shared / "backtest.csv"
    with FileLock(str(shared) + ".lock"):
        done = shared / "DONE"
        if done.exists():
            result = pickle.loads((shared / "result.pkl").read_bytes())
            keys = [line.split() for line in done.read_text().splitlines()]
            twins = {name: DigitalTwin.load(shared / "twins" / name)
                     for name in {k for *_, k in keys}}
            result.twins = [{} for _ in range(1 + max((int(o) for o, *_ in keys), default=-1))]
            for origin, pid, name in keys:
                result.twins[int(origin)][pid] = twins[name]
            return result, out
        shared.mkdir(parents=True, exist_ok=True)
        cohort = load_cohort(COMMITTED)
        result = api.backtest(COMMITTED, out, TRAIN_UNTIL, patients=cohort.patient_ids[:3],
                              information="observed", seed=1, refit_every=61, draws=500,
                              structure="fixed")
        names, keys = {}, []
        for origin, twins in enumerate(result.twins):
            for pid, twin in twins.items():
                if id(twin) not in names:
                    names[id(twin)] = f"{origin}-{len(names)}"
                    twin.save(shared / "twins" / names[id(twin)])
                keys.append(f"{origin} {pid} {names[id(twin)]}")
        kept = result.twins
        result.twins = []
        (shared / "result.pkl").write_bytes(pickle.dumps(result))
        result.twins = kept
        done.write_text("\n".join(keys))
    return result, out
