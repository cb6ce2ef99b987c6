"""Oracles of synthetic cohorts: the best forecasts the generator's truth allows.

- :func:`oracle_probability` (``oracle``): the true daily probability, updated with the
  premonitory symptoms recorded the day before under the generator's symptom model. It knows
  the hidden susceptibility (the latent AR(1) state, and the regime of a switching generator)
  on every day, which no diary shows.
- :func:`filtered_oracle_probability` (``oracle_filtered``): the information bound of a
  forecaster that reads the diaries. It knows every true parameter and the day's covariates
  but not the hidden state: it infers it from the outcomes recorded before the day with a
  particle filter under the generator's own state model (AR(1) with the true persistence and
  scale, and the true two-state Markov regime where there is one), then adds the same symptom
  update. The gap between the two is the price of not seeing the hidden state; a model fitted
  to diaries can approach ``oracle_filtered``, not ``oracle``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.special import expit, logit

from migraine_bayes.dims import FEATURE

PARTICLES = 4000


def oracle_probability(truth: dict, panel: xr.Dataset, days: np.ndarray) -> np.ndarray:
    """The generator's onset probability on ``days`` given the diary of the day before.

    ``truth`` is one patient of ``truth.json``, ``panel`` that patient's panel (no patient
    dim). With the true hazard ``p`` and the prodrome probability ``q``, the symptoms ``s``
    recorded the day before have likelihood ``q L(s | prodrome) + (1 - q) L(s | background)``
    under an attack and ``L(s | background)`` without one (each symptom independent; missing
    ones count for nothing), so ``P(attack | s) = p L1 / (p L1 + (1 - p) L0)``.
    """
    return with_symptoms(truth, panel, days, np.asarray(truth["p_attack"], dtype=float)[days])


def with_symptoms(truth: dict, panel: xr.Dataset, days: np.ndarray, p: np.ndarray
                  ) -> np.ndarray:
    """Onset probabilities ``p`` on ``days`` updated with the day-before symptoms (Bayes)."""
    symptoms = truth.get("symptoms")
    if not symptoms:
        return p
    log_pro = np.zeros(days.size)
    log_bg = np.zeros(days.size)
    features = [str(f) for f in panel[FEATURE].values]
    for name, rates in symptoms.items():
        feature = f"symptom.{name}"
        if feature not in features:
            continue
        prev = np.clip(days - 1, 0, None)
        x = panel["value"].sel({FEATURE: feature}).values[prev]
        seen = panel["present"].sel({FEATURE: feature}).values[prev].astype(bool) & (days > 0)
        for log, rate in ((log_pro, rates["prodrome"]), (log_bg, rates["background"])):
            log += np.where(seen, np.where(x > 0, np.log(rate), np.log1p(-rate)), 0.0)
    q = float(truth["prodrome_probability"])
    like1 = q * np.exp(log_pro) + (1 - q) * np.exp(log_bg)
    like0 = np.exp(log_bg)
    return p * like1 / (p * like1 + (1 - p) * like0)




def has_state_model(truth: dict) -> bool:
    """Whether a patient's truth says how its hidden state moves (what the filter needs)."""
    return ("latent" in truth and "latent_sd" in truth
            and ("rho" in truth or "latent_rho" in truth))


def filtered_oracle_probability(truth: dict, panel: xr.Dataset, days: np.ndarray,
                                seed: int = 0, outcome: str = "onset") -> np.ndarray:
    """The oracle without the hidden state: it is filtered from the outcomes before each day.

    The true log-odds less the true latent state is known on every day; the latent state
    ``x_t = rho x_{t-1} + e_t`` (stationary sd ``latent_sd``; plus ``log_or`` while a Markov
    regime is on) is tracked by a bootstrap particle filter (:data:`PARTICLES`, resampled when
    the effective sample size falls below half) on the panel's known outcomes. Day ``t``'s
    forecast averages the probability over the particles given the outcomes of days before
    ``t``; then the day-before symptoms update it as in :func:`oracle_probability`.
    ``truth`` is one patient of ``truth.json``, ``panel`` that patient's panel.
    """
    p_true = np.asarray(truth["p_attack"], dtype=float)
    latent = np.asarray(truth["latent"], dtype=float)
    n = min(p_true.size, int(np.max(days)) + 1)
    known_rest = logit(np.clip(p_true[:n], 1e-9, 1 - 1e-9)) - latent[:n]
    y = panel[outcome].values[:n]  # the outcome the truth's probability is of
    rho, sd = float(truth.get("rho", truth.get("latent_rho"))), float(truth["latent_sd"])
    regime = truth.get("regime")
    rng = np.random.default_rng([seed, *str(truth["patient_id"]).encode("utf-8")])
    x = rng.normal(0.0, sd, PARTICLES)
    on = np.zeros(PARTICLES, dtype=bool)
    if regime:
        on = rng.random(PARTICLES) < regime["p_on"] / (regime["p_on"] + regime["p_off"])
    w = np.full(PARTICLES, 1.0 / PARTICLES)
    step = sd * np.sqrt(1.0 - rho**2)
    forecast = np.empty(n)
    for t in range(n):
        if t > 0:
            x = rho * x + rng.normal(0.0, step, PARTICLES)
            if regime:
                u = rng.random(PARTICLES)
                on = np.where(on, u >= regime["p_off"], u < regime["p_on"])
        state = x + (regime["log_or"] * on if regime else 0.0)
        q = expit(known_rest[t] + state)
        forecast[t] = float(np.sum(w * q))
        if not np.isnan(y[t]):
            w = w * (q if y[t] > 0 else 1.0 - q)
            w = w / w.sum()
            if 1.0 / np.sum(w**2) < PARTICLES / 2:
                keep = rng.choice(PARTICLES, PARTICLES, p=w)
                x, on = x[keep], on[keep]
                w = np.full(PARTICLES, 1.0 / PARTICLES)
    return with_symptoms(truth, panel, days, forecast[days])
