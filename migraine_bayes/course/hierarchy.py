"""Exact hierarchical posteriors of the attack-course model, by numerical integration.

Three partially pooled families, each integrated over its population hyperparameters on a
grid (the hyperparameters are low-dimensional, so the grid is exact to its resolution and the
draws are independent — no sampler to check):

- :func:`binomial` — per patient ``k_i`` of ``n_i`` (attacks with aura, prodromes listing a
  symptom, treated attacks pain-free at 2 h ...): ``logit p_i ~ N(mu, sigma)``,
  ``mu ~ N(m0, s0)``, ``sigma ~ HalfNormal(scale)``.
- :func:`lognormal` — per patient log durations ``y_ij ~ N(m_i, s)`` (one within-patient sd
  ``s``), ``m_i ~ N(mu, tau)``, ``mu ~ N(m0, s0)``, ``tau, s ~ HalfNormal(1)``; ``m_i`` given
  the hyperparameters is normal in closed form.
- :func:`categorical` — per patient counts of ``C`` categories (peak severity):
  ``pi_i ~ Dirichlet(kappa pi0)`` around the pooled shares ``pi0``,
  ``log kappa ~ Uniform(log 0.5, log 500)``; ``pi_i`` given ``kappa`` is Dirichlet.

Each returns draws ``(S, P)`` (or ``(S, P, C)``) of the patients' parameters and ``(S,)`` of the
hyperparameters, so a new patient's predictive is one more normal (Dirichlet) draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy import special, stats

THETA = np.linspace(-9.0, 9.0, 451)  # logit grid of a patient's probability
N_MU, N_SIGMA = 61, 40


@dataclass
class Pooled:
    """Draws of one pooled family: ``patient`` (S, P[, C]) and hyperparameters (S,) each."""

    patient: np.ndarray
    hyper: dict[str, np.ndarray]


def _draw_grid(log_post: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """Flat indices of ``n_draws`` grid points drawn from an unnormalised log posterior."""
    w = np.exp(log_post - log_post.max()).ravel()
    return rng.choice(w.size, size=n_draws, p=w / w.sum())


def _jitter(values: np.ndarray, grid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Spread draws uniformly over their grid cell (a continuous, not a lattice, posterior)."""
    step = np.diff(grid).mean()
    return values + rng.uniform(-step / 2, step / 2, values.shape)


