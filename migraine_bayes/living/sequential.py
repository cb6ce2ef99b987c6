"""Sequential drift detection: evidence accumulated day by day since the twin's fit (CUSUM).

For each day ``t`` after the fit, the null is the twin's one-step predictive probability
``p_t`` (:class:`Null`). Each posterior draw (the fitted posterior, not the filter, which adapts
to drift) carries every term of its log-odds but the latent state as fitted, and its latent
state forward from the fit's last day as the AR(1) its own kernel implies (amplitude and
memory: :func:`migraine_bayes.model.hsgp.ar1_persistence`), filtered over the monitored days
(Gaussian, one Newton step per day); the draws are weighted by their predictive likelihood of
the monitored days before ``t`` — Bayes' rule applied to the new days without a refit. So the
latent state keeps the persistence the twin fitted (a month of higher risk is a wander the twin
expects, not an alarm), and what the diary has shown since the fit about where this patient
sits within the posterior is used. Each alternative ``a`` moves the day's log-odds by a shift
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
terms, covariates and gaps), a latent path drawn from the draw's AR(1) and outcomes drawn from
it, and run the same one-step null and CUSUMs, restarted after each alarm; ``h`` is the
smallest threshold giving at most ``alpha`` alarms per 28 days over the replicates — so a
stationary patient the twin describes raises at most ``alpha`` alarms per 28-day window (an
average run length of 560 days), by construction. The alarm is labelled by the alternative of
most posterior weight: a baseline shift; a changed trigger sensitivity when the twin believed
the feature mattered; a new association when it did not. A feature names an alarm only if it
also beats a baseline shift of any size (a feature above its centre all month moves the odds as
a baseline shift does).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import logsumexp, softmax

from migraine_bayes.model.kernel import flattening, inverse_link, link

BLOCK_DAYS = 28
ALPHA = 0.05
SHIFT = float(np.log(2.0))  # log odds ratio of every alternative
N_REPLICATES = 400
CALIBRATION_DAYS = 224  # days per replicate diary (8 windows of 28)
BASELINE_SIZES = np.array([0.5, 1.0, 1.5, 2.0, 3.0, 4.0])  # × log 2: what a feature must beat
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


@dataclass(frozen=True)
class Null:
    """The twin's per-draw description of the monitored days, before their outcomes.

    Draw ``s``'s log-odds on monitored day ``t`` is ``eta[s, t] + x_st``, flattened by the
    features' imputation variance like the model's likelihood
    (``/ sqrt(1 + pi (spread + var x) / 8)``, :mod:`migraine_bayes.model.builder`); the latent
    state ``x`` starts at ``start`` (variance ``start_var``) on the fit's last day and moves as
    an AR(1), ``x_t = rho^g x_t-g + amplitude sqrt(1 - rho^2g) eps``, over the ``gaps`` ``g``
    between monitored days. :meth:`fixed` wraps known per-draw probabilities (no latent state).
    """

    eta: np.ndarray  # (S, n) log-odds of every term but the latent state
    spread: np.ndarray  # (S, n) imputation variance of the features' term
    start: np.ndarray  # (S,) latent state on the fit's last day
    start_var: np.ndarray  # (S,) its variance (0: a fitted draw's own latent path)
    rho: np.ndarray  # (S,) the latent state's autocorrelation per day
    amplitude: np.ndarray  # (S,) its stationary standard deviation (log-odds)
    gaps: np.ndarray  # (n,) days since the previous monitored day (the first: the fit's last)

    @classmethod
    def fixed(cls, p: np.ndarray) -> Null:
        """Known per-draw probabilities ``p`` (S, n) on consecutive days, no latent state."""
        p = np.asarray(p, dtype=float)
        s = p.shape[0]
        return cls(link(p), np.zeros(p.shape), np.zeros(s),
                   np.zeros(s), np.ones(s), np.zeros(s), np.ones(p.shape[1]))

    @property
    def n_draws(self) -> int:
        """Posterior draws ``S``."""
        return self.eta.shape[0]

    def subset(self, draws: np.ndarray) -> Null:
        """The null of posterior draws ``draws`` only."""
        return replace(self, eta=self.eta[draws], spread=self.spread[draws],
                       start=self.start[draws], start_var=self.start_var[draws],
                       rho=self.rho[draws], amplitude=self.amplitude[draws])

    def probabilities(self) -> np.ndarray:
        """Per-draw probabilities (S, n) with the latent state's forecast integrated out."""
        reach = np.cumsum(self.gaps)[None, :]
        a = self.rho[:, None] ** reach
        var = a**2 * self.start_var[:, None] + self.amplitude[:, None] ** 2 * (1 - a**2)
        return inverse_link(self.eta + a * self.start[:, None], self.spread + var)

    def one_step(self, y: np.ndarray, days: np.ndarray | None = None,
                 gaps: np.ndarray | None = None) -> np.ndarray:
        """One-step predictive probabilities (..., n) of outcomes ``y`` (..., n).

        Day ``t``'s is the mean over draws of their predictive probability given ``y`` before
        ``t``, each draw weighted by its likelihood of those outcomes (every draw equal on the
        first day). ``days`` (..., n) index the monitored days and ``gaps`` (..., n) replace
        theirs (replicate diaries, :func:`calibrate`); by default the monitored days in order.
        """
        y = np.asarray(y, dtype=float)
        eta, spread = (self.eta, self.spread) if days is None else (
            np.moveaxis(self.eta[:, days], 0, -2), np.moveaxis(self.spread[:, days], 0, -2))
        gaps = np.broadcast_to(self.gaps if gaps is None else gaps, y.shape)
        batch = (*y.shape[:-1], self.n_draws)
        m = np.broadcast_to(self.start, batch).copy()
        v = np.broadcast_to(self.start_var, batch).copy()
        amp2 = self.amplitude**2
        log_w = np.zeros(batch)
        out = np.empty(y.shape)
        for t in range(y.shape[-1]):
            a = self.rho ** gaps[..., t, None]
            m, v = a * m, a * a * v + amp2 * (1 - a * a)
            q = np.clip(inverse_link(eta[..., t] + m, spread[..., t] + v), 1e-9, 1 - 1e-9)
            out[..., t] = np.sum(softmax(log_w, axis=-1) * q, axis=-1)
            yt = y[..., t, None]
            log_w += np.where(yt > 0, np.log(q), np.log1p(-q))
            # the latent state's Gaussian update: one Newton step of the day's likelihood
            scale = flattening(spread[..., t])
            mode = inverse_link(eta[..., t] + m, spread[..., t])
            v_new = v / (1 + v * scale**2 * mode * (1 - mode))
            m, v = m + v_new * scale * (yt - mode), v_new
        return out

    def simulate(self, rng: np.random.Generator, draws: np.ndarray, days: np.ndarray,
                 gaps: np.ndarray) -> np.ndarray:
        """Replicate outcomes (R, L) of draws ``draws`` (R,) on monitored days ``days`` (R, L).

        ``gaps`` (R, L) between the replicate's days; each replicate's latent path is drawn
        from its draw's AR(1), starting from the fit's last day.
        """
        x = self.start[draws] + np.sqrt(self.start_var[draws]) * rng.standard_normal(draws.size)
        rho, amp = self.rho[draws], self.amplitude[draws]
        path = np.empty(days.shape)
        for j in range(days.shape[1]):
            a = rho ** gaps[:, j]
            x = a * x + amp * np.sqrt(1 - a * a) * rng.standard_normal(draws.size)
            path[:, j] = x
        eta, spread = self.eta[draws[:, None], days], self.spread[draws[:, None], days]
        return (rng.random(days.shape) < inverse_link(eta + path, spread)).astype(float)


