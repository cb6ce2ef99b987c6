"""`monitor` over months on generated cohorts (:mod:`migraine_bayes.evaluation.monitor_study`).

A file of its own: the study takes ~8 minutes, and `.ci/run` spreads its slow checks over the
cores file by file, so it runs beside the others instead of after them.
"""

from __future__ import annotations

import pytest
from conftest import ROOT


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
