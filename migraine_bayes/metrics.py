"""Scoring rules and discrimination for binary forecasts (numpy; no model knowledge).

``y`` is 0/1, ``p`` the forecast probability, both shape (n,).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

EPS = 1e-12


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared error of the probability (lower is better; 0.25 = coin flip at p = 0.5)."""
    return float(np.mean((np.asarray(p) - np.asarray(y)) ** 2))


def log_score(y: np.ndarray, p: np.ndarray) -> float:
    """Mean log predictive density ``mean(y log p + (1-y) log(1-p))`` (higher is better)."""
    y, p = np.asarray(y), np.clip(np.asarray(p), EPS, 1 - EPS)
    return float(np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney, ties count half); NaN with one class only."""
    y = np.asarray(y).astype(bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """ECE with equal-count bins: mean over bins of |observed rate − mean forecast|, weighted."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    order = np.argsort(p)
    total = 0.0
    for chunk in np.array_split(order, bins):
        if chunk.size:
            total += chunk.size * abs(y[chunk].mean() - p[chunk].mean())
    return float(total / max(y.size, 1))
