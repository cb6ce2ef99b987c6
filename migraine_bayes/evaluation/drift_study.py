"""How well drift checks find drift on synthetic patients with known drift (and stay quiet).

Each patient of a cohort simulated with the generator's drift option (half drifting: a baseline
doubling of the odds or a trigger sensitivity appearing, OR 2.5, on a known day ``D``) gets a
twin fitted on its diary up to ``D - lead`` (stationary patients: a cut drawn from the same
range). Drift checks then run every ``step`` days on the last ``window`` days, the window end
moving from ``cut + step`` to ``D + within``. A drifting patient is *detected* when a window
ending in ``(D, D + within]`` raises the alarm; every window of a stationary patient, and every
window of a drifting one that ends before ``D``, counts towards the false-alarm rate.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from migraine_bayes.cohort.truncate import truncate
from migraine_bayes.living.drift import check_drift, monitored_null
from migraine_bayes.living.sequential import (
    BLOCK_DAYS,
    Null,
    calibrate,
    count_pit,
    cusum,
    log_likelihood_ratios,
    sequential_test,
)
from migraine_bayes.model import build_design
from migraine_bayes.model.inference import InferenceWarning
from migraine_bayes.state import build_panel
from migraine_bayes.synthetic.cohort import simulate_cohort
from migraine_bayes.twin.core import DigitalTwin
from migraine_bayes.twin.record import HORIZON_DAYS


def drift_detection_study(n_patients: int, seed: int, window: int = 28, within: int = 42,
                          step: int = 7, lead: int = 14, n_days: int = 365,
                          cache: str | os.PathLike | None = None
                          ) -> tuple[pd.DataFrame, dict]:
    """Run the study; returns one row per check and the summary figures.

    ``cache``: a folder where fitted twins are saved and, on a rerun, loaded.
    """
    sc, full, patients = _study(n_patients, seed, lead, n_days, cache)
    rows = []
    for pid, drift, day, cut, start, twin in patients:
        for end in range(cut + step, day + within + 1, step):
            res = check_drift(twin, full, window=window, seed=seed + end,
                              end=str((start + pd.Timedelta(days=end - 1)).date()))[0]
            rows.append({"patient_id": pid, "drift": drift["kind"] or "none",
                         "drift_day": day if drift["kind"] else None, "window_end_day": end,
                         "after_drift": bool(drift["kind"]) and end > day,
                         "alarm": res["alarm"], "category": res["category"],
                         "checks_ok": twin.record.checks_ok})
    table = pd.DataFrame(rows)
    summary = summarise(table)
    bound = oracle_power(sc.truth, full, within)
    summary["oracle_power_within"] = float(np.mean(list(bound.values()))) if bound else None
    return table, summary


def oracle_power(truth: dict, panel, within: int = 42, alpha: float = 0.05) -> dict[str, float]:
    """Per drifting patient, the power of the best possible test of its drift.

    A Neyman-Pearson test that knows the patient's true daily probabilities with and without
    the drift, and the day it starts, looks once at the ``within`` days after it (known outcomes
    only): the log-likelihood ratio is compared with its null distribution (normal
    approximation, one-sided level ``alpha``). No drift check can beat it; the mean over
    patients bounds the detection rate any method can reach on these diaries.
    """
    from scipy import stats

    out = {}
    for patient, d, q in _drifting(truth, panel):
        pid = patient["patient_id"]
        days = np.arange(d, min(d + within, q.sizes["day"]))
        days = days[~np.isnan(q["onset"].values[days])]
        p1, p0, _ = _true_probabilities(patient, q, days)
        a, b = np.log(p1 / p0), np.log((1 - p1) / (1 - p0))
        mean0, mean1 = np.sum(p0 * a + (1 - p0) * b), np.sum(p1 * a + (1 - p1) * b)
        var0 = np.sum(p0 * (1 - p0) * (a - b) ** 2)
        var1 = np.sum(p1 * (1 - p1) * (a - b) ** 2)
        if var0 <= 0 or var1 <= 0:
            out[pid] = 0.0
            continue
        crit = mean0 + stats.norm.ppf(1 - alpha) * np.sqrt(var0)
        out[pid] = float(stats.norm.sf((crit - mean1) / np.sqrt(var1)))
    return out


def latent_marginal_power(truth: dict, panel, within: int = 42, alpha: float = 0.05,
                          replicates: int = 2000, seed: int = 0, grid: int = 61
                          ) -> dict[str, float]:
    """Per drifting patient, the power of the same one-look test without the latent path.

    The test knows every parameter (the drift day, its size and form, the latent AR(1)'s
    persistence and spread) but not the latent state's daily values — which no diary shows. It
    filters the latent state over the diary before the drift (a grid hidden Markov model,
    ``grid`` states), then compares the exact likelihoods of the ``within`` days after it with
    and without the drift, the latent path integrated out (forward algorithm). Its null
    distribution and power are simulated (``replicates`` diaries each, latent paths drawn from
    the filtered state onwards). The gap to :func:`oracle_power` is what knowing the latent
    path is worth.
    """
    from scipy.special import expit

    rng = np.random.default_rng(seed)
    out = {}
    for patient, d, q in _drifting(truth, panel):
        pid = patient["patient_id"]
        eta0, shift, y_all, x, move, state = _latent_filter(patient, q, d, grid)
        rho, sd = float(patient["rho"]), float(patient["latent_sd"])
        n = y_all.size
        state = state @ move
        days = np.arange(d, min(d + within, n))
        known = ~np.isnan(y_all[days])
        e0, s = eta0[days], shift[days]
        paths = _latent_paths(rng, state, x, rho, sd, 2 * replicates, days.size)
        drifting = np.repeat([0.0, 1.0], replicates)[:, None]
        y = (rng.random(paths.shape) < expit(e0 + paths + drifting * s)).astype(float)
        y[:, ~known] = np.nan
        llr = (_forward(e0 + s, y, state, move, x) - _forward(e0, y, state, move, x))
        crit = np.quantile(llr[:replicates], 1 - alpha)
        out[pid] = float(np.mean(llr[replicates:] > crit))
    return out


def sequential_oracle(patient: dict, q, days: np.ndarray, y: np.ndarray, alpha: float,
                      rng: np.random.Generator) -> np.ndarray:
    """Alarms (n,) on ``days`` (outcomes ``y``) of the CUSUM that knows all but the drift day.

    Its null is the patient's true daily probability without the drift, its one alternative the
    true drift (size and form); the threshold is calibrated like the twin's
    (:func:`migraine_bayes.living.sequential.calibrate`: ``alpha`` alarms per 28 days). CUSUM is the
    optimal sequential detector of a known change (Moustakides 1986): the detection within a
    horizon that no detector, which must watch every day, can much exceed.
    """
    _, p0, shift = _true_probabilities(patient, q, days)
    return _oracle_alarms(y, p0, shift, _oracle_threshold(p0, shift, alpha, rng))


def _oracle_threshold(p0: np.ndarray, shift: np.ndarray, alpha: float,
                      rng: np.random.Generator) -> float:
    """The sequential oracle's threshold: ``alpha`` alarms per 28 days under null ``p0`` (n,)."""
    return calibrate(Null.fixed(p0[None]), shift[None], np.zeros(1), rng, alpha)[0]