def count_pit(null: Null, y: np.ndarray, rng: np.random.Generator,
              replicates: int = 2000) -> float:
    """Randomised PIT of the number of attacks in ``y`` (n,), the first n monitored days.

    The share of ``replicates`` replicate diaries of those days (a posterior draw, its latent
    path and outcomes, :meth:`Null.simulate`) with fewer attacks, plus a uniform share of the
    ties. Over patients whose diaries the null describes it is uniform on (0, 1); a null surer
    of the level than the diary bears out piles it up near 0 and 1, a vaguer one near 0.5.
    """
    n = np.asarray(y).size
    draws = rng.integers(0, null.n_draws, replicates)
    days = np.broadcast_to(np.arange(n), (replicates, n))
    gaps = np.broadcast_to(null.gaps[:n], (replicates, n))
    counts = null.simulate(rng, draws, days, gaps).sum(axis=1)
    observed = float(np.sum(y))
    return float(np.mean(counts < observed) + rng.random() * np.mean(counts == observed))


def log_likelihood_ratios(y: np.ndarray, p0: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """``l_at`` (..., A, n): outcomes ``y`` and null ``p0`` (..., n), shifts (..., A, n)."""
    p0 = np.clip(np.asarray(p0), 1e-9, 1 - 1e-9)[..., None, :]
    p1 = np.clip(inverse_link(link(p0) + shifts), 1e-12, 1 - 1e-12)
    y = np.asarray(y)[..., None, :]
    return np.where(y > 0, np.log(p1 / p0), np.log1p(-p1) - np.log1p(-p0))


def log_prior(labels: list[tuple[str, str]]) -> np.ndarray:
    """Log prior weights of the alternatives: half on the baseline, half over the features."""
    n_base = sum(kind == "baseline" for kind, _ in labels)
    n_feat = len(labels) - n_base
    w = np.array([0.5 / n_base if kind == "baseline" else 0.5 / n_feat
                  for kind, _ in labels]) if n_feat else np.full(n_base, 1.0 / n_base)
    return np.log(w)


def page_sums(llr: np.ndarray) -> np.ndarray:
    """Page's CUSUM ``S_a = max(0, S_a + l_at)`` of each alternative on the last day (A,).

    ``llr`` (A, n); no restarts (:func:`cusum` restarts after each alarm).
    """
    s = np.zeros(llr.shape[0])
    for t in range(llr.shape[1]):
        s = np.maximum(0.0, s + llr[:, t])
    return s


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


def calibrate(null: Null, shifts: np.ndarray, prior: np.ndarray,
              rng: np.random.Generator, alpha: float = ALPHA, block: int = BLOCK_DAYS,
              replicates: int = N_REPLICATES, length: int = CALIBRATION_DAYS
              ) -> tuple[float, np.ndarray]:
    """Threshold ``h`` from replicate diaries of the posterior predictive (module text).

    ``null``: the twin's :class:`Null` of the monitored days (known per-draw probabilities:
    :meth:`Null.fixed`), ``shifts`` (A, n). Each replicate draws one posterior draw
    and ``length`` days resampled from the monitored ones (their terms, covariates and gaps),
    simulates a latent path and outcomes (:meth:`Null.simulate`), and runs the one-step null
    (:meth:`Null.one_step`) and the CUSUMs restarting after each alarm; ``h`` is the smallest
    threshold with at most ``alpha`` alarms per ``block`` days over all replicates (an average
    run length of ``block / alpha`` days). Returns ``h`` and the replicates' ``M`` paths
    (R, length), without restarts.
    """
    n = null.eta.shape[1]
    draws = rng.integers(0, null.n_draws, replicates)
    days = rng.integers(0, n, (replicates, length))
    gaps = null.gaps[rng.integers(0, n, (replicates, length))]
    llr = np.empty((replicates, shifts.shape[0], length))
    for r in range(0, replicates, 50):  # (50, S, length) at a time
        d, g = days[r:r + 50], gaps[r:r + 50]
        y_rep = null.simulate(rng, draws[r:r + 50], d, g)
        llr[r:r + 50] = log_likelihood_ratios(y_rep, null.one_step(y_rep, d, g),
                                              shifts[:, d].transpose(1, 0, 2))
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

    null: Null  # the twin's description of the monitored days
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
        llr = log_likelihood_ratios(y, self.null.one_step(y), self.shifts)
        m, alarms = cusum(llr, self.prior, self.threshold)
        return m, alarms, llr

    def label(self, y: np.ndarray, day: int, beta: np.ndarray, names: list[str]
              ) -> tuple[str, str, float]:
        """What an alarm on ``day`` says: category, alternative and its accumulated evidence.

        ``y`` (n,) the outcomes of the monitored days; the alternative of most posterior weight
        on that day names it — a baseline shift; a changed trigger sensitivity when the twin
        believed the feature mattered (``beta`` (S, K) draws, :data:`BELIEVED`); a new
        association when not. A feature names the alarm only if its evidence also beats, with
        the same prior weights, a baseline shift of any size (:data:`BASELINE_SIZES` times
        log 2, either way, accumulated as the test does): a feature that sits above (or below)
        its centre for the whole run moves the odds as a baseline shift does, and that is what
        it is labelled, unless the attacks follow its day-to-day changes.
        """
        y = np.asarray(y, dtype=float)
        p0 = self.null.one_step(y)
        llr = log_likelihood_ratios(y, p0, self.shifts)
        totals = page_sums(llr[:, :day + 1])  # each alternative's CUSUM on the alarm day
        a = int(np.argmax(totals + self.prior))
        kind, alternative = self.labels[a]
        if kind != "baseline":  # does a baseline shift of some size do as well?
            sizes = SHIFT * np.concatenate([BASELINE_SIZES, -BASELINE_SIZES])
            best = page_sums(log_likelihood_ratios(
                y[:day + 1], p0[:day + 1], np.broadcast_to(sizes[:, None], (sizes.size, day + 1))))
            base = [i for i, (k, _) in enumerate(self.labels) if k == "baseline"]
            if best.max() + self.prior[base[0]] >= totals[a] + self.prior[a]:
                a = base[0] if sizes[int(np.argmax(best))] > 0 else base[1]
                return "baseline shift", self.labels[a][1], float(best.max())
        if kind == "baseline":
            return "baseline shift", alternative, float(totals[a])
        p_pos = float((beta[:, names.index(kind)] > 0).mean())
        category = ("changed trigger sensitivity" if p_pos >= BELIEVED or p_pos <= 1 - BELIEVED
                    else "new association")
        return category, alternative, float(totals[a])


def sequential_test(null: Null | np.ndarray, z: np.ndarray, names: list[str],
                    rng: np.random.Generator, alpha: float = ALPHA, block: int = BLOCK_DAYS,
                    replicates: int = N_REPLICATES) -> SequentialTest:
    """The test of the monitored days, calibrated (:func:`calibrate`).

    Arguments as in :func:`sequential_check`.
    """
    null = null if isinstance(null, Null) else Null.fixed(null)
    shifts, labels = alternatives(z, names)
    prior = log_prior(labels)
    if null.n_draws > NULL_DRAWS:
        null = null.subset(np.sort(rng.choice(null.n_draws, NULL_DRAWS, replace=False)))
    h, m_rep = calibrate(null, shifts, prior, rng, alpha, block, replicates)
    return SequentialTest(null, shifts, labels, prior, h, m_rep)


def sequential_check(null: Null | np.ndarray, y: np.ndarray, z: np.ndarray, names: list[str],
                     beta: np.ndarray, rng: np.random.Generator, alpha: float = ALPHA,
                     block: int = BLOCK_DAYS, replicates: int = N_REPLICATES) -> dict:
    """The sequential test of one patient's monitored days (module text).

    Parameters
    ----------
    null : Null or ndarray
        The twin's :class:`Null` of the days since the fit (known outcomes only), or known
        per-draw probabilities (S, n) of them; a seeded subsample of :data:`NULL_DRAWS` draws
        makes the one-step null.
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
    test = sequential_test(null, z, names, rng, alpha, block, replicates)
    m_obs, alarms, _ = test.run(y)
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
        category, alternative, total = test.label(y, first, beta, names)
        evidence = (f"{alternative}: accumulated log-likelihood ratio {total:.2f} crossed "
                    f"the threshold {h:.2f} on day {first + 1} of the {n} since the fit "
                    f"(odds ratio {np.exp(SHIFT):.0f} per step against the twin)")
    return {"statistic": float(m_obs[-1]), "threshold": h, "alarm": first is not None,
            "alarm_day": first, "alarm_days": crossings, "p_value": p_value,
            "category": category, "alternative": alternative, "evidence": evidence,
            "days": int(n)}
