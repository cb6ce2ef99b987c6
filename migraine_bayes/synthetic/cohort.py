"""Synthetic migraine cohorts with known parameters, grounded in published effect sizes.

The generator writes the files of docs/SCHEMA.md plus ``truth.json`` (every patient's true
parameters, latent state and true daily attack probability), so models, forecasts and
counterfactuals can be checked against a known answer.

Daily attack onset for patient i on day t is Bernoulli(p[i, t]) with::

    logit p = alpha_i + sum_k f_k(z[i, t, k]; beta_ik) + gamma_i * exp(-(d - 1) / tau_r)
              + delta_i * exposure_i(t) + x[i, t] + drift_i(t)
    x[i, t] = rho_i * x[i, t-1] + sigma_i * eps,   d = days since the last onset

Grounding (see ``docs/REFERENCES.md``):

- Frequency: episodic migraine, 2–8 attacks a month (trial baselines of 5.4 attacks/month in
  MIGR-001 and 8–9 monthly migraine days in STRIVE/EVOLVE/HALO-EM); attacks cluster in time
  (Dumkrieger et al., Headache 2024) — here through the slow latent AR(1) state — and a
  refractory dip follows each attack.
- Menstruation: 2.5x risk on days 1–3 of menses, 1.7x on days −2..−1 (Neurology 2004, 155
  women); N1-Headache perimenstrual OR 1.34. Here sensitive women get OR ≈ 2.2 on bleeding days,
  30% of women are insensitive (OR 1).
- Stress let-down: OR 1.5–1.9 for a drop in stress (Lipton et al., Neurology 2014) — here
  OR ≈ 1.35 per point of drop, ≈ 1.8 for a 2-point drop, in 60% of patients.
- Sleep: deviation from usual sleep matters more than hours (Stanyer et al. 2023); low sleep
  efficiency OR 1.39 (Bertisch et al. 2020) — here OR ≈ 1.5 per hour below usual (50%).
- Alcohol: ≥ 5 drinks OR ≈ 2, moderate intake no effect (Vives-Mestres et al., Headache 2022) —
  a threshold effect in 40% of patients.
- Pressure: attacks cluster after falls > 5 hPa (Kimoto 2011; Okuma 2015); pooled effects small,
  individual sensitivity varies (Hoffmann 2015) — OR ≈ 1.6 per 5 hPa fall in 35% of patients.
- Skipped meals OR ≈ 1.7 in 40%; stress level itself weak (OR ≈ 1.12 per point in 30%).
- Decoys with no effect: caffeine, screen time, humidity, temperature, sleep quality.
- Premonitory symptoms precede about 70% of attacks (Giffin et al., Neurology 2003: tiredness,
  stiff neck, yawning), mostly within the last 12 h; HRV dips and heart rate rises before onset.
- Preventives: erenumab, galcanezumab, topiramate, propranolol — patient-level log odds ratios
  with responders and non-responders around trial effects (STRIVE 50% responders 43% vs 27%;
  MIGR-001 5.4 → 3.3 attacks/month), ramping up over weeks.
- Acute: sumatriptan 2-h pain-free ≈ 32% vs 11% without (Cochrane CD008615), rizatriptan ≈ 40%;
  each patient's own rates, attack course (prodrome, aura, headache, postdrome, severity) from
  :mod:`migraine_bayes.synthetic.course`, on a random stream of its own.
- The measured state evolves with lagged cross-effects (``STATE_DYNAMICS``): a short night
  raises the next day's caffeine and resting heart rate and lowers HRV, a stressful day lowers
  the next night's sleep quality — on decoys and physiology only, so the attack process is the
  same as without them.
- Missingness: random item dropout, wearable device-off gaps of days, diary fatigue (entry
  probability decaying from ≈ 0.97 to a patient-specific plateau), some complete diaries.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from migraine_bayes import __version__
from migraine_bayes.cohort.io import Cohort
from migraine_bayes.cohort.registry import Registry
from migraine_bayes.state.derived import pressure_change, sleep_debt, stress_letdown
from migraine_bayes.state.exposure import TIME_CONSTANTS, exposure_profile
from migraine_bayes.store import atomic
from migraine_bayes.synthetic.course import ACUTE, TREATED_SHARE, attack_rows, draw_course

DAYS_PER_MONTH = 30.44
SYMPTOM_PRODROME_P = {"fatigue": 0.5, "yawning": 0.35, "neck_stiffness": 0.35,
                      "mood_change": 0.25, "photophobia": 0.3, "food_craving": 0.15}
PREVENTIVES = {  # name: (dose mg, frequency, mean log OR in responders, in non-responders)
    "erenumab": (70.0, "monthly", -0.75, -0.10),
    "galcanezumab": (120.0, "monthly", -0.80, -0.10),
    "topiramate": (100.0, "daily", -0.70, -0.05),
    "propranolol": (160.0, "daily", -0.60, -0.05),
}


@dataclass(frozen=True)
class TriggerSpec:
    """A true trigger: which panel feature it acts through and how.

    ``shape``: ``linear`` (log OR per unit), ``threshold`` (log OR when value ≥ threshold),
    ``fall`` (log OR per unit of decrease, i.e. of ``max(0, -value)``). ``contrast`` is the
    clinically meaningful change at which ``odds_ratio`` is quoted in ``truth.json``.
    """

    feature: str
    shape: str
    contrast: float
    p_sensitive: float
    median_or: float  # odds ratio at `contrast` in sensitive patients
    spread: float = 0.3  # sd of log OR across sensitive patients, as a fraction of log(median)
    threshold: float = 0.0
    women_only: bool = False


TRIGGERS: tuple[TriggerSpec, ...] = (
    TriggerSpec("trigger.menstruation", "linear", 1.0, 0.7, 2.2, women_only=True),
    TriggerSpec("derived.stress_letdown", "linear", 2.0, 0.6, 1.8),
    TriggerSpec("derived.sleep_debt", "linear", 1.0, 0.5, 1.5),
    TriggerSpec("trigger.alcohol", "threshold", 1.0, 0.4, 2.0, threshold=5.0),
    TriggerSpec("derived.pressure_change", "fall", 5.0, 0.35, 1.6),
    TriggerSpec("trigger.skipped_meal", "linear", 1.0, 0.4, 1.7),
    TriggerSpec("trigger.stress", "linear", 1.0, 0.3, 1.12),
)
STATE_DYNAMICS = (  # (from, to, lag in days, change of `to` per unit of `from` above its mean)
    ("trigger.sleep_duration", "trigger.caffeine", 1, -40.0),
    ("trigger.stress", "trigger.sleep_quality", 1, -0.3),
    ("trigger.sleep_duration", "physiological.resting_hr", 1, -1.0),
    ("trigger.sleep_duration", "physiological.hrv_rmssd", 1, 0.04),  # on log HRV
)
DECOYS = ("trigger.caffeine", "trigger.screen_time", "environmental.humidity",
          "environmental.temperature", "trigger.sleep_quality")


@dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of :func:`simulate_cohort` (all fractions are of patients unless said otherwise)."""

    n_patients: int = 12
    n_days: int = 365
    seed: int = 0
    start_date: str = "2025-01-06"
    attacks_per_month_median: float = 4.5
    attacks_per_month_range: tuple[float, float] = (2.0, 8.0)
    female_fraction: float = 0.75
    wearable_fraction: float = 0.4
    complete_diary_fraction: float = 0.25
    item_dropout: float = 0.05  # a diary item left empty on a diary day
    diary_start_p: float = 0.97  # P(diary kept) at the start ...
    diary_plateau: tuple[float, float] = (0.65, 0.9)  # ... decaying to a plateau in this range
    diary_fatigue_days: float = 120.0
    device_gap_rate: float = 1 / 35  # per day, start of a device-off gap
    device_gap_mean_days: float = 4.0
    hourly_dropout: float = 0.05  # wearable hours missing (device not worn)
    weather_dropout: float = 0.01
    preventive_fraction: float = 0.25
    behavioral_fraction: float = 0.17
    drift_fraction: float = 0.0
    drift_kinds: tuple[str, ...] = ("baseline", "trigger")
    retrospective_attack_p: float = 0.0  # attacks on non-diary days recorded anyway
    # misspecification knobs (evaluation.misspecification); the defaults change nothing
    trigger_lags: tuple[tuple[str, int], ...] = ()  # (feature, days): acts `days` later
    trigger_shapes: tuple[tuple[str, str, float], ...] = ()  # (feature, shape, cut-point)
    # (feature, half-life in days): the trigger acts through its exposure accumulated over the
    # days before (an exponentially weighted sum, today weight 1), scaled so that a sustained
    # exposure has the drawn effect and a one-day spike a fraction of it
    trigger_memory: tuple[tuple[str, float], ...] = ()
    interaction: tuple[str, float, str, float, float] | None = None  # (a, cut, b, cut, log OR)
    regimes: tuple[float, float, float] | None = None  # (P(on), P(off), log OR when on)
    preventive_fade_days: float | None = None  # a preventive's effect fades (time constant)
    # medication overuse: log OR per day of acute use in the 30 days before (0: none); the
    # decision to treat an attack is then drawn with the onsets, so the effect feeds back
    overuse_log_or_per_day: float = 0.0
    overuse_log_or_sd: float = 0.0  # between patients: each draws N(per_day, sd)
    # known subgroups (population insights): patient i has profile i % K and is sensitive to
    # exactly the triggers of its profile, at `profile_or` (OR at the trigger's contrast)
    profiles: tuple[tuple[str, ...], ...] = ()
    profile_or: float = 2.5

    def expected_diary_missing_fraction(self) -> float:
        """Expected fraction of days without a diary entry, for patients who log entries."""
        t = np.arange(self.n_days)
        plateau = np.mean(self.diary_plateau)
        p = plateau + (self.diary_start_p - plateau) * np.exp(-t / self.diary_fatigue_days)
        return float(1 - p.mean())

    def expected_device_off_fraction(self) -> float:
        """Expected fraction of days a wearable is off for a whole day (renewal argument)."""
        on = 1 / self.device_gap_rate
        return self.device_gap_mean_days / (on + self.device_gap_mean_days)