def _oracle_alarms(y: np.ndarray, p0: np.ndarray, shift: np.ndarray, h: float) -> np.ndarray:
    """Alarms (..., n) of the sequential oracle's CUSUM (threshold ``h``) on outcomes (..., n)."""
    return cusum(log_likelihood_ratios(y, p0, shift[None]), np.zeros(1), h)[1]


def sequential_oracle_power(patient: dict, q, days: np.ndarray, alpha: float,
                            rng: np.random.Generator, within: tuple[int, ...] = (42, 90, 120),
                            replicates: int = 400) -> dict[int, float]:
    """The sequential oracle's expected detection within each of ``within`` days of the drift.

    :func:`sequential_oracle`'s CUSUM (its threshold calibrated the same way) on ``replicates``
    diaries of the monitored ``days`` drawn from the true probabilities — without the drift
    before its day, with it from then — instead of the patient's one diary: like
    :func:`oracle_power`, an expectation over outcomes, so the two bounds compare without the
    noise of one diary per patient (redrawn outcomes suit the oracle, which reads no
    covariates). Returns the share of replicates whose first alarm on or after the drift day
    comes within ``w`` days, per ``w``.
    """
    p1, p0, shift = _true_probabilities(patient, q, days)
    h = _oracle_threshold(p0, shift, alpha, rng)
    alarms = _oracle_alarms((rng.random((replicates, days.size)) < p1).astype(float), p0, shift,
                            h)
    after = np.array([_days_to_first(a, days, patient["drift"]["day"]) for a in alarms])
    return {w: float(np.mean(after <= w)) for w in within}


