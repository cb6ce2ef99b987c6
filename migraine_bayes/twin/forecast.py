"""Posterior-predictive forecasting from a twin's posterior draws (numpy, vectorised over draws).

For each draw ``s`` the day's probability is ``p_s = logit^-1(eta_s / sqrt(1 + pi v_s / 8))``
(the likelihood kernel, :mod:`migraine_bayes.model.kernel`): covariates not yet known
(tomorrow's stress) enter as the panel's one-sided imputation with its variance. The forecast
is the posterior-predictive mean ``E_s[p_s]`` with the 90% interval of ``p_s`` (epistemic);
the outcome's total variance splits into aleatoric ``E[p(1-p)]`` and epistemic ``Var[p]``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from migraine_bayes.dims import CHAIN, DRAW, PATIENT
from migraine_bayes.model import hsgp
from migraine_bayes.model.design import Design
from migraine_bayes.model.kernel import Draws, day_terms, probabilities

INTERVAL = (0.05, 0.95)


def posterior_draws(posterior: xr.Dataset, patient: str, sqrt_eigs: np.ndarray) -> Draws:
    """One patient's draws of a posterior Dataset, stacked chain-major (as ``stack(chain, draw)``).

    ``sqrt_eigs``: the square roots of the latent basis's eigenvalues, which turn the posterior's
    amplitude, lengthscale and coefficients into basis weights.
    """
    post = posterior.sel({PATIENT: patient})
    n = post.sizes[CHAIN] * post.sizes[DRAW]

    def arr(name: str) -> np.ndarray:
        values = post[name].transpose(CHAIN, DRAW, ...).values
        return np.asarray(values.reshape(n, *values.shape[2:]), dtype=float)

    amp, ell = arr("gp_amplitude"), arr("lengthscale")
    weights = hsgp.sqrt_psd(amp[:, None], ell[:, None], sqrt_eigs[None, :]) * arr("gp_coef")
    delta = arr("delta") if "delta" in post else np.zeros((n, 0))
    return Draws(arr("alpha"), arr("beta"), arr("gamma"), arr("tau_refractory"), delta, weights)


def posterior_terms(posterior: xr.Dataset, design: Design, patient: int, days: np.ndarray,
                    domain: tuple[float, float, np.ndarray]) -> dict[str, np.ndarray]:
    """The log-odds terms of design patient ``patient`` on ``days`` under a posterior.

    :func:`migraine_bayes.model.kernel.day_terms` of the patient's draws and days.

    ``domain`` = (center, half_width, basis_offset) of the twin's latent basis.
    """
    center, half, offset = domain
    offset = np.asarray(offset)
    phi = hsgp.basis(days, center, half, offset.size) - offset
    draws = posterior_draws(posterior, design.patients[patient],
                            hsgp.sqrt_eigenvalues(half, offset.size))
    return day_terms(draws, design.z_mean[patient, days], design.z_var[patient, days],
                     design.exposure[patient, days], design.days_since[patient, days], phi)


def predict_days(posterior: xr.Dataset, design: Design, domain: tuple[float, float, np.ndarray],
                 mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes and posterior-mean probabilities of the design's days selected by ``mask``.

    ``mask`` (P, T) picks the days to score (those with an unknown outcome are skipped); the
    arrays are concatenated over patients.
    """
    ys, ps = [], []
    for i in range(len(design.patients)):
        days = np.flatnonzero(mask[i] & ~np.isnan(design.y[i]))
        if days.size:
            ps.append(probabilities(posterior_terms(posterior, design, i, days, domain)).mean(0))
            ys.append(design.y[i, days])
    if not ys:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(ys), np.concatenate(ps)


def summarise(p: np.ndarray) -> dict[str, np.ndarray]:
    """Mean, 90% interval, aleatoric and epistemic variance of per-draw probabilities (S, n)."""
    lo, hi = np.quantile(p, INTERVAL, axis=0)
    return {"p_attack": p.mean(0), "p_low": lo, "p_high": hi,
            "aleatoric_var": (p * (1 - p)).mean(0), "epistemic_var": p.var(0)}


def top_factors(terms: dict[str, np.ndarray], features: list[str], interventions: list[str],
                day: int, n: int = 5) -> str:
    """``name:+0.42`` contributions to the log-odds on one day, largest magnitude first."""
    contrib = dict(zip(features, terms["features"][:, day, :].mean(0), strict=True))
    contrib |= {f"intervention.{m}": float(c) for m, c in
                zip(interventions, terms["interventions"][:, day, :].mean(0), strict=True)}
    contrib["refractory"] = float(terms["refractory"][:, day].mean())
    contrib["latent_state"] = float(terms["latent"][:, day].mean())
    ranked = sorted(contrib.items(), key=lambda kv: -abs(kv[1]))[:n]
    return ";".join(f"{k}:{v:+.2f}" for k, v in ranked)


def time_to_onset(p: np.ndarray, quantiles: tuple[float, ...] = (0.05, 0.5, 0.95)
                  ) -> list[float]:
    """Quantiles of the days until the next attack (1 = the first forecast day).

    ``p`` (S, H) holds each draw's daily probability over the horizon assuming no attack in
    between (refractory fixed by the last real attack). The predictive distribution of the first
    onset is the draw-average of ``1 - prod_{u<=t} (1 - p_u)``; a quantile beyond the horizon is
    ``inf``.
    """
    cdf = (1.0 - np.cumprod(1.0 - p, axis=1)).mean(0)
    out = []
    for q in quantiles:
        idx = np.flatnonzero(cdf >= q)
        out.append(float(idx[0] + 1) if idx.size else float("inf"))
    return out