@cache
def _logit_normal_grid(m0: float, s0: float, sigma_scale: float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hyperparameter grids and the normal weights (M, G, T) of each point on :data:`THETA`.

    Cached: every family with the same prior shares them (read-only).
    """
    mu_grid = np.linspace(max(m0 - 4 * s0, -8), min(m0 + 4 * s0, 8), N_MU)
    sigma_grid = np.linspace(0.03, 3.5 * sigma_scale, N_SIGMA)
    z = (THETA[None, None, :] - mu_grid[:, None, None]) / sigma_grid[None, :, None]
    dens = np.exp(-0.5 * z**2)
    dens /= dens.sum(axis=-1, keepdims=True)
    for a in (mu_grid, sigma_grid, dens):
        a.setflags(write=False)
    return mu_grid, sigma_grid, dens


def binomial(k: np.ndarray, n: np.ndarray, prior_mu: tuple[float, float], sigma_scale: float,
             n_draws: int, rng: np.random.Generator) -> Pooled:
    """Logit-normal binomial: draws of ``p_i`` (S, P) and ``mu``, ``sigma`` (S,)."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    m0, s0 = prior_mu
    mu_grid, sigma_grid, dens = _logit_normal_grid(float(m0), float(s0), float(sigma_scale))
    log_p, log_q = special.log_expit(THETA), special.log_expit(-THETA)
    lik = k[:, None] * log_p[None, :] + (n - k)[:, None] * log_q[None, :]  # (P, T)
    top = lik.max(axis=1, keepdims=True)
    lik_e = np.exp(lik - top)
    marg = np.einsum("pt,mgt->mgp", lik_e, dens)  # (M, G, P)
    log_post = (np.log(np.clip(marg, 1e-300, None)).sum(-1)
                + stats.norm.logpdf(mu_grid, m0, s0)[:, None]
                + stats.halfnorm.logpdf(sigma_grid, scale=sigma_scale)[None, :])
    flat = _draw_grid(log_post, n_draws, rng)
    im, ig = np.unravel_index(flat, log_post.shape)
    theta = np.empty((n_draws, k.size))
    uniq, inv = np.unique(flat, return_inverse=True)
    um, ug = np.unravel_index(uniq, log_post.shape)
    u = rng.random((n_draws, k.size))
    for i in range(k.size):
        cond = dens[um, ug] * lik_e[i][None, :]  # (U, T)
        cdf = np.cumsum(cond, axis=1)
        cdf /= cdf[:, -1:]
        idx = (cdf[inv] < u[:, i : i + 1]).sum(axis=1)
        theta[:, i] = THETA[np.clip(idx, 0, THETA.size - 1)]
    theta = _jitter(theta, THETA, rng)
    return Pooled(special.expit(theta), {"mu": _jitter(mu_grid[im], mu_grid, rng),
                                         "sigma": np.abs(_jitter(sigma_grid[ig], sigma_grid,
                                                                 rng))})


def lognormal(groups: list[np.ndarray], prior_mu: tuple[float, float], n_draws: int,
              rng: np.random.Generator) -> Pooled:
    """Normal-normal on log values: draws of ``m_i`` (S, P) and ``mu``, ``tau``, ``s`` (S,).

    ``groups``: each patient's log values (possibly none).
    """
    n = np.array([g.size for g in groups], float)
    ybar = np.array([g.mean() if g.size else 0.0 for g in groups])
    ss = np.array([((g - g.mean()) ** 2).sum() if g.size else 0.0 for g in groups])
    m0, s0 = prior_mu
    seen = n > 0
    centre = ybar[seen].mean() if seen.any() else m0
    half = max(4 * ybar[seen].std(), 1.5) if seen.sum() > 1 else 4 * s0
    mu_grid = np.linspace(centre - half, centre + half, N_MU)
    tau_grid = np.linspace(0.01, 3.5, N_SIGMA)  # HalfNormal(1) has 0.05% beyond 3.5
    s_grid = np.linspace(0.02, 3.5, N_SIGMA + 20)
    mu, tau, s = np.meshgrid(mu_grid, tau_grid, s_grid, indexing="ij")  # (M, G, H)
    log_post = (stats.norm.logpdf(mu, m0, s0) + stats.halfnorm.logpdf(tau)
                + stats.halfnorm.logpdf(s))
    for i in np.flatnonzero(seen):
        var = tau**2 + s**2 / n[i]
        log_post += (-(n[i] - 1) * np.log(s) - ss[i] / (2 * s**2)
                     - 0.5 * np.log(var) - (ybar[i] - mu) ** 2 / (2 * var))
    flat = _draw_grid(log_post, n_draws, rng)
    d_mu = _jitter(mu.ravel()[flat], mu_grid, rng)
    d_tau = np.abs(_jitter(tau.ravel()[flat], tau_grid, rng))
    d_s = np.abs(_jitter(s.ravel()[flat], s_grid, rng))
    prec = 1 / d_tau[:, None] ** 2 + n[None, :] / d_s[:, None] ** 2
    mean = (d_mu[:, None] / d_tau[:, None] ** 2 + n[None, :] * ybar[None, :]
            / d_s[:, None] ** 2) / prec
    m = mean + rng.standard_normal(mean.shape) / np.sqrt(prec)
    return Pooled(m, {"mu": d_mu, "tau": d_tau, "s": d_s})


def categorical(counts: np.ndarray, n_draws: int, rng: np.random.Generator) -> Pooled:
    """Dirichlet-multinomial: draws of ``pi_i`` (S, P, C) and ``kappa`` (S,), ``pi0`` (C,)."""
    counts = np.asarray(counts, float)
    n_cat = counts.shape[1]
    pi0 = (counts.sum(0) + 1.0) / (counts.sum() + n_cat)
    kappa_grid = np.exp(np.linspace(np.log(0.5), np.log(500.0), 200))
    a = kappa_grid[:, None, None] * pi0[None, None, :]  # (K, 1, C)
    n_i = counts.sum(1)
    log_post = (special.gammaln(kappa_grid)[:, None] - special.gammaln(
        kappa_grid[:, None] + n_i[None, :])
        + (special.gammaln(a + counts[None]) - special.gammaln(a)).sum(-1)).sum(-1)
    flat = _draw_grid(log_post, n_draws, rng)
    kappa = np.exp(_jitter(np.log(kappa_grid[flat]), np.log(kappa_grid), rng))
    alpha = kappa[:, None, None] * pi0[None, None, :] + counts[None]
    g = rng.standard_gamma(alpha)
    return Pooled(g / g.sum(-1, keepdims=True), {"kappa": kappa, "pi0": np.tile(pi0, (n_draws,
                                                                                  1))})