def sequential_latent_oracle(patient: dict, q, cut: int, end: int, alpha: float,
                             rng: np.random.Generator, replicates: int = 1000,
                             grid: int = 41) -> np.ndarray:
    """Like :func:`sequential_oracle`, without the latent path: alarms on panel days ``cut …``.

    It knows every parameter (the drift's size and form, the latent AR(1)'s persistence and
    spread) but neither the drift day nor the latent state's daily values. Two grid filters of
    the latent state run from the diary's first day (known outcomes): the null's, and the
    drift's, restarted from the null's belief whenever Page's CUSUM of their one-step
    predictive log-likelihood ratios falls to 0 (and after an alarm). Monitoring runs on the
    panel days ``cut`` to ``end`` (one alarm flag each, index 0 = ``cut``); the threshold gives
    ``alpha`` alarms per 28 days on ``replicates`` diaries of those days simulated under the
    null (latent paths drawn from the filtered state at ``cut``). The bound of a detector that
    knows the model but, like any, watches every day and never sees the latent state.
    """
    eta0, form, y_all, x, move, belief = _latent_filter(patient, q, cut, grid)
    rho, sd = float(patient["rho"]), float(patient["latent_sd"])
    span = np.arange(cut, min(end, y_all.size))
    e0, f = eta0[span], form[span]
    paths = _latent_paths(rng, belief @ move, x, rho, sd, replicates, span.size)
    known = ~np.isnan(y_all[span])
    y_rep = (rng.random(paths.shape) < 1 / (1 + np.exp(-(e0 + paths)))).astype(float)
    y_rep[:, ~known] = np.nan
    budget = alpha * replicates * span.size / BLOCK_DAYS
    lo, hi = 0.0, 30.0
    for _ in range(14):  # bisection on the replicates' alarm count
        h = 0.5 * (lo + hi)
        if _two_filter_cusum(y_rep, e0, f, belief, move, x, h).sum() > budget:
            lo = h
        else:
            hi = h
    return _two_filter_cusum(y_all[span][None], e0, f, belief, move, x, hi)[0]


def known_null(patient: dict, q, days: np.ndarray) -> np.ndarray:
    """The patient's true probabilities without its drift on ``days``, as one draw (1, n).

    The null of the twin's test (:mod:`migraine_bayes.living.sequential`: the same alternatives,
    prior and calibration) when it knows every probability but not the drift's form or day.
    """
    if not patient["drift"]["kind"]:
        return np.clip(np.asarray(patient["p_attack"], dtype=float)[days], 1e-6, 1 - 1e-6)[None]
    return _true_probabilities(patient, q, days)[1][None]


def learned_level_null(patient: dict, q, days: np.ndarray, cut: int, rng: np.random.Generator,
                       draws: int = 200, prior_sd: float = 1.0, spread: float | None = None
                       ) -> np.ndarray:
    """Draws (S, n) of a null that knows the true probabilities up to a log-odds level.

    The level ``c`` is what the diary before the fit shows: its posterior given the known
    outcomes of days ``0 … cut - 1`` under ``logit p_t + c`` (``N(0, prior_sd²)`` prior, a grid
    of 501 values on ±2.5), ``draws`` of it drawn; the null of day ``t`` under draw ``s`` is
    ``expit(logit p0_t + c_s)`` (``p0``: :func:`known_null`). A monitor that has to learn its
    baseline from the same diary as the twin, and knows everything else. With ``spread``, the
    level's draws are stretched about their mean to that standard deviation (log-odds): the
    same monitor as unsure of the level as the twin is.
    """
    from scipy.special import expit, logit, softmax

    before = np.arange(cut)
    y = q["onset"].values[before]
    before, y = before[~np.isnan(y)], y[~np.isnan(y)]
    eta = logit(known_null(patient, q, before)[0])  # no drift before the cut
    grid = np.linspace(-2.5, 2.5, 501)
    q1 = expit(eta[None, :] + grid[:, None])
    ll = np.sum(np.where(y[None, :] > 0, np.log(q1), np.log1p(-q1)), axis=1)
    level = rng.choice(grid, draws, p=softmax(ll - 0.5 * (grid / prior_sd) ** 2))
    if spread is not None:
        level = level.mean() + (level - level.mean()) * spread / max(level.std(), 1e-9)
    return expit(logit(known_null(patient, q, days))[0][None, :] + level[:, None])


