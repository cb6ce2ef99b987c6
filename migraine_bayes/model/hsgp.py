"""Hilbert-space approximate Gaussian process (Solin & Särkkä 2020; Riutort-Mayol et al. 2023).

The latent susceptibility of a patient is ``f(t) = sum_j phi_j(t) * sqrt(S(sqrt(lam_j))) * c_j``
with ``c_j ~ Normal(0, 1)``: ``m`` sine basis functions on ``[-L, L]`` and the spectral density
``S`` of an exponentiated-quadratic kernel. Unlike an AR(1) with one latent value per day, the
parameter count does not grow with the diary length, and the non-centred coefficients avoid the
funnel between the latent scale and the latent values.
"""

from __future__ import annotations

import numpy as np

N_BASIS = 24  # at most; short diaries get fewer (:func:`n_basis`)
BOUNDARY_FACTOR = 1.5  # L = factor * half-range; leaves room to forecast past the data


def domain(n_days: int) -> tuple[float, float]:
    """Center and half-width ``L`` of the basis domain for days ``0 .. n_days - 1``."""
    center = (n_days - 1) / 2.0
    half = max(center, 1.0)
    return center, BOUNDARY_FACTOR * half


def n_basis(half_width: float, shortest_lengthscale: float) -> int:
    """Basis functions needed on ``[-L, L]`` to resolve ``shortest_lengthscale`` (days).

    Riutort-Mayol et al. (2023) give ``m >= 1.75 L / lengthscale`` for the exponentiated
    quadratic kernel. More functions than that only add coefficients the data cannot inform:
    on 7–30-day diaries the 24 of a year-long fit left high-frequency coefficients whose scale
    trades off against the lengthscale, and NUTS diverged (5 patients of 28–49 days: 66–188
    divergent transitions with 24 functions, none with 12). Capped at :data:`N_BASIS`.
    """
    return int(np.clip(np.ceil(1.75 * half_width / shortest_lengthscale), 2, N_BASIS))


def basis(days: np.ndarray, center: float, half_width: float, m: int = N_BASIS) -> np.ndarray:
    """Basis functions at ``days``: shape ``days.shape + (m,)``."""
    x = np.asarray(days, dtype=float)[..., None] - center
    j = np.arange(1, m + 1)
    return np.sqrt(1.0 / half_width) * np.sin(j * np.pi * (x + half_width) / (2 * half_width))


def basis_offset(n_days: int, center: float, half_width: float, m: int = N_BASIS) -> np.ndarray:
    """Mean of each basis function over days ``0 .. n_days - 1``, shape (m,).

    Subtracting it gives the latent state mean zero over the fitted diary, so it cannot trade
    off against the patient's baseline ``alpha`` (the first sine is nearly constant there).
    """
    return basis(np.arange(n_days), center, half_width, m).mean(axis=0)


def sqrt_eigenvalues(half_width: float, m: int = N_BASIS) -> np.ndarray:
    """Square roots of the Laplacian eigenvalues, shape (m,)."""
    return np.arange(1, m + 1) * np.pi / (2 * half_width)


def sqrt_psd(amplitude, lengthscale, sqrt_eigs, xp=np):
    """Square root of the exponentiated-quadratic spectral density at ``sqrt_eigs``.

    Works with numpy or pytensor (``xp``); broadcasts ``amplitude``/``lengthscale`` against the
    last axis.
    """
    psd = amplitude**2 * np.sqrt(2 * np.pi) * lengthscale * xp.exp(
        -0.5 * (lengthscale * sqrt_eigs) ** 2)
    return xp.sqrt(psd)


def ar1_persistence(lengthscale: float | np.ndarray) -> np.ndarray:
    """Per-day autocorrelation of the AR(1) that stands in for the kernel beyond the fit.

    The AR(1) ``rho`` whose correlation time ``1 / -log(rho)`` equals the exponentiated
    quadratic kernel's, ``integral_0^inf exp(-s^2 / 2 l^2) ds = l sqrt(pi / 2)`` (days): a
    latent state carried forward day by day with the fitted kernel's memory and amplitude.
    """
    return np.exp(-1.0 / (np.sqrt(np.pi / 2.0) * np.asarray(lengthscale, dtype=float)))
