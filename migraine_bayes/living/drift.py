"""Drift: posterior predictive checks of a twin on a recent window, and what kind of drift.

On the last ``window`` diary days with a known outcome, the fitted posterior (not the filter,
which adapts to drift) predicts each day with that day's observed covariates. Checks:

* **count**: the observed number of attacks against its posterior predictive distribution
  (replicated outcomes ``y_rep ~ Bernoulli(p_s)`` over draws; two-sided mid-p);
* **log score**: the observed log score against the log scores of replicated outcomes
  (one-sided: worse than the twin expects);
* **PIT**: randomised probability integral transforms of the daily outcomes, Kolmogorov-Smirnov
  test of uniformity;
* **baseline shift**: the score statistic ``(sum y - sum p) / sd`` (sd including the posterior's
  own uncertainty) with the implied log-odds offset;
* **trigger scores**: per model feature, ``sum (y - p)(z - mean z)`` against the same score
  under replicated outcomes (so the twin's uncertainty about the feature's effect widens it; the
  p-value is the replicates' two-sided tail share, since rare 0/1 features make the score far
  from normal; ``trigger_z`` is the score over the replicates' sd) — a change in how the outcome
  follows that feature.

An alarm needs the baseline statistic (two-sided, level ``alpha / 2``) or a trigger score
(two-sided, Bonferroni ``alpha / 2`` over features) to be significant, so a stationary patient
raises it in about ``alpha`` of windows. The drift is categorised as a baseline shift, a changed
trigger sensitivity (the twin believed the feature mattered) or a new association (it did not).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy import optimize, stats

from migraine_bayes.cohort.io import Cohort
from migraine_bayes.dims import CHAIN, DRAW, FEATURE, PATIENT
from migraine_bayes.living.sequential import Null, sequential_check
from migraine_bayes.model.hsgp import ar1_persistence
from migraine_bayes.model.kernel import inverse_link, link, log_odds, probabilities
from migraine_bayes.state import build_panel
from migraine_bayes.twin.core import DigitalTwin
from migraine_bayes.twin.forecast import posterior_terms
from migraine_bayes.twin.record import HORIZON_DAYS, TwinError

WINDOW_DAYS = 28
ALPHA = 0.05
MIN_DAYS = 3  # a feature is tested only when it varies on at least this many days
BELIEVED = 0.8  # P(effect > 0) beyond which (or below 1 - it) the twin believed a feature mattered


def check_drift(twin: DigitalTwin, cohort: Cohort | xr.Dataset | None = None,
                window: int = WINDOW_DAYS, alpha: float = ALPHA, seed: int = 0,
                end: str | None = None) -> list[dict]:
    """Drift checks of every patient of the twin on the last ``window`` diary days.

    Parameters
    ----------
    twin : DigitalTwin
        The fitted twin; its posterior (not its filter) is checked.
    cohort : Cohort or xarray.Dataset, optional
        Data including the recent days, or their panel (built with ``horizon_days=
        HORIZON_DAYS``); default the twin's own panel, updated days included.
    window : int
        Days in the window (diary days, whether or not the outcome is known).
    alpha : float
        Alarm level per window.
    seed : int
        Seed of the replicated outcomes and randomised PITs.
    end : str, optional
        Last day of the window (YYYY-MM-DD); default the last diary day.

    Returns
    -------
    list of dict
        Per patient: window dates, known days, attacks, expected attacks (mean, 90% interval),
        every p-value and statistic above, ``alarm``, ``category`` and ``evidence`` (words).
    """
    if window < 7:
        raise TwinError(f"a drift window needs at least 7 days, got {window}")
    panel = _panel(twin, cohort)
    design = twin.design(panel)
    center, half, _ = domain = twin.domain
    beta = twin.posterior.posterior["beta"]
    rng = np.random.default_rng(seed)
    out = []
    for i, pid in enumerate(design.patients):
        dates = pd.to_datetime(panel["date"].sel({PATIENT: pid}).values)
        last = int(panel["in_diary"].sel({PATIENT: pid}).sum()) - 1
        if end is not None:
            last = int(np.searchsorted(dates.values, np.datetime64(pd.Timestamp(end))))
        first = max(0, last - window + 1)
        days = np.arange(first, last + 1)
        days = days[~np.isnan(design.y[i, days])]
        if days.size < 7:
            raise TwinError(f"patient {pid}: only {days.size} days with a known outcome in the "
                            "window; a drift check needs at least 7")
        if days[-1] > center + half:
            raise TwinError(f"patient {pid}: the window reaches past the twin's latent-state "
                            "domain; retrain the twin")
        p = probabilities(posterior_terms(twin.posterior.posterior, design, i, days, domain))
        b = beta.sel({PATIENT: pid}).stack(s=(CHAIN, DRAW)).transpose("s", FEATURE).values
        res = _checks(p, design.y[i, days], design.z_mean[i, days], design.feature_names, b,
                      alpha, rng)
        out.append({"patient_id": pid, "window_start": str(dates[first].date()),
                    "window_end": str(dates[last].date()), **res})
    return out


def check_sequential(twin: DigitalTwin, cohort: Cohort | xr.Dataset | None = None,
                     end: str | None = None, alpha: float = ALPHA, seed: int = 0) -> list[dict]:
    """Sequential drift test of every patient over all days since the fit, up to ``end``.

    The CUSUM of :mod:`migraine_bayes.living.sequential` on the twin's fitted posterior (not its
    filter): evidence accumulates from the first day after the fit (an admitted patient: the
    first diary day, against the population), for as long as the twin runs unretrained
    (:func:`monitored_null`). ``cohort``/``end`` as in :func:`check_drift`.

    Returns
    -------
    list of dict
        Per patient: ``since``/``until`` (first and last day tested), ``days`` (with a known
        outcome), ``statistic``, ``threshold``, ``alarm``, ``alarm_date``, ``p_value``,
        ``category``, ``alternative``, ``evidence``.
    """
    panel = _panel(twin, cohort)
    design = twin.design(panel)
    beta = twin.posterior.posterior["beta"]
    out = []
    for i, pid in enumerate(design.patients):
        rng = np.random.default_rng([seed, i])
        dates = pd.to_datetime(panel["date"].sel({PATIENT: pid}).values)
        fitted = int(twin.record.fitted_days(pid))
        last = int(panel["in_diary"].sel({PATIENT: pid}).sum()) - 1
        if end is not None:
            last = min(last, int(np.searchsorted(dates.values, np.datetime64(pd.Timestamp(end)),
                                                 side="right")) - 1)
        days = np.arange(fitted, last + 1)
        days = days[~np.isnan(design.y[i, days])]
        row = {"patient_id": pid, "since": str(dates[fitted].date()) if fitted <= last else None,
               "until": str(dates[last].date()) if last >= 0 else None}
        if days.size == 0:
            out.append(row | {"days": 0, "statistic": 0.0, "threshold": float("nan"),
                              "alarm": False, "alarm_date": None, "p_value": 1.0,
                              "category": None, "alternative": None,
                              "evidence": "no day with a known outcome since the fit"})
            continue
        null = monitored_null(twin, design, i, days, fitted - 1)
        b = beta.sel({PATIENT: pid}).stack(s=(CHAIN, DRAW)).transpose("s", FEATURE).values
        res = sequential_check(null, design.y[i, days], design.z_mean[i, days],
                               design.feature_names, b, rng, alpha)
        day = res.pop("alarm_day")
        res.pop("alarm_days")
        res["alarm_date"] = None if day is None else str(dates[days[day]].date())
        out.append(row | res)
    return out


def monitored_null(twin: DigitalTwin, design, row: int, days: np.ndarray, last_fitted: int
                   ) -> Null:
    """The twin's :class:`~.sequential.Null` of design patient ``row`` on ``days``.

    Every term of each posterior draw but the latent state on ``days`` (after the fit), and
    the draw's latent state on ``last_fitted`` (the fit's last diary day) carried forward as
    the AR(1) its amplitude and lengthscale imply
    (:func:`migraine_bayes.model.hsgp.ar1_persistence`) — on every monitored day, near the fit
    or months past the latent basis's domain alike.
    """
    pid = design.patients[row]
    post = twin.posterior.posterior
    terms = posterior_terms(post, design, row, days, twin.domain)
    start = posterior_terms(post, design, row, np.array([max(last_fitted, 0)]),
                            twin.domain)["latent"][:, 0]

    def draws(name: str) -> np.ndarray:  # chain-major, like the terms' draws
        var = post[name].sel({PATIENT: pid}) if PATIENT in post[name].dims else post[name]
        return var.stack(s=(CHAIN, DRAW)).values.astype(float)

    eta, _ = log_odds(terms | {"latent": np.zeros_like(terms["latent"])})  # AR(1) instead
    return Null(eta, terms["spread"], start, np.zeros(start.size),
                ar1_persistence(draws("lengthscale")), draws("gp_amplitude"),
                np.diff(days, prepend=last_fitted).astype(float))


def _panel(twin: DigitalTwin, cohort: Cohort | xr.Dataset | None) -> xr.Dataset:
    if cohort is None:
        return twin.panel
    if isinstance(cohort, Cohort):
        return build_panel(cohort, patients=twin.patients, horizon_days=HORIZON_DAYS)
    return cohort.sel({PATIENT: twin.patients})


def _checks(p: np.ndarray, y: np.ndarray, z: np.ndarray, names: list[str], beta: np.ndarray,
            alpha: float, rng: np.random.Generator) -> dict:
    pbar = p.mean(0)
    n = y.size
    rep = rng.random(p.shape) < p  # (S, n) replicated outcomes, one per draw
    counts = rep.sum(1)
    obs = float(y.sum())
    p_count = _two_sided_mid_p(counts, obs)
    ls_rep = np.where(rep, np.log(pbar), np.log1p(-pbar)).sum(1)
    ls_obs = float(np.where(y > 0, np.log(pbar), np.log1p(-pbar)).sum())
    p_ls = float(((ls_rep < ls_obs).sum() + 0.5 * (ls_rep == ls_obs).sum() + 0.5)
                 / (ls_rep.size + 1))
    u = rng.random(n)
    pit = np.where(y > 0, 1 - pbar + u * pbar, u * (1 - pbar))
    p_pit = float(stats.kstest(pit, "uniform").pvalue)
    sd = float(np.sqrt(max(counts.var(), 1e-12)))
    z_base = (obs - float(pbar.sum())) / sd
    p_base = float(2 * stats.norm.sf(abs(z_base)))
    offset = _offset(y, pbar)
    scores, p_raw = {}, {}
    x = z - z.mean(0)  # (n, K), centred in the window: separate from a baseline shift
    null = (rep - pbar) @ x  # (S, K): scores of replicated outcomes, epistemic spread included
    obs_score = (y - pbar) @ x
    spread = null.std(0)
    for k, name in enumerate(names):
        if spread[k] > 1e-6 and np.ptp(z[:, k]) > 0 and np.sum(x[:, k] != 0) >= MIN_DAYS:
            scores[name] = float(obs_score[k] / spread[k])
            # rare 0/1 features make the score far from normal: p-value from the replicates
            extreme = np.sum(np.abs(null[:, k]) >= abs(obs_score[k]) - 1e-12)
            p_raw[name] = float((extreme + 1) / (null.shape[0] + 1))
    k_tests = max(len(scores), 1)
    p_feat = {f: float(min(1.0, p * k_tests)) for f, p in p_raw.items()}
    worst = min(p_feat, key=p_feat.get) if p_feat else None
    base_alarm = p_base < alpha / 2
    feat_alarm = worst is not None and p_feat[worst] < alpha / 2
    category, evidence = None, "no drift: the recent days are what the twin expects"
    if base_alarm and (not feat_alarm or p_base <= p_feat[worst]):
        direction = "up" if z_base > 0 else "down"
        category = "baseline shift"
        evidence = (f"{obs:.0f} attacks in {n} days against {pbar.sum():.1f} expected "
                    f"(z = {z_base:+.2f}, p = {p_base:.3g}); the baseline log-odds moved "
                    f"{direction} by about {offset:+.2f} (odds × {np.exp(offset):.2f})")
    elif feat_alarm:
        k = names.index(worst)
        p_pos = float((beta[:, k] > 0).mean())
        believed = p_pos >= BELIEVED or p_pos <= 1 - BELIEVED
        category = "changed trigger sensitivity" if believed else "new association"
        evidence = (f"attacks follow {worst} {'more' if scores[worst] > 0 else 'less'} than "
                    f"the twin expects (score z = {scores[worst]:+.2f}, Bonferroni p = "
                    f"{p_feat[worst]:.3g}); the twin's P(effect > 0) was {p_pos:.2f}")
    lo, hi = np.quantile(counts, (0.05, 0.95))
    return {
        "known_days": int(n), "attacks": int(obs),
        "expected_attacks": {"mean": float(counts.mean()), "low": float(lo), "high": float(hi)},
        "p_count": p_count, "p_log_score": p_ls, "p_pit": p_pit, "baseline_z": z_base,
        "p_baseline": p_base, "offset_log_odds": offset, "trigger_z": scores,
        "p_trigger_bonferroni": p_feat, "alarm": bool(base_alarm or feat_alarm),
        "category": category, "evidence": evidence,
    }


def _two_sided_mid_p(samples: np.ndarray, obs: float) -> float:
    eq = float((samples == obs).mean())
    hi = float((samples > obs).mean()) + 0.5 * eq
    lo = float((samples < obs).mean()) + 0.5 * eq
    return float(min(1.0, 2 * min(hi, lo)))


def _offset(y: np.ndarray, pbar: np.ndarray) -> float:
    """Log-odds shift making the expected count equal the observed one (±3 at most)."""
    eta = link(pbar)

    def gap(d: float) -> float:
        return float(inverse_link(eta + d).sum() - y.sum())

    if gap(-3.0) > 0:
        return -3.0
    if gap(3.0) < 0:
        return 3.0
    return float(optimize.brentq(gap, -3.0, 3.0))