def _latent_filter(patient: dict, q, upto: int, grid: int):
    """The generator's latent AR(1) state as a grid hidden Markov model, filtered to ``upto``.

    Returns the log-odds without latent state and drift (n,), the drift's form (n,), the
    outcomes (n,; NaN unknown), the grid (G,), the transition matrix (G, G) and the belief
    (G,) after the known outcomes of days ``0 … upto - 1`` (not yet moved to day ``upto``).
    """
    from scipy import stats
    from scipy.special import logit

    n = min(len(patient["p_attack"]), q.sizes["day"])
    y = q["onset"].values[:n]
    _, p0, form = _true_probabilities(patient, q, np.arange(n))
    eta0 = logit(p0) - np.asarray(patient["latent"], dtype=float)[:n]
    rho, sd = float(patient["rho"]), float(patient["latent_sd"])
    x = np.linspace(-4.5 * sd, 4.5 * sd, grid)
    move = stats.norm.pdf(x[None, :], rho * x[:, None], sd * np.sqrt(1 - rho**2))
    move /= move.sum(1, keepdims=True)
    belief = stats.norm.pdf(x, 0.0, sd)
    belief /= belief.sum()
    for t in range(upto):
        belief = belief @ move if t else belief
        belief = _observe(belief[None], eta0[t] + x, y[t:t + 1])[1][0]
    return eta0, form, y, x, move, belief


