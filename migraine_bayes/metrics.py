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


def log_scores(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Each day's log predictive density ``y log p + (1-y) log(1-p)``."""
    y, p = np.asarray(y), np.clip(np.asarray(p), EPS, 1 - EPS)
    return y * np.log(p) + (1 - y) * np.log1p(-p)


def log_score(y: np.ndarray, p: np.ndarray) -> float:
    """Mean log predictive density ``mean(y log p + (1-y) log(1-p))`` (higher is better)."""
    return float(np.mean(log_scores(y, p)))


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


def calibration_curve(y: np.ndarray, p: np.ndarray, bins: int = 10, level: float = 0.9
                      ) -> dict[str, np.ndarray]:
    """Reliability curve with equal-count bins and a Jeffreys interval per bin.

    Returns per bin the mean forecast (``p_mean``), the observed rate (``observed``), its
    ``level`` interval (``low``, ``high``; Beta(k + 1/2, n - k + 1/2) quantiles) and ``n``.
    """
    from scipy.stats import beta

    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    rows = [c for c in np.array_split(order, min(bins, max(y.size, 1))) if c.size]
    k = np.array([y[c].sum() for c in rows])
    n = np.array([c.size for c in rows], dtype=float)
    a = (1 - level) / 2
    return {"p_mean": np.array([p[c].mean() for c in rows]), "observed": k / n,
            "low": beta.ppf(a, k + 0.5, n - k + 0.5),
            "high": beta.ppf(1 - a, k + 0.5, n - k + 0.5),
            "n": n}


def classification(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Alarm metrics when ``p >= threshold`` raises an alarm.

    Sensitivity (= recall), specificity, PPV (= precision), NPV, F1 and the diagnostic odds
    ratio ``(TP TN) / (FP FN)`` (with 0.5 added to every cell when one is empty).
    """
    y = np.asarray(y).astype(bool)
    alarm = np.asarray(p) >= threshold
    tp, fp = float((alarm & y).sum()), float((alarm & ~y).sum())
    fn, tn = float((~alarm & y).sum()), float((~alarm & ~y).sum())

    def ratio(a: float, b: float) -> float:
        return a / b if b else float("nan")

    sens, ppv = ratio(tp, tp + fn), ratio(tp, tp + fp)
    cells = np.array([tp, tn, fp, fn]) + (0.5 if min(tp, tn, fp, fn) == 0 else 0.0)
    return {"threshold": float(threshold), "sensitivity": sens,
            "specificity": ratio(tn, tn + fp), "ppv": ppv, "npv": ratio(tn, tn + fn),
            "f1": ratio(2 * tp, 2 * tp + fp + fn),
            "diagnostic_odds_ratio": float(cells[0] * cells[1] / (cells[2] * cells[3])),
            "alarm_rate": float(alarm.mean()) if alarm.size else float("nan")}


def lead_times(y: np.ndarray, p: np.ndarray, threshold: float) -> np.ndarray:
    """Warning time of each attack in one patient's consecutive daily forecasts (days).

    For an attack on day ``t`` whose forecast raised an alarm, the lead time is the length of
    the unbroken run of alarm days ending on ``t`` (1 = alarm on the day only); an attack
    without an alarm has lead time 0. ``y`` NaN (unknown day) breaks no run.
    """
    y, alarm = np.asarray(y, dtype=float), np.asarray(p) >= threshold
    out, run = [], 0
    for t in range(y.size):
        run = run + 1 if alarm[t] else 0
        if y[t] == 1:
            out.append(run)
    return np.asarray(out, dtype=float)


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the precision–recall curve as average precision (NaN without an event).

    ``sum_k (R_k − R_{k−1}) P_k`` over the distinct thresholds, highest first (ties share a
    threshold): the step-wise area that does not interpolate optimistically.
    """
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    n1 = y.sum()
    if n1 == 0:
        return float("nan")
    order = np.argsort(-p, kind="stable")
    y, p = y[order], p[order]
    last = np.r_[np.flatnonzero(np.diff(p) != 0), p.size - 1]  # end of each tie group
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / n1
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def logistic_recalibration(y: np.ndarray, p: np.ndarray, offset_only: bool = False,
                           iterations: int = 50) -> tuple[float, float]:
    """Calibration intercept and slope: the logistic regression ``y ~ a + b logit(p)``.

    ``offset_only``: ``b`` fixed at 1 (calibration-in-the-large, ``logit(p)`` an offset): ``a``
    > 0 means the forecasts are too low on average. Otherwise ``b`` < 1: forecasts too extreme,
    > 1: too timid (Van Calster et al., J Clin Epidemiol 2016). Newton–Raphson from (0, 1);
    NaN with one class only or without a finite fit (separation).
    """
    from scipy.special import expit

    y = np.asarray(y, dtype=float)
    if y.size == 0 or y.min() == y.max():  # one class only: no finite fit
        return float("nan"), float("nan")
    x = np.log(np.clip(p, EPS, 1 - EPS)) - np.log1p(-np.clip(p, EPS, 1 - EPS))
    a, b = 0.0, 1.0
    for _ in range(iterations):
        mu = expit(a + b * x)
        w = mu * (1 - mu)
        if offset_only:
            step = np.array([(y - mu).sum() / max(w.sum(), EPS), 0.0])
        else:
            grad = np.array([(y - mu).sum(), ((y - mu) * x).sum()])
            hess = np.array([[w.sum(), (w * x).sum()], [(w * x).sum(), (w * x * x).sum()]])
            step = np.linalg.solve(hess + EPS * np.eye(2), grad)
        a, b = a + step[0], b + step[1]
        if not np.isfinite([a, b]).all():
            return float("nan"), float("nan")
        if np.abs(step).max() < 1e-10:
            break
    return float(a), float(b)


def observed_expected(y: np.ndarray, p: np.ndarray) -> float:
    """Calibration-in-the-large as the ratio of observed to expected events (1 = right)."""
    expected = float(np.sum(p))
    return float(np.sum(y) / expected) if expected > 0 else float("nan")


def net_benefit(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Net benefit of alarming when ``p ≥ t``, per threshold ``t`` (Vickers & Elkin 2006).

    ``TP/n − FP/n × t / (1 − t)``: true alarms, less false alarms weighted by the odds at which
    a patient would accept acting on one. Alarm-everyone is ``net_benefit(y, ones, t)``,
    alarm-no-one is 0.
    """
    y, p = np.asarray(y).astype(bool), np.asarray(p, dtype=float)
    t = np.asarray(thresholds, dtype=float)
    alarm = p[None, :] >= t[:, None]
    tp = (alarm & y[None, :]).sum(1) / max(y.size, 1)
    fp = (alarm & ~y[None, :]).sum(1) / max(y.size, 1)
    return tp - fp * t / (1 - t)
