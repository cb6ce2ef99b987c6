"""Study-shaped synthetic headache diaries: short, staggered diaries with known truth.

Published headache-diary studies look unlike a year-long app diary: each patient keeps a diary
for 1–17 weeks (median about 4), enrolment is staggered over years, headache is recorded per day
(one row per day with headache, no onset time, multi-day headaches), covariates are few (a
medication status, an environmental index) and a treatment (a behavioural programme) starts
part-way through the diary. :func:`simulate_study` writes such a study with known truth.

Patient ``i`` has headache on day ``t`` (of their own diary) with probability ``p[i, t]``::

    logit p = a_i + phi_i * h[i, t-1] + b_i * airq_z(date) + m_i * medication[i, t]
              + delta_i * exposure_i(t) + x[i, t]
    x[i, t] = rho * x[i, t-1] + s * sqrt(1 - rho^2) * eps           (slow susceptibility)

``h[i, t-1]`` is yesterday's true headache (persistence: multi-day headaches), ``airq_z`` the
standardised environmental index of the calendar date (one series for the whole study),
``medication`` 0 (none), 1 (reduced) or 2 (continuing), ``exposure_i`` the behavioural
programme's exposure profile (:mod:`migraine_bayes.state.exposure`: ramp-up over about a week),
so ``delta_i`` is on the same log-odds scale as the twin's intervention effect. Days without a
diary entry have an unknown outcome. ``truth.json`` holds every parameter, the true headache
series and ``p_attack`` (the true probability of each diary day given the true yesterday).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from migraine_bayes import __version__
from migraine_bayes.cohort.io import Cohort
from migraine_bayes.cohort.registry import Registry, Variable
from migraine_bayes.state.exposure import TIME_CONSTANTS, exposure_profile
from migraine_bayes.store import atomic

PROGRAMME = "relaxation_training"
STUDY_VARIABLES = (
    Variable("airq", "environmental", "index (0–100)", 0, 100, "mean",
             "environmental (air-quality) index of the day"),
    Variable("medication", "treatment", "0 none / 1 reduced / 2 continuing", 0, 2, "last",
             "medication status"),
)


@dataclass(frozen=True)
class StudyConfig:
    """Knobs of :func:`simulate_study`."""

    n_patients: int = 130
    seed: int = 0
    start_date: str = "2019-01-07"
    calendar_days: int = 3 * 365  # enrolment and follow-up span
    weeks_median: float = 4.0
    weeks_range: tuple[int, int] = (1, 17)
    chronic_fraction: float = 0.12  # headache on most days
    treated_fraction: float = 0.75  # of patients with at least two weeks of diary
    programme_log_or: tuple[float, float] = (-0.6, 0.35)  # population mean, sd across patients
    entry_range: tuple[float, float] = (0.8, 0.99)  # P(diary kept on a day), per patient
    airq_dropout: float = 0.1
    medication_change_fraction: float = 0.35


@dataclass
class SyntheticStudy:
    """The study's tables plus the truth behind them."""

    cohort: Cohort
    truth: dict[str, Any]
    config: StudyConfig

    def write(self, folder: str | os.PathLike) -> Path:
        """Write the cohort files (CSV) and ``truth.json`` atomically (all or nothing)."""
        folder = Path(folder)
        with atomic.atomic_directory(folder) as tmp:
            self.cohort.write(tmp, observations_format="csv")
            (tmp / "truth.json").write_text(json.dumps(self.truth, indent=1), encoding="utf-8")
        return folder


