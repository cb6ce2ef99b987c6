"""Sequential drift detection: evidence accumulated day by day since the twin's fit (CUSUM).

For each day ``t`` after the fit, the null is the twin's one-step predictive probability
``p_t``: its posterior draws (the fitted posterior, not the filter, which adapts to drift),
each weighted by its likelihood of the monitored days before ``t`` — Bayes' rule applied to the
new days without a refit, so that what the diary has shown since the fit about where this
patient sits within the posterior is used, and a replicate diary from any one draw looks
ordinary. Each alternative ``a`` moves the day's log-odds by a shift
``d_at`` — the baseline odds doubled or halved (``±log 2``), or each feature's effect
changed by ``±log 2`` per step of the feature (``±log 2 · z_tk``) — and scores the day by the
log-likelihood ratio ``l_at = log P(y_t | logit p_t + d_at) - log P(y_t | logit p_t)``. Page's
CUSUM ``S_at = max(0, S_a,t-1 + l_at)`` accumulates the evidence across days (and so across
any windows). The statistic weighs the alternatives like a Bayesian model comparison,
``M_t = log sum_a pi_a exp(S_at)``, with half the prior on the baseline shifts and half spread
over the features' alternatives: the false-alarm budget is spent where the evidence is, not
split evenly over every feature (Bonferroni), and a feature explains an alarm only when its
evidence beats the baseline's by the log of the number of feature alternatives.

The alarm threshold ``h`` is calibrated by simulation from the twin's own posterior predictive:
replicate diaries each take one posterior draw, days resampled from the monitored ones (their
probabilities and covariates) and outcomes drawn from it, and run the same one-step null and
CUSUMs, restarted after each alarm; ``h`` is the smallest threshold giving at most ``alpha``
alarms per 28 days over the replicates — so a stationary patient the twin
describes raises at most ``alpha`` alarms per 28-day window (an average run length of 560
days), by construction. The alarm is labelled by the alternative of most posterior weight: a
baseline shift; a changed trigger sensitivity when the twin believed the feature mattered; a
new association when it did not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit, logsumexp, softmax

BLOCK_DAYS = 28
ALPHA = 0.05
SHIFT = float(np.log(2.0))  # log odds ratio of every alternative
N_REPLICATES = 400
CALIBRATION_DAYS = 224  # days per replicate diary (8 windows of 28)
BELIEVED = 0.8  # P(effect > 0) beyond which (or below 1 - it) the twin believed a feature
MIN_DAYS = 3  # a feature's alternative needs it away from its centre on this many days
NULL_DRAWS = 200  # posterior draws (seeded subsample) behind the one-step predictive


def alternatives(z: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Log-odds shifts (A, n) of the alternatives and their (kind, label)."""
    n = z.shape[0]
    shifts = [np.full(n, SHIFT), np.full(n, -SHIFT)]
    labels = [("baseline", "baseline odds up"), ("baseline", "baseline odds down")]
    for k, name in enumerate(names):
        if np.sum(np.abs(z[:, k]) > 1e-9) < MIN_DAYS:
            continue
        for sign, word in ((1.0, "more"), (-1.0, "less")):
            shifts.append(sign * SHIFT * z[:, k])
            labels.append((name, f"attacks follow {name} {word}"))
    return np.array(shifts), labels


