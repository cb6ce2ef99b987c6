"""The twin's likelihood in numpy: the one place it is written outside the PyMC graph.

For one patient's posterior draws ``s`` (S of them) and days ``t``, the model of
:mod:`migraine_bayes.model.builder` is::

    eta[s, t] = alpha_s + sum_k beta_sk z_tk + gamma_s exp(-(d_t - 1) / tau_s)
                + sum_m delta_sm e_tm + f_s(t)
    v[s, t]   = sum_k beta_sk^2 var(z_tk)           # imputation uncertainty of the features
    p[s, t]   = logit^-1(eta / sqrt(1 + pi v / 8))  # the link, feature uncertainty integrated out

Each term has one function here (:func:`feature_effects`, :func:`refractory`,
:func:`intervention_effects`, :func:`latent_state`, :func:`spread`), :func:`day_terms` puts
them together for a patient's days, :func:`log_odds` sums them, and :func:`inverse_link` /
:func:`flattening` are the model's link — used by the forecast, the particle filter, the
counterfactual simulation and the sequential drift test alike, and tested against the compiled
PyMC graph for every model structure. Only NumPy and SciPy: no PyMC, xarray or pandas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

CLIP = 1e-9  # probabilities given as data are kept this far from 0 and 1 before the logit


@dataclass
class Draws:
    """One patient's posterior draws, flattened over chains: S draws."""

    alpha: np.ndarray  # (S,)
    beta: np.ndarray  # (S, K)
    gamma: np.ndarray  # (S,)
    tau: np.ndarray  # (S,)
    delta: np.ndarray  # (S, M)
    weights: np.ndarray  # (S, B) latent basis weights sqrt(psd) * coef

    def take(self, index: np.ndarray) -> Draws:
        """The draws at ``index`` (a resample, a particle set)."""
        return Draws(self.alpha[index], self.beta[index], self.gamma[index], self.tau[index],
                     self.delta[index], self.weights[index])


# ---------------------------------------------------------------- the terms
def _by_draw(x: np.ndarray) -> np.ndarray:
    """Day-level covariates (n, K) shared by every draw, or per-draw days (S, n, K) as they are."""
    return x if x.ndim == 3 else x[None, :, :]


def feature_effects(beta: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Each feature's contribution ``beta_sk z_tk`` (S, n, K): beta (S, K); z (n, K) or (S, n, K).

    z (S, n, K) gives each draw its own days (a simulation's resampled diary days).
    """
    return beta[:, None, :] * _by_draw(z)


def spread(beta: np.ndarray, z_var: np.ndarray) -> np.ndarray:
    """The features' imputation variance on the log-odds ``sum_k beta_sk^2 var(z_tk)`` (S, n)."""
    return (beta[:, None, :] ** 2 * _by_draw(z_var)).sum(-1)


def refractory(gamma: np.ndarray, tau: np.ndarray, days_since: np.ndarray) -> np.ndarray:
    """``gamma exp(-(d - 1) / tau)``: the dip (or persistence) after the last outcome day.

    Broadcast as given: gamma, tau (S, 1) with days_since (1, n) for a patient's days; gamma,
    tau and days_since (S,) for one simulated day, each draw with its own history.
    """
    return gamma * np.exp(-(days_since - 1.0) / tau)


def intervention_effects(delta: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    """Each intervention's contribution ``delta_sm e_tm`` (S, n, M): exposure (n, M)."""
    return delta[:, None, :] * exposure[None, :, :]


def latent_state(weights: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """The latent susceptibility ``f_s(t)`` (S, n): basis weights (S, B) on the basis (n, B)."""
    return weights @ phi.T


def day_terms(draws: Draws, z: np.ndarray, z_var: np.ndarray, exposure: np.ndarray,
              days_since: np.ndarray, phi: np.ndarray) -> dict[str, np.ndarray]:
    """Every term of the log-odds on n days, each (S, n) or (S, n, K|M); ``spread`` the variance.

    ``z``, ``z_var`` (n, K), ``exposure`` (n, M), ``days_since`` (n,) and the latent basis
    ``phi`` (n, B) of the days.
    """
    return {
        "baseline": np.repeat(draws.alpha[:, None], len(days_since), axis=1),
        "features": feature_effects(draws.beta, z),
        "refractory": refractory(draws.gamma[:, None], draws.tau[:, None], days_since[None, :]),
        "interventions": intervention_effects(draws.delta, exposure),
        "latent": latent_state(draws.weights, phi),
        "spread": spread(draws.beta, z_var),
    }


def log_odds(terms: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Summed log-odds ``eta`` (S, n) of :func:`day_terms` and its :func:`flattening`."""
    eta = (terms["baseline"] + terms["features"].sum(-1) + terms["refractory"]
           + terms["interventions"].sum(-1) + terms["latent"])
    return eta, flattening(terms["spread"])


def probabilities(terms: dict[str, np.ndarray]) -> np.ndarray:
    """Per-draw probability (S, n) of :func:`day_terms`."""
    eta, scale = log_odds(terms)
    return expit(eta * scale)


# ---------------------------------------------------------------- the link
def flattening(variance: np.ndarray | float) -> np.ndarray:
    """``1 / sqrt(1 + pi v / 8)``: the logistic averaged over Gaussian log-odds of variance v.

    The probit approximation (MacKay 1992) that the graph's likelihood uses for the features'
    imputation uncertainty; the sequential test uses it for the latent state's too.
    """
    return 1.0 / np.sqrt(1.0 + np.pi * np.asarray(variance) / 8.0)


def inverse_link(eta: np.ndarray, variance: np.ndarray | float = 0.0) -> np.ndarray:
    """The probability ``logit^-1(eta / sqrt(1 + pi v / 8))`` of log-odds ``eta``."""
    return expit(eta * flattening(variance))


def link(p: np.ndarray) -> np.ndarray:
    """The log-odds of probabilities ``p`` (kept :data:`CLIP` away from 0 and 1)."""
    return logit(np.clip(p, CLIP, 1 - CLIP))


def log_likelihood(y: np.ndarray, flattened_log_odds: np.ndarray) -> np.ndarray:
    """``log p`` where ``y`` is 1, ``log(1 - p)`` where 0, from the flattened log-odds.

    Computed on the log-odds, so a probability that rounds to 0 or 1 gives no ``log(0)``.
    """
    return -np.logaddexp(0.0, np.where(y > 0, -flattened_log_odds, flattened_log_odds))
