"""The AR(1) bridge against brute-force Gaussian conditioning, and its calibration."""

from __future__ import annotations

import numpy as np
import pytest

from migraine_bayes.state.imputation import ar1_parameters, impute_series


def brute_force(x: np.ndarray, mu: float, s: float, r: float) -> tuple[np.ndarray, np.ndarray]:
    """Condition the full stationary AR(1) covariance on every observed value."""
    n = x.size
    idx = np.arange(n)
    cov = s**2 * r ** np.abs(idx[:, None] - idx[None, :])
    o, m = ~np.isnan(x), np.isnan(x)
    k = cov[np.ix_(m, o)] @ np.linalg.inv(cov[np.ix_(o, o)])
    mean = x.copy()
    mean[m] = mu + k @ (x[o] - mu)
    var = np.zeros(n)
    var[m] = np.diag(cov[np.ix_(m, m)] - k @ cov[np.ix_(o, m)])
    return mean, np.sqrt(np.clip(var, 0, None))


def ar1(rng: np.random.Generator, n: int, r: float, s: float) -> np.ndarray:
    x = np.empty(n)
    x[0] = rng.normal(0, s)
    for t in range(1, n):
        x[t] = r * x[t - 1] + rng.normal(0, s * np.sqrt(1 - r**2))
    return x


def test_bridge_equals_full_gaussian_conditioning(rng: np.random.Generator) -> None:
    x = 5 + ar1(rng, 80, 0.8, 1.5)
    x[[0, 1, 10, 30, 31, 32, 33, 34, 35, 60, 79]] = np.nan
    mean, sd = impute_series(x)
    mu, s, r = ar1_parameters(x)
    bm, bsd = brute_force(x, mu, s, r)
    np.testing.assert_allclose(mean, bm, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sd, bsd, rtol=1e-7, atol=1e-9)


def test_observed_values_untouched_and_long_gaps_revert(rng: np.random.Generator) -> None:
    x = ar1(rng, 400, 0.7, 1.0)
    x[100:160] = np.nan
    mean, sd = impute_series(x)
    obs = ~np.isnan(x)
    np.testing.assert_array_equal(mean[obs], x[obs])
    assert (sd[obs] == 0).all()
    mu, s, _ = ar1_parameters(x)
    assert mean[130] == pytest.approx(mu, abs=1e-4)  # 0.7**30 of pull remains
    assert sd[130] == pytest.approx(s, rel=1e-4)
    assert sd[100] < sd[110] < sd[130]


def test_imputation_intervals_are_calibrated(rng: np.random.Generator) -> None:
    hits, total = 0, 0
    for _ in range(40):
        truth = ar1(rng, 365, 0.8, 2.0)
        x = truth.copy()
        x[rng.random(365) < 0.2] = np.nan
        mean, sd = impute_series(x)
        m = np.isnan(x)
        hits += int(np.sum(np.abs(truth[m] - mean[m]) <= 1.645 * sd[m]))
        total += int(m.sum())
    assert 0.86 <= hits / total <= 0.94


def test_too_few_values_is_an_error() -> None:
    with pytest.raises(ValueError, match="need"):
        impute_series(np.array([1.0, np.nan, 2.0, np.nan]))