def simulate_study(n_patients: int = 130, seed: int = 0, **options: Any) -> SyntheticStudy:
    """Simulate a study (see the module text); patient ``i`` depends only on ``seed`` and ``i``.

    Returns
    -------
    SyntheticStudy
        ``.cohort`` (tables of docs/SCHEMA.md, with the study's two declared variables),
        ``.truth`` (as written to ``truth.json``, ``outcome`` = ``headache_day``), ``.config``.
    """
    cfg = StudyConfig(n_patients=n_patients, seed=seed, **options)
    root = np.random.SeedSequence(seed)
    study_rng = np.random.default_rng(root.spawn(1)[0])
    calendar = pd.date_range(cfg.start_date, periods=cfg.calendar_days, freq="D")
    airq = _airq(study_rng, len(calendar))
    airq_z = (airq - airq.mean()) / airq.std()
    seeds = np.random.SeedSequence([seed, 1]).spawn(n_patients)
    parts: dict[str, list[pd.DataFrame]] = {k: [] for k in ("obs", "att", "tr", "pat")}
    truth_patients = []
    for i in range(n_patients):
        rng = np.random.default_rng(seeds[i])
        pid = f"st{seed % 1000:03d}-{i + 1:03d}"
        tables, truth = _patient(rng, pid, cfg, calendar, airq, airq_z)
        for key, df in tables.items():
            parts[key].append(df)
        truth_patients.append(truth)
    registry = Registry.builtin().extended(STUDY_VARIABLES)
    cohort = Cohort(
        observations=pd.concat(parts["obs"], ignore_index=True),
        attacks=pd.concat(parts["att"], ignore_index=True),
        treatments=pd.concat(parts["tr"], ignore_index=True),
        patients=pd.concat(parts["pat"], ignore_index=True),
        registry=registry, source=f"simulate_study(seed={seed})")
    truth = {
        "generator": "migraine_bayes.synthetic.study.simulate_study",
        "package_version": __version__, "config": asdict(cfg), "outcome": "headache_day",
        "model": __doc__.split("``truth.json``")[0].strip(),
        "programme": PROGRAMME,
        "patients": truth_patients,
    }
    return SyntheticStudy(cohort, truth, cfg)


def _airq(rng: np.random.Generator, n: int) -> np.ndarray:
    """A seasonal, autocorrelated environmental index in [0, 100]."""
    x = np.empty(n)
    x[0] = rng.normal(0, 8)
    for t in range(1, n):
        x[t] = 0.8 * x[t - 1] + rng.normal(0, 8 * np.sqrt(1 - 0.64))
    season = 10 * np.sin(2 * np.pi * np.arange(n) / 365.25)
    return np.clip(50 + season + x, 0, 100)


def _diary_weeks(rng: np.random.Generator, cfg: StudyConfig) -> int:
    lo, hi = cfg.weeks_range
    return int(np.clip(np.round(np.exp(rng.normal(np.log(cfg.weeks_median), 0.75))), lo, hi))