def _observe(belief: np.ndarray, eta: np.ndarray, y: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """One day of a grid filter: the log predictive probability of ``y`` and updated beliefs.

    Beliefs (R, G), outcomes ``y`` (R,; NaN unknown), log-odds ``eta`` (G,) per state. Returns
    the log predictive probabilities (R,; 0 where unknown) and the beliefs (unchanged there).
    """
    q1 = (1 / (1 + np.exp(-eta)))[None]
    like = np.where(np.isnan(y)[:, None], 1.0, np.where(y[:, None] > 0, q1, 1 - q1))
    m = np.sum(belief * like, axis=1)
    return np.log(m), belief * like / m[:, None]


def _latent_paths(rng: np.random.Generator, belief: np.ndarray, x: np.ndarray, rho: float,
                  sd: float, replicates: int, n: int) -> np.ndarray:
    """Latent AR(1) paths (replicates, n), the first day drawn from ``belief`` over grid ``x``."""
    paths = np.empty((replicates, n))
    paths[:, 0] = rng.choice(x, size=replicates, p=belief)
    for t in range(1, n):
        paths[:, t] = rho * paths[:, t - 1] + sd * np.sqrt(1 - rho**2) * rng.standard_normal(
            replicates)
    return paths


def _two_filter_cusum(y: np.ndarray, eta: np.ndarray, shift: np.ndarray, belief: np.ndarray,
                      move: np.ndarray, x: np.ndarray, h: float) -> np.ndarray:
    """Alarms (R, n) of the two-filter CUSUM (:func:`sequential_latent_oracle`) on ``y``."""
    r = y.shape[0]
    b0 = np.tile(belief, (r, 1))
    b1 = b0.copy()
    total = np.zeros(r)
    alarms = np.zeros(y.shape, dtype=bool)
    for t in range(y.shape[1]):
        lp0, b0 = _observe(b0 @ move, eta[t] + x, y[:, t])
        lp1, b1 = _observe(b1 @ move, eta[t] + shift[t] + x, y[:, t])
        total = np.maximum(0.0, total + lp1 - lp0)  # an unknown day adds 0
        alarms[:, t] = hit = total > h
        reset = hit | (total <= 0.0)
        total = np.where(hit, 0.0, total)
        b1 = np.where(reset[:, None], b0, b1)
    return alarms


def _drifting(truth: dict, panel):
    """(truth, drift day, panel) of each drifting patient of the generator's ``truth``."""
    for patient in truth["patients"]:
        if patient["drift"]["kind"]:
            yield patient, patient["drift"]["day"], panel.sel(patient=patient["patient_id"])


def _true_probabilities(patient: dict, q, days: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True probabilities on ``days`` with the drift and without it, and the drift's form.

    ``p1`` is the generator's, ``p0`` the same without the drift; the form is the drift's
    log-odds shift as if it acted on every one of ``days``.
    """
    from scipy.special import expit, logit

    drift = patient["drift"]
    if drift["kind"] == "baseline":
        form = np.full(days.size, drift["log_odds_shift"])
    else:
        trig = next(t for t in patient["triggers"] if t["feature"] == drift["feature"])
        x = np.nan_to_num(q["value"].sel(feature=drift["feature"]).values[days])
        unit = np.log(drift["odds_ratio_after"]) / trig["contrast"]
        shape = {"threshold": (x >= trig["threshold"]).astype(float),
                 "fall": np.clip(-x, 0.0, None)}.get(trig["shape"], x)
        form = unit * shape
    p1 = np.clip(np.asarray(patient["p_attack"], dtype=float)[days], 1e-6, 1 - 1e-6)
    p0 = expit(logit(p1) - np.where(days >= drift["day"], form, 0.0))
    return p1, p0, form


def _forward(eta: np.ndarray, y: np.ndarray, state: np.ndarray, move: np.ndarray,
             x: np.ndarray) -> np.ndarray:
    """Log-likelihoods (R,) of outcome rows ``y`` (R, n; NaN unknown), log-odds ``eta + x``."""
    belief = np.tile(state, (y.shape[0], 1))
    total = np.zeros(y.shape[0])
    for t in range(y.shape[1]):
        lp, belief = _observe(belief @ move if t else belief, eta[t] + x, y[:, t])
        total += lp
    return total


def summarise(table: pd.DataFrame) -> dict:
    """Detection within the window, delay, categorisation and false-alarm rate."""
    drifting = table[table["drift"] != "none"]
    post = drifting[drifting["after_drift"]]
    per_patient = post.groupby("patient_id").agg(
        kind=("drift", "first"), detected=("alarm", "any"),
        first=("window_end_day", lambda s: s[post.loc[s.index, "alarm"]].min()),
        day=("drift_day", "first"))
    quiet = table[~table["after_drift"]]
    first_alarm = post[post["alarm"]].groupby("patient_id").first()
    right = {"baseline": "baseline shift"}
    categorised = [
        (row["category"] == right.get(row["drift"], "")) if row["drift"] == "baseline"
        else row["category"] in ("new association", "changed trigger sensitivity")
        for _, row in first_alarm.iterrows()]
    out = {
        "drifting_patients": len(per_patient),
        "detected_within": float(per_patient["detected"].mean()) if len(per_patient) else None,
        "detected_by_kind": per_patient.groupby("kind")["detected"].mean().to_dict(),
        "median_delay_days": float((per_patient["first"] - per_patient["day"]).median())
        if per_patient["detected"].any() else None,
        "categorised_right": float(np.mean(categorised)) if categorised else None,
        "stationary_windows": len(quiet),
        "false_alarm_rate": float(quiet["alarm"].mean()) if len(quiet) else None,
    }
    return out


WITHIN = (42, 90, 120)


def sequential_study(n_patients: int, seed: int, within: tuple[int, ...] = WITHIN,
                     lead: int = 14, n_days: int = 365, alpha: float = 0.05,
                     cache: str | os.PathLike | None = None) -> tuple[pd.DataFrame, dict]:
    """The sequential test (:mod:`migraine_bayes.living.sequential`) on the study's patients.

    Each patient's twin is fitted on its diary up to ``D - lead`` (as in
    :func:`drift_detection_study`); the CUSUM then runs over every later day up to ``D +
    max(within)``, restarted after each alarm (as a retraining would). Per patient: the days
    after ``D`` to the first alarm; false alarms are alarms before ``D`` (every alarm of a
    stationary patient), counted per 28 monitored days. Outcomes are not redrawn around a
    patient's generated course: its prodromes, symptoms and refractory days follow its own
    attacks, so redrawn outcomes would contradict the covariates the twin reads (precision
    comes from more patients). Bounds, each at the false-alarm rate measured: the oracle's
    power (one look at the days after the drift, knowing the true probabilities and the drift
    day, :func:`oracle_power`); the same without the latent path
    (:func:`latent_marginal_power`); the sequential oracle (a CUSUM that knows everything but
    the drift day, :func:`sequential_oracle`) — the bound of a detector that, like any
    monitor, does not know when to look — on the diary and as an expectation over outcomes
    (:func:`sequential_oracle_power`, which compares with the one-look oracle's power); and
    the same without the latent path
    (:func:`sequential_latent_oracle`): the bound of a monitor that knows the model. Three more
    run the twin's own test on better nulls, splitting its gap: the true null
    (:func:`known_null`: the cost of not knowing the drift's form), the true null with its
    level learned from the diary before the fit (:func:`learned_level_null`), and that level
    as uncertain as the twin's (``spread``: the sd over the twin's draws of the monitored days'
    mean log-odds); their false alarms are counted like the twin's. Whether the twin's
    uncertainty of the level is borne out: the PIT of each patient's attack count over its days
    before any drift under the twin's null (:func:`migraine_bayes.living.sequential.count_pit`), and
    under the same null sure of its level (the draws' mean probabilities); uniform PITs (sd
    0.289, 0.2 outside 0.1 … 0.9) say a sharper null would be wrong, not more powerful.

    Returns one row per patient and the summary (detection within each of ``within`` by drift
    kind and overall, false alarms per 28-day window by kind, the level's PITs, the bounds and
    the ratios).
    """
    sc, full, patients = _study(n_patients, seed, lead, n_days, cache)
    truth = {t["patient_id"]: t for t in sc.truth["patients"]}
    rows, kept = [], []
    pit_rng = np.random.default_rng([seed, 3])
    for pid, drift, day, cut, _start, twin in patients:
        design = twin.design(full.sel(patient=[pid]))
        end = min(day + max(within), int(full["in_diary"].sel(patient=pid).sum()))
        days = np.arange(cut, end)
        days = days[~np.isnan(design.y[0, days])]
        y = design.y[0, days]
        null = monitored_null(twin, design, 0, days, cut - 1)
        test = sequential_test(null, design.z_mean[0, days], design.feature_names,
                               np.random.default_rng([seed, 1]), alpha)
        _, alarms, _ = test.run(y)
        quiet = days < day if drift["kind"] else np.ones(days.size, dtype=bool)
        p_null = null.probabilities()
        sure = Null.fixed(p_null.mean(axis=0, keepdims=True))
        pits = [count_pit(model, y[quiet], pit_rng) if quiet.any() else np.nan
                for model in (null, sure)]
        after = _days_to_first(alarms, days, day) if drift["kind"] else np.inf
        category = None
        if np.isfinite(after):
            beta = twin.posterior.posterior["beta"].sel(patient=pid).stack(
                s=("chain", "draw")).transpose("s", "feature").values
            category = test.label(y, int(np.searchsorted(days, day + after - 1)), beta,
                                  design.feature_names)[0]
        rows.append({"patient_id": pid, "drift": drift["kind"] or "none",
                     "drift_day": day if drift["kind"] else None, "cut": cut,
                     "quiet_windows": quiet.sum() / BLOCK_DAYS,
                     "false_alarms": int(alarms[quiet].sum()),
                     "first_alarm_after": after if np.isfinite(after) else None,
                     "category": category, "threshold": test.threshold,
                     "level_pit": pits[0], "level_pit_sure": pits[1],
                     "checks_ok": twin.record.checks_ok}
                    | _within("twin", after, within))
        kept.append((pid, days, y, quiet, cut, end, design.z_mean[0, days],
                     design.feature_names, _level_spread(p_null)))
    table = pd.DataFrame(rows)
    windows = table["quiet_windows"].sum()  # 28-day windows before any drift
    fa = float(table["false_alarms"].sum() / windows)
    summary = {"patients": len(table), "drifting_patients": int((table["drift"] != "none").sum()),
               "alpha": alpha, "false_alarms_per_28_days": fa,
               "false_alarms_by_kind": {
                   k: float(g["false_alarms"].sum() / g["quiet_windows"].sum())
                   for k, g in table.groupby("drift")}}
    for column in ("level_pit", "level_pit_sure"):
        pit = table[column].dropna()
        summary[f"{column}_sd"] = float(pit.std(ddof=0))  # uniform: 0.289
        summary[f"{column}_tails"] = float(((pit < 0.1) | (pit > 0.9)).mean())  # uniform: 0.2
    level = max(fa, 1e-3)
    rng = np.random.default_rng([seed, 2])
    expected_rng = np.random.default_rng([seed, 4])
    bounds = {}
    for pid, days, y, calm, cut, end, z, names, spread in kept:
        t = truth[pid]
        q = full.sel(patient=pid)
        d = t["drift"]["day"] if t["drift"]["kind"] else None
        bounds[pid] = {}
        for name, null in (("known_null", known_null(t, q, days)),
                           ("learned_level", learned_level_null(t, q, days, cut, rng)),
                           ("twin_level", learned_level_null(t, q, days, cut, rng,
                                                             spread=spread))):
            alarms = sequential_test(null, z, names, rng, level).run(y)[1]
            bounds[pid][f"{name}_false_alarms"] = int(alarms[calm].sum())
            bounds[pid] |= _within(name, np.inf if d is None else
                                   _days_to_first(alarms, days, d), within)
        if d is None:
            continue
        expected = sequential_oracle_power(t, q, days, level, expected_rng, within)
        bounds[pid] |= {f"oracle_expected_within_{w}": expected[w] for w in within}
        latent = sequential_latent_oracle(t, q, cut, end, level, rng)[days - cut]
        bounds[pid] |= (_within("oracle", _days_to_first(
            sequential_oracle(t, q, days, y, level, rng), days, d), within)
            | _within("latent_oracle", _days_to_first(latent, days, d), within))
    table = table.merge(pd.DataFrame.from_dict(bounds, orient="index"), how="left",
                        left_on="patient_id", right_index=True)
    for name in ("known_null", "learned_level", "twin_level"):
        summary[f"{name}_false_alarms_per_28_days"] = float(
            table[f"{name}_false_alarms"].sum() / windows)
    drifting = table[table["drift"] != "none"]
    kinds = drifting["drift"]
    for w in within:
        for column, name in (("twin", "detected"), ("oracle", "sequential_oracle"),
                             ("latent_oracle", "sequential_latent_oracle"),
                             ("known_null", "known_null"), ("learned_level", "learned_level"),
                             ("twin_level", "twin_level")):
            summary[f"{name}_within_{w}"] = float(drifting[f"{column}_within_{w}"].mean())
            summary[f"{name}_within_{w}_by_kind"] = drifting[f"{column}_within_{w}"].groupby(
                kinds).mean().to_dict()
        summary[f"sequential_oracle_expected_within_{w}"] = float(
            drifting[f"oracle_expected_within_{w}"].mean())
        summary[f"sequential_oracle_expected_within_{w}_by_kind"] = drifting[
            f"oracle_expected_within_{w}"].groupby(kinds).mean().to_dict()
        for name in ("sequential_oracle", "sequential_oracle_expected",
                     "sequential_latent_oracle", "known_null", "learned_level", "twin_level"):
            summary[f"ratio_to_{name}_{w}"] = (summary[f"detected_within_{w}"]
                                               / max(summary[f"{name}_within_{w}"], 1e-9))
        marginal = latent_marginal_power(sc.truth, full, w, alpha=level, seed=seed)
        summary[f"latent_marginal_oracle_within_{w}"] = float(np.mean(list(marginal.values())))
        summary[f"ratio_to_latent_marginal_oracle_{w}"] = (
            summary[f"detected_within_{w}"]
            / max(summary[f"latent_marginal_oracle_within_{w}"], 1e-9))
        bound = oracle_power(sc.truth, full, w, alpha=level)
        summary[f"oracle_power_within_{w}"] = float(np.mean(list(bound.values())))
        summary[f"oracle_power_within_{w}_by_kind"] = {
            k: float(np.mean([bound[p] for p in g["patient_id"] if p in bound]))
            for k, g in drifting.groupby("drift")}
        summary[f"ratio_to_oracle_{w}"] = (summary[f"detected_within_{w}"]
                                           / max(summary[f"oracle_power_within_{w}"], 1e-9))
    for kind in ("baseline", "trigger"):
        labels = drifting.loc[drifting["drift"] == kind, "category"].dropna()
        summary[f"{kind}_alarms_labelled_baseline"] = (
            float((labels == "baseline shift").mean()) if len(labels) else None)
    return table, summary


def _level_spread(p: np.ndarray) -> float:
    """The twin's uncertainty of the monitored days' level (log-odds).

    The standard deviation over draws of their mean log-odds; ``p`` (S, n) per-draw
    probabilities.
    """
    from scipy.special import logit

    return float(logit(np.clip(p, 1e-9, 1 - 1e-9)).mean(axis=1).std())


def _days_to_first(alarms: np.ndarray, days: np.ndarray, day: int) -> float:
    """Days from ``day`` to the first alarm (``alarms`` (n,) on ``days``) on or after it.

    ``day`` counts as 1; inf: no alarm on or after it.
    """
    hit = days[alarms & (days >= day)]
    return float(hit[0] - day + 1) if hit.size else np.inf


def _within(name: str, after: float, within: tuple[int, ...]) -> dict[str, bool]:
    """``{name}_within_{w}``: whether the first alarm after the drift comes within ``w`` days.

    ``after``: days from the drift to it (:func:`_days_to_first`).
    """
    return {f"{name}_within_{w}": bool(after <= w) for w in within}


def _study(n_patients: int, seed: int, lead: int, n_days: int,
           cache: str | os.PathLike | None):
    """The studies' cohort (half drifting), its panel, and its patients (lazily).

    Per patient: ``(id, drift, drift day D, cut D - lead, diary start, twin fitted up to the
    cut)``; a stationary patient's D is drawn from the drifts' range.
    """
    sc = simulate_cohort(n_patients, n_days, seed, drift_fraction=0.5,
                         drift_kinds=("baseline", "trigger"))
    rng = np.random.default_rng(seed)
    full = build_panel(sc.cohort, horizon_days=HORIZON_DAYS)
    shared = build_design(full)
    starts = sc.cohort.patients.set_index("patient_id")["diary_start"]

    def patients():
        for truth in sc.truth["patients"]:
            pid, drift = truth["patient_id"], truth["drift"]
            day = drift["day"] if drift["kind"] else int(rng.integers(int(0.4 * n_days),
                                                                      int(0.7 * n_days)))
            start = pd.Timestamp(starts[pid])
            twin = _patient_twin(sc.cohort, pid, day - lead, start, shared, seed, cache)
            yield pid, drift, day, day - lead, start, twin

    return sc, full, patients()


def _patient_twin(cohort, pid: str, cut: int, start: pd.Timestamp, shared, seed: int,
                  cache: str | os.PathLike | None) -> DigitalTwin:
    """The patient's twin fitted on its first ``cut`` days (saved to / read from ``cache``)."""
    stored = None if cache is None else Path(cache) / f"{seed}-{pid}-{cut}"
    if stored is not None and (stored / "twin.json").is_file():
        return DigitalTwin.load(stored)
    with warnings.catch_warnings():  # a failed check is recorded (checks_ok) instead
        warnings.simplefilter("ignore", InferenceWarning)
        twin = DigitalTwin.fit_patient(  # the patient's own tables: its course alone
            truncate(cohort.subset([pid]), start + pd.Timedelta(days=cut - 1)), pid,
            validate=False, features=shared.features, scaling=shared.scaling,
            interventions=shared.interventions)
    if stored is not None:
        twin.save(stored)
    return twin
