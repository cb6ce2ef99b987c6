"""Simulation-based calibration of the twin's closed-form components (Talts et al. 2018).

The attack-course families (:mod:`migraine_bayes.course.hierarchy`) and the state model's
pooled regression (:mod:`migraine_bayes.state.dynamics`) compute their posteriors without a
sampler, so SBC checks the algebra and the grids directly: draw every parameter from the
prior the fit uses, simulate a cohort's records, fit, and rank the truth among ``L`` posterior
draws. Ranks must be uniform on ``0..L`` (chi-square test per parameter, as in :mod:`.sbc`).
The lognormal family is checked without censored records and the state model with its noise
variances and prior scales known (the fit plugs in estimates of both).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from migraine_bayes.course import hierarchy
from migraine_bayes.course.model import BINOMIAL_PRIORS, DRUG_SIGMA_SCALE, PHASE_PRIOR
from migraine_bayes.evaluation.sbc import SBCResult, _uniformity_p
from migraine_bayes.state import dynamics

N_PATIENTS = 8
L_DRAWS = 99


def _rank(draws: np.ndarray, truth: float) -> int:
    """Rank of ``truth`` among ``L`` evenly thinned draws."""
    keep = np.linspace(0, draws.size - 1, L_DRAWS).round().astype(int)
    return int((draws[keep] < truth).sum())


def course_sbc(replicates: int = 200, seed: int = 0, bins: int = 10) -> SBCResult:
    """SBC of the course model's three families on cohorts of :data:`N_PATIENTS` patients.

    Ranked: the first patient's aura probability and the population mean (logit-normal
    binomial, prior as ``p_aura``); a drug's pain-free probability (catalogue-centred prior);
    the first patient's log median headache duration, the population mean and the
    within-patient sd (lognormal). The severity family is left out: its pooled shares are a
    plug-in, so only its coverage is checked (``make validate``).
    """
    rng = np.random.default_rng(seed)
    rows = []
    p0, m_sd, scale = BINOMIAL_PRIORS["p_aura"]
    for _ in range(replicates):
        row = {}
        n = rng.integers(0, 40, N_PATIENTS).astype(float)
        mu, sigma = rng.normal(logit(p0), m_sd), abs(rng.normal(0, scale))
        p = expit(rng.normal(mu, sigma, N_PATIENTS))
        fit = hierarchy.binomial(rng.binomial(n.astype(int), p), n, (logit(p0), m_sd), scale,
                                 1000, rng)
        row["p_aura[0]"] = _rank(fit.patient[:, 0], p[0])
        row["p_aura_mu"] = _rank(fit.hyper["mu"], mu)
        m0 = logit(0.32)
        mu, sigma = rng.normal(m0, 0.35), abs(rng.normal(0, DRUG_SIGMA_SCALE))
        p = expit(rng.normal(mu, sigma, N_PATIENTS))
        n = rng.integers(0, 15, N_PATIENTS).astype(float)
        fit = hierarchy.binomial(rng.binomial(n.astype(int), p), n, (m0, 0.35),
                                 DRUG_SIGMA_SCALE, 1000, rng)
        row["p_pain_free[0]"] = _rank(fit.patient[:, 0], p[0])
        m0 = PHASE_PRIOR["headache_h"]
        mu, tau, s = rng.normal(m0, 1.5), abs(rng.normal()), abs(rng.normal())
        m = rng.normal(mu, tau, N_PATIENTS)
        groups = [rng.normal(m[i], s, rng.integers(0, 30)) for i in range(N_PATIENTS)]
        fit = hierarchy.lognormal(groups, (m0, 1.5), 1000, rng)
        row["log_median_h[0]"] = _rank(fit.patient[:, 0], m[0])
        row["phase_mu"] = _rank(fit.hyper["mu"], mu)
        row["log_sd_h"] = _rank(fit.hyper["s"], s)
        rows.append(row)
    ranks = pd.DataFrame(rows)
    return SBCResult(ranks, L_DRAWS, {c: _uniformity_p(ranks[c].to_numpy(), L_DRAWS, bins)
                                      for c in ranks.columns})


def state_sbc(replicates: int = 200, seed: int = 0, n_features: int = 2, n_days: int = 120,
              bins: int = 10, pop_sd: float = 0.3) -> SBCResult:
    """SBC of the state model's pooled regression (one target, :data:`N_PATIENTS` patients).

    Per replicate: a population row ``b ~ N(0, pop_sd^2)`` (weekday levels and lags), patient
    rows around it with the prior scales of the fit, a VAR(1) of ``n_features`` series over
    ``n_days`` days per patient (the other features' rows drawn the same way), then the exact
    posterior of :func:`migraine_bayes.state.dynamics._pool`. Ranked: the first patient's own
    lag and first weekday level, the population's own lag.
    """
    rng = np.random.default_rng(seed)
    k_n, w = n_features, dynamics.WEEKDAYS
    d = w + k_n
    prior_var = np.r_[np.full(w, 0.1**2), np.full(k_n, 0.1**2)]
    rows = []
    for _ in range(replicates):
        pop = rng.normal(0, pop_sd, (k_n, d))
        coef = pop[None] + rng.normal(0, np.sqrt(prior_var), (N_PATIENTS, k_n, d))
        noise = rng.uniform(0.3, 1.0, (N_PATIENTS, k_n))
        dow = np.arange(n_days) % w
        xtx = np.zeros((N_PATIENTS, d, d))
        xty = np.zeros((N_PATIENTS, d))
        yty = np.zeros(N_PATIENTS)
        for i in range(N_PATIENTS):
            z = np.zeros((n_days, k_n))
            for t in range(1, n_days):
                z[t] = coef[i, :, :w][:, dow[t]] + coef[i, :, w:] @ z[t - 1] + rng.normal(
                    0, np.sqrt(noise[i]))
            x = np.concatenate([np.eye(w)[dow[1:]], z[:-1]], axis=1)
            y = z[1:, 0]
            xtx[i], xty[i], yty[i] = x.T @ x, x.T @ y, y @ y
        n = np.full(N_PATIENTS, n_days - 1.0)
        _, pm, pc, cm, cc = dynamics._pool(xtx, xty, yty, n, noise[:, 0], prior_var,
                                           pop_sd=pop_sd)
        draws = rng.multivariate_normal(cm[0], cc[0], 1000)
        pop_draws = rng.multivariate_normal(pm, pc, 1000)
        rows.append({"A[0][own lag]": _rank(draws[:, w], coef[0, 0, w]),
                     "c[0][monday]": _rank(draws[:, 0], coef[0, 0, 0]),
                     "b[own lag]": _rank(pop_draws[:, w], pop[0, w])})
    ranks = pd.DataFrame(rows)
    return SBCResult(ranks, L_DRAWS, {c: _uniformity_p(ranks[c].to_numpy(), L_DRAWS, bins)
                                      for c in ranks.columns})