def _patient(rng: np.random.Generator, pid: str, cfg: StudyConfig, calendar: pd.DatetimeIndex,
             airq: np.ndarray, airq_z: np.ndarray) -> tuple[dict[str, pd.DataFrame], dict]:
    n = 7 * _diary_weeks(rng, cfg)
    first = int(rng.integers(0, len(calendar) - n))
    dates = calendar[first: first + n]
    days = np.arange(n)
    chronic = bool(rng.random() < cfg.chronic_fraction)
    a = float(rng.normal(0.6, 0.5) if chronic else rng.normal(-1.1, 0.6))
    phi = float(rng.normal(1.6, 0.5))
    b_air = float(rng.normal(0.25, 0.15))
    m_eff = float(rng.normal(0.2, 0.15))
    rho, s = 0.9, float(rng.uniform(0.2, 0.5))
    x = np.empty(n)
    x[0] = rng.normal(0, s)
    for t in range(1, n):
        x[t] = rho * x[t - 1] + rng.normal(0, s * np.sqrt(1 - rho**2))
    # medication: a status for the whole diary, changed once for some patients
    med = np.full(n, float(rng.choice([0, 1, 2], p=[0.3, 0.3, 0.4])))
    if n >= 14 and rng.random() < cfg.medication_change_fraction:
        med[int(rng.integers(n // 4, 3 * n // 4)):] = float(rng.choice([0, 1, 2]))
    treated = n >= 14 and bool(rng.random() < cfg.treated_fraction)
    exposure, delta, start = np.zeros(n), 0.0, None
    if treated:
        start = int(rng.integers(int(0.3 * n), int(0.6 * n) + 1))
        tau_on, tau_off = TIME_CONSTANTS["behavioral"]
        exposure = exposure_profile(days, start, None, tau_on, tau_off)
        delta = float(rng.normal(*cfg.programme_log_or))
    eta = a + b_air * airq_z[first: first + n] + m_eff * med + delta * exposure + x
    h = np.zeros(n, dtype=int)
    p = np.zeros(n)
    prev = int(rng.random() < 1 / (1 + np.exp(-a)))  # the day before the diary
    u = rng.random(n)
    for t in range(n):
        p[t] = 1 / (1 + np.exp(-(eta[t] + phi * prev)))
        h[t] = int(u[t] < p[t])
        prev = h[t]
    entry = rng.random(n) < rng.uniform(*cfg.entry_range)
    evening = dates + pd.Timedelta(hours=20)
    air_seen = rng.random(n) >= cfg.airq_dropout
    med_seen = entry & (rng.random(n) >= 0.3)  # status noted on some diary days
    obs = pd.concat([
        pd.DataFrame({"patient_id": pid, "time": evening[entry], "variable": "diary_entry",
                      "value": 1.0, "source": "paper_diary"}),
        pd.DataFrame({"patient_id": pid, "time": dates[air_seen] + pd.Timedelta(hours=12),
                      "variable": "airq", "value": np.round(airq[first: first + n][air_seen], 1),
                      "source": "monitoring_station"}),
        pd.DataFrame({"patient_id": pid, "time": evening[med_seen], "variable": "medication",
                      "value": med[med_seen], "source": "paper_diary"}),
    ], ignore_index=True)
    recorded = (h == 1) & entry
    att = _headache_days(pid, dates[recorded])
    tr = pd.DataFrame([{"patient_id": pid, "kind": "behavioral", "name": PROGRAMME,
                        "start": dates[start], "end": pd.NaT, "dose_mg": np.nan,
                        "frequency": "weekly"}] if treated else [],
                      columns=["patient_id", "kind", "name", "start", "end", "dose_mg",
                               "frequency"])
    pat = pd.DataFrame([{"patient_id": pid, "sex": "F" if rng.random() < 0.8 else "M",
                         "birth_year": int(rng.integers(1950, 2000)), "diagnosis": "1.1",
                         "diary_start": dates[0], "diary_end": dates[-1]}])
    truth = {
        "patient_id": pid, "diary_start": str(dates[0].date()), "diary_days": n,
        "chronic": chronic, "alpha": a, "persistence": phi, "airq_log_or_per_sd": b_air,
        "medication_log_or_per_level": m_eff, "latent_rho": rho, "latent_sd": s,
        "treatment": ({"name": PROGRAMME, "start_day": start, "log_odds_ratio": delta}
                      if treated else None),
        "headache": h.tolist(), "recorded": entry.astype(int).tolist(),
        "latent": [round(float(v), 4) for v in x],
        "p_attack": [round(float(v), 5) for v in p],
    }
    return {"obs": obs, "att": att, "tr": tr, "pat": pat}, truth


def _headache_days(pid: str, days: pd.DatetimeIndex) -> pd.DataFrame:
    """One ``attacks`` row per recorded headache day: the date, nothing else (typed as loaded)."""
    df = pd.DataFrame({"patient_id": pid, "onset": days.astype("datetime64[ns]"),
                       "end": pd.NaT, "peak_severity": pd.NA, "aura": pd.NA,
                       "prodrome_onset": pd.NaT, "symptoms": pd.NA, "acute_medication": pd.NA,
                       "acute_dose_mg": np.nan, "acute_time": pd.NaT, "pain_free_2h": pd.NA})
    for c in ("end", "prodrome_onset", "acute_time"):
        df[c] = df[c].astype("datetime64[ns]")
    df["peak_severity"] = df["peak_severity"].astype("Int64")
    for c in ("aura", "pain_free_2h"):
        df[c] = df[c].astype("boolean")
    return df
