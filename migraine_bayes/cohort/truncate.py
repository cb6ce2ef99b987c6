"""Cut a cohort at a day."""

from __future__ import annotations

import pandas as pd

from migraine_bayes.cohort.io import Cohort


def truncate(cohort: Cohort, until: pd.Timestamp) -> Cohort:
    """The cohort with everything after the day ``until`` removed (diary periods end there)."""
    end = until.normalize() + pd.Timedelta(days=1)
    patients = cohort.patients.copy()
    if "diary_end" in patients:
        patients["diary_end"] = patients["diary_end"].where(
            patients["diary_end"].isna() | (patients["diary_end"] < end), until.normalize())
    return Cohort(cohort.observations[cohort.observations["time"] < end].reset_index(drop=True),
                  cohort.attacks[cohort.attacks["onset"] < end].reset_index(drop=True),
                  cohort.treatments[cohort.treatments["start"] < end].reset_index(drop=True),
                  patients, cohort.registry, cohort.source, list(cohort.notices))
