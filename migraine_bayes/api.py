"""Python API behind the command line: one function per ``migraine-twin`` command."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .io import Cohort, load_cohort
from .state import build_panel, summarise_panel
from .synthetic import SyntheticCohort, simulate_cohort


def validate_data(cohort: str | os.PathLike) -> Cohort:
    """Load and validate a cohort folder; raises ``InputDataError`` listing every problem."""
    return load_cohort(cohort)


def generate(out: str | os.PathLike, patients: int = 12, days: int = 365, seed: int = 0,
             observations_format: str = "parquet", **options: object) -> SyntheticCohort:
    """Simulate a synthetic cohort and write it (SCHEMA.md files plus ``truth.json``) to ``out``."""
    sc = simulate_cohort(patients, days, seed, **options)
    sc.write(out, observations_format=observations_format)
    return sc


def cohort_summary(cohort: str | os.PathLike | Cohort) -> pd.DataFrame:
    """Per-patient summary (days, known days, attacks/month, coverage) of a cohort."""
    if not isinstance(cohort, Cohort):
        cohort = load_cohort(cohort)
    return summarise_panel(build_panel(cohort))


def demo(out: str | os.PathLike = "reports/demo", seed: int = 20261125) -> pd.DataFrame:
    """Generate a synthetic cohort under ``out/cohort``, load it and summarise it."""
    folder = Path(out) / "cohort"
    generate(folder, patients=12, days=365, seed=seed)
    return cohort_summary(folder)