@dataclass
class SyntheticCohort:
    """Tables in docs/SCHEMA.md format plus the truth behind them."""

    cohort: Cohort
    truth: dict[str, Any] = field(repr=False)
    config: SyntheticConfig = field(default_factory=SyntheticConfig)

    def write(self, folder: str | os.PathLike, observations_format: str = "parquet") -> Path:
        """Write the cohort files and ``truth.json`` atomically (all or nothing)."""
        folder = Path(folder)
        with atomic.atomic_directory(folder) as tmp:
            self.cohort.write(tmp, observations_format=observations_format)
            (tmp / "truth.json").write_text(json.dumps(self.truth, indent=1), encoding="utf-8")
        return folder


def simulate_cohort(n_patients: int = 12, n_days: int = 365, seed: int = 0,
                    **options: Any) -> SyntheticCohort:
    """Simulate a cohort.

    Parameters
    ----------
    n_patients, n_days : int
        Cohort size and diary length in days.
    seed : int
        Seed of everything random; patient ``i``'s data depend only on ``seed`` and ``i``
        (``numpy.random.SeedSequence.spawn``), not on ``n_patients``.
    **options
        Other :class:`SyntheticConfig` fields, e.g. ``drift_fraction=0.5``.

    Returns
    -------
    SyntheticCohort
        ``.cohort`` (a validated-shape :class:`~migraine_bayes.cohort.io.Cohort`), ``.truth``
        (dict, as
        written to ``truth.json``) and ``.config``.

    """
    cfg = SyntheticConfig(n_patients=n_patients, n_days=n_days, seed=seed, **options)
    seeds = np.random.SeedSequence(seed).spawn(n_patients)
    dates = pd.date_range(cfg.start_date, periods=n_days, freq="D")
    parts: dict[str, list[pd.DataFrame]] = {k: [] for k in ("obs", "att", "tr", "pat")}
    truth_patients = []
    for i in range(n_patients):
        rng = np.random.default_rng(seeds[i])
        course_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i, 1)))
        pid = f"syn{seed % 1000:03d}-{i + 1:03d}"
        tables, truth = _simulate_patient(rng, pid, i, cfg, dates, course_rng)
        for key, df in tables.items():
            parts[key].append(df)
        truth_patients.append(truth)
    cohort = Cohort(
        observations=pd.concat(parts["obs"], ignore_index=True),
        attacks=pd.concat(parts["att"], ignore_index=True),
        treatments=pd.concat(parts["tr"], ignore_index=True),
        patients=pd.concat(parts["pat"], ignore_index=True),
        registry=Registry.builtin(),
        source=f"simulate_cohort(seed={seed})",
    )
    truth = {
        "generator": "migraine_bayes.synthetic.simulate_cohort",
        "package_version": __version__,
        "config": asdict(cfg),
        "targets": _targets(cfg),
        "model": __doc__.split("Grounding")[0].strip(),
        "patients": truth_patients,
    }
    return SyntheticCohort(cohort, truth, cfg)


