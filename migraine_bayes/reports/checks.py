"""Posterior predictive replicates and PSIS-LOO probabilities of a twin's fitted diary days."""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np

from migraine_bayes.model.kernel import probabilities
from migraine_bayes.twin.forecast import posterior_terms


@dataclass
class PatientChecks:
    """One patient's fitted days, replicated and left out one at a time.

    ``y`` (T,) outcomes (NaN unknown), ``replicates`` (R, T) simulated outcomes (0 on unknown
    days), ``p_loo`` (n_known,) leave-one-out probabilities, ``pit`` (n_known,) randomised
    LOO-PIT values and ``pareto_k`` (n_known,) PSIS diagnostics.
    """

    patient: str
    y: np.ndarray
    replicates: np.ndarray
    p_loo: np.ndarray
    pit: np.ndarray
    pareto_k: np.ndarray


def patient_checks(twin, patient: str, n_replicates: int = 400, seed: int = 0,
                   design=None) -> PatientChecks:
    """Replicated diaries and LOO-PIT of one patient's fitted (diary) days.

    Replicates draw each known day's outcome from a posterior draw's probability (given the
    observed history: refractory and covariates as they were). The LOO probability of each day
    is its PSIS-reweighted posterior mean (``arviz.psislw``); the randomised PIT of a binary
    outcome is uniform on ``(0, 1 - p)`` for no attack and on ``(1 - p, 1)`` for an attack,
    so a calibrated forecaster gives uniform PIT values. ``design``: ``twin.design()``, when
    the caller checks several patients and has built it once.
    """
    rng = np.random.default_rng(seed)
    i = twin.patients.index(patient)
    design = twin.design() if design is None else design
    center, half, _ = twin.domain
    n_days = int(twin.panel["in_diary"].sel(patient=patient).sum())
    days = np.arange(min(n_days, int(np.floor(center + half)) + 1))
    p = probabilities(posterior_terms(twin.posterior.posterior, design, i, days, twin.domain))
    y = design.y[i, days]
    known = ~np.isnan(y)
    take = rng.choice(p.shape[0], size=min(n_replicates, p.shape[0]), replace=False)
    replicates = np.where(known, rng.random((take.size, days.size)) < p[take], 0).astype(float)
    pk, yk = p[:, known], y[known]
    loglik = np.where(yk > 0, np.log(pk), np.log1p(-pk))  # (S, n)
    lw, k = az.psislw(-loglik.T)  # (n, S) normalised log weights
    p_loo = np.sum(np.exp(lw) * pk.T, axis=1)
    u = rng.random(yk.size)
    pit = np.where(yk > 0, 1 - p_loo + u * p_loo, u * (1 - p_loo))
    return PatientChecks(patient, y, replicates, p_loo, pit, np.asarray(k))