def one_step(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The one-step predictive (..., n) of draws ``p`` (..., S, n) given outcomes ``y`` (..., n).

    Day ``t``'s probability is the mean of the draws' ``p_st`` weighted by each draw's
    likelihood of ``y`` before ``t`` (every draw equal on the first day).
    """
    pc = np.clip(p, 1e-9, 1 - 1e-9)
    ll = np.where(np.asarray(y)[..., None, :] > 0, np.log(pc), np.log1p(-pc))
    before = np.cumsum(ll, axis=-1) - ll
    return np.sum(softmax(before, axis=-2) * p, axis=-2)


def log_likelihood_ratios(y: np.ndarray, p0: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """``l_at`` (..., A, n): outcomes ``y`` and null ``p0`` (..., n), shifts (..., A, n)."""
    p0 = np.clip(np.asarray(p0), 1e-9, 1 - 1e-9)[..., None, :]
    p1 = np.clip(expit(logit(p0) + shifts), 1e-12, 1 - 1e-12)
    y = np.asarray(y)[..., None, :]
    return np.where(y > 0, np.log(p1 / p0), np.log1p(-p1) - np.log1p(-p0))


def log_prior(labels: list[tuple[str, str]]) -> np.ndarray:
    """Log prior weights of the alternatives: half on the baseline, half over the features."""
    n_base = sum(kind == "baseline" for kind, _ in labels)
    n_feat = len(labels) - n_base
    w = np.array([0.5 / n_base if kind == "baseline" else 0.5 / n_feat
                  for kind, _ in labels]) if n_feat else np.full(n_base, 1.0 / n_base)
    return np.log(w)


def cusum(llr: np.ndarray, prior: np.ndarray, threshold: float | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """The statistic ``M`` (..., n) of Page's CUSUMs of ``llr`` (..., A, n), and the alarms.

    ``M_t = log sum_a prior_a exp(S_at)``: the alternatives' accumulated evidence weighed by
    their prior (``log_prior``), so a feature must beat the baseline by the log of the number
    of features' alternatives to dominate. With ``threshold``, a series' sums restart at 0
    after each of its alarms, as after a retraining; the alarms are a mask (..., n) (all False
    without a threshold).
    """
    s = np.zeros(llr.shape[:-1])
    out = np.empty(llr.shape[:-2] + llr.shape[-1:])
    alarms = np.zeros(out.shape, dtype=bool)
    for t in range(llr.shape[-1]):
        s = np.maximum(0.0, s + llr[..., t])
        out[..., t] = logsumexp(s + prior, axis=-1)
        if threshold is not None:
            alarms[..., t] = hit = out[..., t] > threshold
            s[hit] = 0.0
    return out, alarms


def calibrate(p: np.ndarray, shifts: np.ndarray, prior: np.ndarray, rng: np.random.Generator,
              alpha: float = ALPHA, block: int = BLOCK_DAYS, replicates: int = N_REPLICATES,
              length: int = CALIBRATION_DAYS) -> tuple[float, np.ndarray]:
    """Threshold ``h`` from replicate diaries of the posterior predictive (module text).

    ``p`` (S, n): per-draw probabilities of the monitored days, ``shifts`` (A, n). Each
    replicate draws one posterior draw and ``length`` days resampled from the monitored ones
    (their probabilities and covariates), simulates outcomes, and runs the one-step null
    (:func:`one_step`) and the CUSUMs restarting after each alarm; ``h`` is the smallest
    threshold with at most ``alpha`` alarms per ``block`` days over all replicates (an average
    run length of ``block / alpha`` days). Returns ``h`` and the replicates' ``M`` paths
    (R, length), without restarts.
    """
    draws = rng.integers(0, p.shape[0], replicates)
    days = rng.integers(0, p.shape[1], (replicates, length))
    llr = np.empty((replicates, shifts.shape[0], length))
    for r in range(0, replicates, 50):  # (50, S, length) at a time
        d = days[r:r + 50]
        probs = p[draws[r:r + 50, None], d]  # (r, L)
        y_rep = (rng.random(probs.shape) < probs).astype(float)
        null = one_step(p[:, d].transpose(1, 0, 2), y_rep)
        llr[r:r + 50] = log_likelihood_ratios(y_rep, null, shifts[:, d].transpose(1, 0, 2))
    m_rep, _ = cusum(llr, prior)
    budget = alpha * replicates * length / block  # alarms allowed over all replicates
    lo, hi = float(prior.max()), float(m_rep.max()) + 1e-6
    for _ in range(16):  # bisection on the alarm count (it falls as h rises)
        h = 0.5 * (lo + hi)
        if cusum(llr, prior, h)[1].sum() > budget:
            lo = h
        else:
            hi = h
    return hi, m_rep


@dataclass(frozen=True)
class SequentialTest:
    """One patient's calibrated test: null draws, alternatives, prior weights and threshold.

    Built by :func:`sequential_test`; :meth:`run` applies it to any outcomes of the monitored
    days.
    """

    p: np.ndarray  # (S, n) the null's per-draw probabilities
    shifts: np.ndarray  # (A, n)
    labels: list[tuple[str, str]]
    prior: np.ndarray  # (A,) log weights
    threshold: float
    replicate_paths: np.ndarray  # (R, L) the calibration's M paths, without restarts

    def run(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The test on outcomes ``y`` (..., n) of the monitored days.

        Returns ``M`` (..., n), the alarms (..., n; the sums restarted after each) and the
        log-likelihood ratios (..., A, n).
        """
        llr = log_likelihood_ratios(y, one_step(self.p, y), self.shifts)
        m, alarms = cusum(llr, self.prior, self.threshold)
        return m, alarms, llr

    def label(self, llr: np.ndarray, day: int, beta: np.ndarray, names: list[str]
              ) -> tuple[str, str, float]:
        """What an alarm on ``day`` says: category, alternative and its accumulated evidence.

        ``llr`` (A, n) of the diary; the alternative of most posterior weight on that day
        names it — a baseline shift; a changed trigger sensitivity when the twin believed the
        feature mattered (``beta`` (S, K) draws, :data:`BELIEVED`); a new association when not.
        """
        totals = np.zeros(len(self.labels))  # each alternative's CUSUM on the alarm day
        for t in range(day + 1):
            totals = np.maximum(0.0, totals + llr[:, t])
        a = int(np.argmax(totals + self.prior))
        kind, alternative = self.labels[a]
        if kind == "baseline":
            return "baseline shift", alternative, float(totals[a])
        p_pos = float((beta[:, names.index(kind)] > 0).mean())
        category = ("changed trigger sensitivity" if p_pos >= BELIEVED or p_pos <= 1 - BELIEVED
                    else "new association")
        return category, alternative, float(totals[a])


def sequential_test(p: np.ndarray, z: np.ndarray, names: list[str], rng: np.random.Generator,
                    alpha: float = ALPHA, block: int = BLOCK_DAYS,
                    replicates: int = N_REPLICATES) -> SequentialTest:
    """The test of the monitored days, calibrated (:func:`calibrate`).

    Arguments as in :func:`sequential_check`.
    """
    shifts, labels = alternatives(z, names)
    prior = log_prior(labels)
    if p.shape[0] > NULL_DRAWS:
        p = p[np.sort(rng.choice(p.shape[0], NULL_DRAWS, replace=False))]
    h, m_rep = calibrate(p, shifts, prior, rng, alpha, block, replicates)
    return SequentialTest(p, shifts, labels, prior, h, m_rep)


def sequential_check(p: np.ndarray, y: np.ndarray, z: np.ndarray, names: list[str],
                     beta: np.ndarray, rng: np.random.Generator, alpha: float = ALPHA,
                     block: int = BLOCK_DAYS, replicates: int = N_REPLICATES) -> dict:
    """The sequential test of one patient's monitored days (module text).

    Parameters
    ----------
    p : ndarray
        (S, n) per-draw probabilities of the days since the fit (known outcomes only); a
        seeded subsample of :data:`NULL_DRAWS` of them makes the one-step null.
    y : ndarray
        (n,) outcomes.
    z : ndarray
        (n, K) the design's standardised features.
    names : list of str
        The K feature names.
    beta : ndarray
        (S, K) the twin's draws of the feature effects (to label a feature alarm).
    rng : numpy.random.Generator
        Seeds the replicate diaries.
    alpha : float
        False-alarm rate per ``block`` days.
    block : int
        Days per window of the false-alarm rate (28).
    replicates : int
        Replicate diaries of the threshold's calibration.

    Returns
    -------
    dict
        ``statistic`` (``M`` on the last day), ``threshold``, ``alarm`` (``M`` crossed the
        threshold on some day), ``alarm_day`` (index of the first crossing), ``alarm_days``
        (every crossing, the sums restarted after each), ``p_value`` (share
        of replicates whose last-block maximum reaches the observed one), ``category``,
        ``alternative`` and ``evidence`` (words).
    """
    test = sequential_test(p, z, names, rng, alpha, block, replicates)
    m_obs, alarms, llr = test.run(y)
    h, m_rep = test.threshold, test.replicate_paths
    crossings = [int(t) for t in np.flatnonzero(alarms)]
    first = crossings[0] if crossings else None
    n = y.size
    observed = float(m_obs[max(0, n - block):].max())
    # share of replicate 28-day windows (after the first) whose maximum reaches the observed
    windows = m_rep[:, block:].reshape(m_rep.shape[0], -1, block).max(-1).ravel()
    p_value = float((np.sum(windows >= observed) + 1) / (windows.size + 1))
    category, alternative = None, None
    evidence = (f"no drift: the {n} days since the fit are what the twin expects (CUSUM "
                f"{m_obs[-1]:.2f}, alarm above {h:.2f})")
    if first is not None:
        category, alternative, total = test.label(llr, first, beta, names)
        evidence = (f"{alternative}: accumulated log-likelihood ratio {total:.2f} crossed "
                    f"the threshold {h:.2f} on day {first + 1} of the {n} since the fit "
                    f"(odds ratio {np.exp(SHIFT):.0f} per step against the twin)")
    return {"statistic": float(m_obs[-1]), "threshold": h, "alarm": first is not None,
            "alarm_day": first, "alarm_days": crossings, "p_value": p_value,
            "category": category, "alternative": alternative, "evidence": evidence,
            "days": int(n)}