def _targets(cfg: SyntheticConfig) -> dict[str, Any]:
    return {
        "attacks_per_month_range": list(cfg.attacks_per_month_range),
        "attacks_per_month_median": cfg.attacks_per_month_median,
        "menstrual_odds_ratio_sensitive": TRIGGERS[0].median_or,
        "menstrual_relative_risk_range": [1.5, 2.6],
        "expected_diary_missing_fraction": round(cfg.expected_diary_missing_fraction(), 4),
        "item_dropout": cfg.item_dropout,
        "expected_device_off_fraction": round(cfg.expected_device_off_fraction(), 4),
        "prodrome_fraction": 0.7,
    }


# ---------------------------------------------------------------- exogenous series
def _ar1(rng: np.random.Generator, n: int, rho: float, sd: float) -> np.ndarray:
    x = np.empty(n)
    x[0] = rng.normal(0, sd)
    eps = rng.normal(0, sd * np.sqrt(1 - rho**2), n)
    for t in range(1, n):
        x[t] = rho * x[t - 1] + eps[t]
    return x


def _weather(rng: np.random.Generator, dates: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """Daily pressure (hPa), temperature (°C) and humidity (%) at one patient's location."""
    n = len(dates)
    doy = dates.day_of_year.to_numpy()
    pressure = 1013 + _ar1(rng, n, 0.75, 8.0)
    temperature = 10 + 10 * np.sin(2 * np.pi * (doy - 110) / 365.25) + _ar1(rng, n, 0.7, 3.0)
    humidity = np.clip(70 - 0.8 * (temperature - 10) + _ar1(rng, n, 0.6, 10.0), 15, 100)
    return {"pressure": np.round(pressure, 1), "temperature": np.round(temperature, 1),
            "humidity": np.round(humidity, 0)}


def _menses(rng: np.random.Generator, n: int) -> np.ndarray:
    cycle = float(np.clip(rng.normal(28, 2), 24, 35))
    bleed = int(rng.integers(4, 7))
    out = np.zeros(n)
    t = -rng.uniform(0, cycle)
    while t < n:
        s = round(t)
        out[max(s, 0): max(s + bleed, 0)] = 1.0
        t += cycle + rng.normal(0, 1.5)
    return out


def _behaviour(rng: np.random.Generator, dates: pd.DatetimeIndex, female: bool,
               stress_shift: np.ndarray) -> dict[str, np.ndarray]:
    """Daily true trigger values of one patient (before any missingness)."""
    n = len(dates)
    weekend = np.asarray(dates.day_of_week >= 5)
    stress_mean = rng.uniform(2.5, 5.5)
    stress = stress_mean + np.where(weekend, -0.9, 0.6) + _ar1(rng, n, 0.6, 1.4) - stress_shift
    stress = np.clip(np.round(stress), 0, 10)
    usual = rng.normal(7.0, 0.5)
    sleep = usual + 0.5 * weekend - 0.12 * (stress - stress_mean) + rng.normal(0, 0.9, n)
    short = rng.random(n) < 0.04
    sleep = np.clip(np.where(short, sleep - rng.uniform(1.5, 3.5, n), sleep), 3, 11)
    sleep = np.round(sleep * 4) / 4
    quality = 5.5 + 0.8 * (sleep - usual) + rng.normal(0, 1.3, n)
    quality = np.clip(np.round(quality + STATE_DYNAMICS[1][3] * _yesterday(stress - stress_mean)),
                      0, 10)
    drink_p = rng.uniform(0.05, 0.3) * np.where(weekend, 2.0, 0.7)
    drinks = np.where(rng.random(n) < drink_p, 1 + rng.poisson(rng.uniform(0.5, 2.5), n), 0)
    caffeine = rng.normal(rng.uniform(50, 400), 80, n)
    caffeine = np.clip(np.round(caffeine + STATE_DYNAMICS[0][3] * _yesterday(sleep - usual), -1),
                       0, None)
    skipped = (rng.random(n) < rng.uniform(0.03, 0.15)).astype(float)
    screen = np.clip(np.round(rng.normal(rng.uniform(2, 7), 1.5, n), 1), 0, 16)
    out = {"stress": stress, "sleep_duration": sleep, "sleep_quality": quality,
           "alcohol": drinks.astype(float), "caffeine": caffeine, "skipped_meal": skipped,
           "screen_time": screen}
    if female:
        out["menstruation"] = _menses(rng, n)
    return out


def _yesterday(x: np.ndarray) -> np.ndarray:
    """``x`` one day later (0 on the first day): the lagged cause of a cross-effect."""
    return np.r_[0.0, x[:-1]]


# ---------------------------------------------------------------- one patient
def _apply_profile(rng: np.random.Generator, triggers: list[dict[str, Any]], index: int,
                   cfg: SyntheticConfig) -> int | None:
    """Known subgroups: with ``cfg.profiles``, patient ``index`` gets profile ``index % K``.

    The patient is then sensitive to exactly the profile's triggers (OR ``cfg.profile_or`` at
    the contrast, spread as usual). Returns the profile (None without profiles).
    """
    if not cfg.profiles:
        return None
    k = index % len(cfg.profiles)
    specs = {t.feature: t for t in TRIGGERS}
    for trig in triggers:
        spec = specs.get(trig["feature"])
        if spec is None:
            continue
        on = trig["feature"] in cfg.profiles[k]
        log_med = np.log(cfg.profile_or)
        odds = float(np.exp(rng.normal(log_med, spec.spread * log_med))) if on else 1.0
        trig.update(sensitive=on, odds_ratio=odds,
                    log_or_per_unit=float(np.log(odds) / spec.contrast))
    return k


def _draw_triggers(rng: np.random.Generator, female: bool) -> list[dict[str, Any]]:
    out = []
    for spec in TRIGGERS:
        if spec.women_only and not female:
            continue
        sensitive = bool(rng.random() < spec.p_sensitive)
        log_med = np.log(spec.median_or)
        odds = float(np.exp(rng.normal(log_med, spec.spread * log_med))) if sensitive else 1.0
        out.append({"feature": spec.feature, "shape": spec.shape, "contrast": spec.contrast,
                    "threshold": spec.threshold, "sensitive": sensitive, "odds_ratio": odds,
                    "log_or_per_unit": float(np.log(odds) / spec.contrast)})
    for feature in DECOYS:
        out.append({"feature": feature, "shape": "linear", "contrast": 1.0, "threshold": 0.0,
                    "sensitive": False, "odds_ratio": 1.0, "log_or_per_unit": 0.0})
    return out


def trigger_term(trig: dict[str, Any], z: np.ndarray, per_unit: float | None = None
                 ) -> np.ndarray:
    """Log-odds contribution of one trigger (``z`` lagged by ``trig["lag"]`` days, if any).

    Shapes: ``linear``; ``threshold`` (the log OR at ``contrast`` once ``z`` ≥ the cut-point);
    ``below`` (once ``z`` ≤ the cut-point); ``fall`` (per unit of decrease); ``saturating``
    (``contrast · tanh(z / contrast)``: linear near 0, flat beyond the contrast). A
    ``half_life`` accumulates the exposure over the days before (:func:`_accumulated`).
    ``per_unit``: the coefficient (default: the trigger's own ``log_or_per_unit``); with 1 the
    result is the trigger's true exposure, of which its effect is that multiple (what
    :func:`migraine_bayes.evaluation.recovery.identification_bound` needs).
    """
    lag = int(trig.get("lag", 0))
    if lag:
        z = np.concatenate([np.full(lag, np.nan), z[:-lag]])
    if trig.get("half_life"):
        z = _accumulated(z, float(trig["half_life"]))
    b = trig["log_or_per_unit"] if per_unit is None else per_unit
    c = trig["contrast"]
    if trig["shape"] == "threshold":
        return b * c * (z >= trig["threshold"]) if trig.get("scaled") else b * (
            z >= trig["threshold"])
    if trig["shape"] == "below":
        return b * c * (z <= trig["threshold"])
    if trig["shape"] == "fall":
        return b * np.clip(-z, 0, None)
    if trig["shape"] == "saturating":
        return b * c * np.tanh(z / c)
    return b * z


def _accumulated(z: np.ndarray, half_life: float, horizon: int = 28) -> np.ndarray:
    """Exposure accumulated over the days up to each day, normalised.

    ``Σ w_k z_{t-k} / Σ w_k`` with ``w_k = 2^(-k / half_life)`` over ``horizon`` days (missing
    days count as 0).
    """
    w = 2.0 ** (-np.arange(horizon) / half_life)
    x = np.nan_to_num(z)
    out = np.convolve(x, w)[: x.size] / w.sum()
    return np.where(np.isnan(z), np.nan, out)


def _misspecify(triggers: list[dict[str, Any]], cfg: SyntheticConfig) -> None:
    """Apply the config's lags, shapes and memories to the drawn triggers (in place)."""
    lags = dict(cfg.trigger_lags)
    shapes = {f: (shape, cut) for f, shape, cut in cfg.trigger_shapes}
    memory = dict(cfg.trigger_memory)
    for trig in triggers:
        if trig["feature"] in memory:
            trig["half_life"] = float(memory[trig["feature"]])
        if trig["feature"] in lags:
            trig["lag"] = int(lags[trig["feature"]])
        if trig["feature"] in shapes:
            trig["shape"], trig["threshold"] = shapes[trig["feature"]]
            trig["scaled"] = True  # the odds ratio holds across the cut-point / saturation


def _simulate_patient(rng: np.random.Generator, pid: str, index: int, cfg: SyntheticConfig,
                      dates: pd.DatetimeIndex, course_rng: np.random.Generator
                      ) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    n = len(dates)
    # patient-level traits first, so they do not depend on the diary length
    female = bool(rng.random() < cfg.female_fraction)
    wearable = bool(rng.random() < cfg.wearable_fraction)
    complete_diary = bool(rng.random() < cfg.complete_diary_fraction)
    preventive = bool(rng.random() < cfg.preventive_fraction)
    behavioral = bool(rng.random() < cfg.behavioral_fraction)
    drifts = bool(rng.random() < cfg.drift_fraction)
    days = np.arange(n)
    weather = _weather(rng, dates)

    # interventions
    treatments = []
    exposure = np.zeros(n)
    delta = 0.0
    stress_shift = np.zeros(n)
    if preventive:
        name = str(rng.choice(list(PREVENTIVES)))
        dose, freq, resp_mu, non_mu = PREVENTIVES[name]
        responder = bool(rng.random() < 0.5)
        delta = float(rng.normal(resp_mu if responder else non_mu, 0.15))
        start = int(rng.integers(n // 4, n // 2))
        tau_on, tau_off = TIME_CONSTANTS["preventive"]
        exposure = exposure_profile(days, start, None, tau_on, tau_off)
        treatments.append({"patient_id": pid, "kind": "preventive", "name": name,
                           "start": dates[start], "end": pd.NaT, "dose_mg": dose,
                           "frequency": freq, "_responder": responder, "_log_or": delta})
    if behavioral:
        start = int(rng.integers(n // 4, n // 2))
        end = min(start + 55, n - 1)
        tau_on, tau_off = TIME_CONSTANTS["behavioral"]
        stress_shift = 1.5 * exposure_profile(days, start, end, tau_on, tau_off)
        treatments.append({"patient_id": pid, "kind": "behavioral", "name": "stress_management",
                           "start": dates[start], "end": dates[end], "dose_mg": np.nan,
                           "frequency": "weekly", "_responder": None, "_log_or": 0.0})
    acute_name = str(rng.choice([*ACUTE, "none"], p=[0.45, 0.3, 0.25]))
    if acute_name != "none":
        treatments.append({"patient_id": pid, "kind": "acute", "name": acute_name,
                           "start": dates[0], "end": pd.NaT, "dose_mg": ACUTE[acute_name][0],
                           "frequency": "as needed", "_responder": None, "_log_or": 0.0})

    # true covariates and their contributions
    behaviour = _behaviour(rng, dates, female, stress_shift)
    true = {f"trigger.{k}": v for k, v in behaviour.items()}
    true |= {f"environmental.{k}": v for k, v in weather.items()}
    true["derived.pressure_change"] = pressure_change(weather["pressure"][None, :])[0]
    true["derived.stress_letdown"] = stress_letdown(behaviour["stress"][None, :])[0]
    true["derived.sleep_debt"] = sleep_debt(behaviour["sleep_duration"][None, :])[0]
    triggers = _draw_triggers(rng, female)
    profile = _apply_profile(rng, triggers, index, cfg)
    _misspecify(triggers, cfg)
    contrib = np.zeros(n)
    for trig in triggers:
        contrib += np.nan_to_num(trigger_term(trig, true[trig["feature"]]))
    interaction = None
    if cfg.interaction is not None:  # e.g. short sleep × high stress, in every patient
        a, cut_a, b, cut_b, log_or = cfg.interaction
        both = (true[a] >= cut_a) & (true[b] >= cut_b)
        contrib += log_or * both
        interaction = {"features": [a, b], "cut_points": [cut_a, cut_b], "log_or": log_or,
                       "share_of_days": round(float(both.mean()), 4)}
    if preventive and cfg.preventive_fade_days:  # tolerance: the effect fades after the ramp
        ramp = int(np.argmax(exposure >= 0.95)) if (exposure >= 0.95).any() else n
        fade = np.exp(-np.clip(days - ramp, 0, None) / cfg.preventive_fade_days)
        exposure = exposure * np.where(days >= ramp, fade, 1.0)

    # drift
    drift = {"kind": None, "day": None}
    drift_term = np.zeros(n)
    if drifts:
        kind = str(rng.choice(list(cfg.drift_kinds)))
        day = int(rng.integers(int(0.4 * n), int(0.7 * n)))
        if kind == "baseline":
            drift_term[day:] = np.log(2.0)
            drift = {"kind": "baseline", "day": day, "log_odds_shift": float(np.log(2.0))}
        else:
            candidates = [t for t in triggers if not t["sensitive"] and t["feature"] in
                          ("derived.pressure_change", "trigger.skipped_meal",
                           "derived.sleep_debt", "derived.stress_letdown")]
            trig = candidates[0] if candidates else triggers[1]
            new = dict(trig, odds_ratio=2.5, log_or_per_unit=float(np.log(2.5) / trig["contrast"]))
            drift_term[day:] = np.nan_to_num(trigger_term(new, true[trig["feature"]]))[day:]
            drift = {"kind": "trigger", "day": day, "feature": trig["feature"],
                     "odds_ratio_after": 2.5}

    # baseline, latent state, refractory, attacks
    lo, hi = cfg.attacks_per_month_range
    rate = float(np.clip(np.exp(rng.normal(np.log(cfg.attacks_per_month_median), 0.35)),
                         lo * 1.1, hi * 0.9))
    rho = float(rng.uniform(0.85, 0.97))
    latent_sd = float(rng.uniform(0.3, 0.7))
    sigma = latent_sd * np.sqrt(1 - rho**2)
    x = _ar1(rng, n, rho, latent_sd)
    gamma, tau_r = float(rng.normal(-1.2, 0.3)), 1.5
    regime = None
    if cfg.regimes is not None:  # bursty periods: a two-state Markov susceptibility
        p_on, p_off, boost = cfg.regimes
        on = np.zeros(n, dtype=bool)
        flips = rng.random(n)
        for t in range(1, n):
            on[t] = flips[t] >= p_off if on[t - 1] else flips[t] < p_on
        x = x + boost * on
        regime = {"p_on": p_on, "p_off": p_off, "log_or": boost,
                  "on": on.astype(int).tolist()}
    p_target = rate / DAYS_PER_MONTH
    alpha = float(np.log(p_target / (1 - p_target)) - contrib.mean() + 0.1)
    eta_fixed = alpha + contrib + delta * exposure + x + drift_term
    onset = np.zeros(n, dtype=int)
    p_true = np.zeros(n)
    last = -np.inf
    u = rng.random(n)
    course = draw_course(course_rng, acute_name, n)  # its own stream: drawn here or later alike
    overuse = cfg.overuse_log_or_per_day
    treated = None
    if overuse:  # which attacks are treated, drawn from a stream of their own
        treated = np.zeros(n, dtype=bool)
        treat_rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(index, 2)))
        treat_u = treat_rng.random(n)
        overuse = float(overuse + cfg.overuse_log_or_sd * treat_rng.standard_normal())
        first_drug = min((v["from_day"] for v in course["acute"].values()), default=n)
    for t in range(n):
        since = t - last
        refr = gamma * np.exp(-(since - 1) / tau_r) if np.isfinite(since) else 0.0
        used = 0.0 if treated is None else float(treated[max(0, t - 30):t].sum())
        p_true[t] = 1 / (1 + np.exp(-(eta_fixed[t] + refr + overuse * used)))
        if u[t] < p_true[t]:
            onset[t] = 1
            last = t
            if treated is not None:
                treated[t] = t >= first_drug and treat_u[t] < TREATED_SHARE

    # premonitory symptoms and physiology
    prodrome_p = float(rng.uniform(0.5, 0.9))
    prodrome = np.zeros(n, dtype=bool)  # the day before an onset shows a prodrome
    has_prodrome = np.zeros(n, dtype=bool)
    for t in np.flatnonzero(onset):
        if rng.random() < prodrome_p:
            has_prodrome[t] = True
            if t > 0:
                prodrome[t - 1] = True
    symptoms, backgrounds = {}, {}
    for name, p in SYMPTOM_PRODROME_P.items():
        background = rng.uniform(0.02, 0.08)
        backgrounds[name] = background
        symptoms[name] = (rng.random(n) < np.where(prodrome, p, background)).astype(float)

    # diary days (outcome known)
    plateau = rng.uniform(*cfg.diary_plateau)
    p_entry = plateau + (cfg.diary_start_p - plateau) * np.exp(-days / cfg.diary_fatigue_days)
    entry = np.ones(n, dtype=bool) if complete_diary else rng.random(n) < p_entry
    recorded = onset.astype(bool) & (entry | (rng.random(n) < cfg.retrospective_attack_p))

    obs = _observations(rng, pid, cfg, dates, entry, complete_diary, behaviour, weather,
                        symptoms, wearable, prodrome)
    for drug, resp in list(course["acute"].items())[1:]:  # a second drug tried mid-diary
        treatments.append({"patient_id": pid, "kind": "acute", "name": drug,
                           "start": dates[resp["from_day"]], "end": pd.NaT,
                           "dose_mg": ACUTE[drug][0], "frequency": "as needed",
                           "_responder": None, "_log_or": 0.0})
    att = attack_rows(course_rng, pid, dates, np.flatnonzero(recorded), has_prodrome, symptoms,
                      prodrome, course, treated)
    birth = int(rng.integers(1975, 2006) if female else rng.integers(1960, 2006))
    aura = bool(att["aura"].any()) if len(att) else False
    pat = pd.DataFrame([{"patient_id": pid, "sex": "F" if female else "M", "birth_year": birth,
                         "diagnosis": "1.2" if aura else "1.1", "diary_start": dates[0],
                         "diary_end": dates[-1]}])
    tr_df = pd.DataFrame(treatments, columns=["patient_id", "kind", "name", "start", "end",
                                              "dose_mg", "frequency", "_responder", "_log_or"])
    truth = {
        "patient_id": pid, "index": index, "sex": "F" if female else "M", "wearable": wearable,
        "complete_diary": complete_diary, "diary_plateau": plateau,
        "attacks_per_month_target": rate, "alpha": alpha, "rho": rho, "sigma": sigma,
        "latent_sd": latent_sd, "gamma": gamma, "tau_refractory": tau_r,
        "prodrome_probability": prodrome_p,
        "symptoms": {name: {"background": round(float(backgrounds[name]), 6),
                            "prodrome": SYMPTOM_PRODROME_P[name]} for name in backgrounds},
        "triggers": triggers, **({} if profile is None else {"profile": profile}),
        "interventions": [{"name": r["name"], "kind": r["kind"],
                           "start": r["start"].strftime("%Y-%m-%d"),
                           "log_odds_ratio": r["_log_or"], "responder": r["_responder"],
                           "acts_through": ("trigger.stress" if r["kind"] == "behavioral"
                                            else "log_odds" if r["kind"] == "preventive"
                                            else "attack_outcome")} for r in treatments],
        "stress_shift": [round(float(s), 4) for s in stress_shift] if stress_shift.any() else None,
        "drift": drift,
        "interaction": interaction,
        "regime": regime,
        "preventive_fade_days": cfg.preventive_fade_days if preventive else None,
        "acute_medication": None if acute_name == "none" else acute_name,
        "overuse": None if not overuse else {
            "log_or_per_day": overuse, "window_days": 30,
            "treated_days": np.flatnonzero(treated).tolist()},
        "course": course,
        "state_dynamics": [dict(zip(("from", "to", "lag", "per_unit"), e, strict=True))
                           for e in STATE_DYNAMICS],
        "onset": onset.tolist(),
        "recorded": recorded.astype(int).tolist(),
        "latent": [round(float(v), 4) for v in x],
        "p_attack": [round(float(v), 5) for v in p_true],
    }
    tables = {"obs": obs, "att": att, "tr": tr_df.drop(columns=["_responder", "_log_or"]),
              "pat": pat}
    return tables, truth


def _long(pid: str, times: pd.DatetimeIndex | np.ndarray, variable: str, values: np.ndarray,
          keep: np.ndarray, source: str) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": pid, "time": np.asarray(times)[keep],
                         "variable": variable, "value": np.asarray(values, dtype=float)[keep],
                         "source": source})


def _observations(rng: np.random.Generator, pid: str, cfg: SyntheticConfig,
                  dates: pd.DatetimeIndex, entry: np.ndarray, complete_diary: bool,
                  behaviour: dict[str, np.ndarray], weather: dict[str, np.ndarray],
                  symptoms: dict[str, np.ndarray], wearable: bool, prodrome: np.ndarray
                  ) -> pd.DataFrame:
    n = len(dates)
    evening = dates + pd.Timedelta(hours=21)
    frames = []
    if not complete_diary:
        frames.append(_long(pid, evening, "diary_entry", np.ones(n), entry, "diary_app"))
    for name, values in (behaviour | symptoms).items():
        keep = entry & (rng.random(n) >= cfg.item_dropout)
        if name == "sleep_duration":
            times = dates + pd.Timedelta(hours=8)
        else:
            times = evening
        frames.append(_long(pid, times, name, values, keep, "diary_app"))
    noon = dates + pd.Timedelta(hours=12)
    for name, values in weather.items():
        frames.append(_long(pid, noon, name, values, rng.random(n) >= cfg.weather_dropout,
                            "weather_service"))
    if wearable:
        sleep = behaviour["sleep_duration"]
        frames.append(_wearable(rng, pid, cfg, dates, behaviour["stress"], prodrome,
                                _yesterday(sleep - sleep.mean())))
    return pd.concat(frames, ignore_index=True)


def _wearable(rng: np.random.Generator, pid: str, cfg: SyntheticConfig, dates: pd.DatetimeIndex,
              stress: np.ndarray, prodrome: np.ndarray, slept: np.ndarray) -> pd.DataFrame:
    """Hourly HRV (RMSSD, ms), resting heart rate (bpm) and steps, with device-off gaps.

    ``slept``: the previous night's sleep above the patient's mean (h), for the cross-effects.
    """
    n = len(dates)
    off = np.zeros(n, dtype=bool)
    t = 0
    while t < n:
        if rng.random() < cfg.device_gap_rate:
            length = int(rng.geometric(1 / cfg.device_gap_mean_days))
            off[t: t + length] = True
            t += length
        t += 1
    hours = np.arange(24)
    circ = np.sin(2 * np.pi * (hours - 4) / 24)  # trough in the early morning
    day_effect = -0.03 * stress - 0.08 * prodrome + STATE_DYNAMICS[3][3] * slept
    base_hrv = rng.uniform(25, 70)
    log_hrv = (np.log(base_hrv) + day_effect[:, None] - 0.2 * circ[None, :]
               + rng.normal(0, 0.12, (n, 24)))
    hrv = np.clip(np.round(np.exp(log_hrv), 1), 1, 300)
    base_hr = rng.uniform(55, 75)
    hr = (base_hr + 0.8 * stress[:, None] + 2.0 * prodrome[:, None]
          + STATE_DYNAMICS[2][3] * slept[:, None] + 5 * circ[None, :]
          + rng.normal(0, 2.5, (n, 24)))
    hr = np.clip(np.round(hr, 1), 25, 220)
    awake = (hours >= 7) & (hours <= 22)
    steps = np.where(awake[None, :], rng.poisson(rng.uniform(300, 700), (n, 24)), 0)
    worn = ~off[:, None] & (rng.random((n, 24)) >= cfg.hourly_dropout)
    times = (dates.to_numpy()[:, None] + hours[None, :].astype("timedelta64[h]")).ravel()
    keep = worn.ravel()
    src = "wristband"
    return pd.concat([_long(pid, times, "hrv_rmssd", hrv.ravel(), keep, src),
                      _long(pid, times, "resting_hr", hr.ravel(), keep, src),
                      _long(pid, times, "steps", steps.ravel().astype(float), keep, src)],
                     ignore_index=True)
