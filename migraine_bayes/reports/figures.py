"""Report figures (matplotlib + ArviZ), each a function returning a ``Figure``.

Every figure shows its uncertainty: posterior predictive intervals are 90%, calibration bins
carry Jeffreys 90% intervals, odds ratios their 90% credible intervals.
"""

from __future__ import annotations

import arviz as az
import matplotlib

matplotlib.use("Agg")  # no display: figures are written to files and HTML
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..metrics import calibration_curve

TWIN_COLOR, OBS_COLOR = "#1f5fa6", "#c0392b"
BLOCK_DAYS = 28  # "monthly" attack counts: 4-week blocks
KS_90 = 1.224  # Kolmogorov-Smirnov 90% critical value times sqrt(n)


def sampler_trace(posterior, var_names: list[str]) -> Figure:
    """ArviZ trace plot (per-chain densities and traces) of the twin's main parameters."""
    names = [v for v in var_names if v in posterior.posterior]
    axes = az.plot_trace(posterior, var_names=names, compact=True, combined=False,
                         figsize=(10, 1.9 * len(names)))
    fig = np.asarray(axes).ravel()[0].figure
    fig.suptitle("Sampler traces (each chain a line)", y=1.0)
    fig.tight_layout()
    return fig


def ppc_monthly_counts(observed: np.ndarray, simulated: np.ndarray, patient: str) -> Figure:
    """Observed attacks per 4-week block against the posterior predictive 90% interval.

    ``observed`` (T,) outcomes (NaN unknown), ``simulated`` (S, T) replicated outcomes on the
    same known days.
    """
    t = observed.size
    blocks = np.arange(t) // BLOCK_DAYS
    n_blocks = int(blocks.max()) + 1
    obs = np.array([np.nansum(observed[blocks == b]) for b in range(n_blocks)])
    sim = np.stack([simulated[:, blocks == b].sum(1) for b in range(n_blocks)], axis=1)
    lo, med, hi = np.quantile(sim, (0.05, 0.5, 0.95), axis=0)
    fig, ax = plt.subplots(figsize=(7, 2.8))
    x = np.arange(n_blocks) + 1
    ax.fill_between(x, lo, hi, color=TWIN_COLOR, alpha=0.25, step="mid",
                    label="posterior predictive 90%")
    ax.step(x, med, where="mid", color=TWIN_COLOR, label="predictive median")
    ax.plot(x, obs, "o", color=OBS_COLOR, label="observed")
    ax.set(xlabel="4-week block of the diary", ylabel="attacks",
           title=f"{patient}: attacks per 4 weeks")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def ppc_intervals(observed: list[np.ndarray], simulated: list[np.ndarray]) -> Figure:
    """Days between consecutive attacks: observed against replicated diaries (pooled).

    ``observed`` per patient (T,) outcomes; ``simulated`` per patient (S, T) replicates.
    """
    def gaps(y: np.ndarray) -> np.ndarray:
        days = np.flatnonzero(np.nan_to_num(y) > 0)
        return np.diff(days)

    obs = np.concatenate([gaps(y) for y in observed]) if observed else np.zeros(0)
    reps = [np.concatenate([gaps(s[j]) for s in simulated])
            for j in range(min(s.shape[0] for s in simulated))]
    edges = np.arange(1, 62, 3)
    dens = np.array([np.histogram(np.clip(r, 1, 60), edges, density=True)[0] for r in reps])
    lo, hi = np.quantile(dens, (0.05, 0.95), axis=0)
    fig, ax = plt.subplots(figsize=(7, 2.8))
    mid = (edges[:-1] + edges[1:]) / 2
    ax.fill_between(mid, lo, hi, color=TWIN_COLOR, alpha=0.3, step="mid",
                    label="replicated diaries 90%")
    ax.step(mid, np.histogram(np.clip(obs, 1, 60), edges, density=True)[0], where="mid",
            color=OBS_COLOR, label=f"observed ({obs.size} gaps)")
    ax.set(xlabel="days between attack onsets (60 = 60 or more)", ylabel="density",
           title="Time between attacks: posterior predictive check")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def loo_pit(pit: np.ndarray, pareto_k: np.ndarray) -> Figure:
    """ECDF of randomised LOO-PIT values with the 90% simultaneous band of a uniform.

    ``pit`` (n,) values, ``pareto_k`` (n,) PSIS diagnostics (share above 0.7 reported). The
    band is the Kolmogorov–Smirnov one, ``±1.224 / sqrt(n)``.
    """
    n = pit.size
    grid = np.linspace(0, 1, 201)
    ecdf = np.searchsorted(np.sort(pit), grid, side="right") / max(n, 1)
    band = np.full_like(grid, KS_90 / np.sqrt(max(n, 1)))
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    ax.fill_between(grid, -band, band, color="0.85", label="uniform, 90% band")
    ax.plot(grid, ecdf - grid, color=TWIN_COLOR, label="LOO-PIT ECDF − uniform")
    ax.axhline(0, color="0.4", lw=0.8)
    bad = float((pareto_k > 0.7).mean()) if pareto_k.size else 0.0
    ax.set(xlabel="PIT", ylabel="ECDF difference",
           title=f"LOO-PIT calibration (n={n}; Pareto k>0.7: {bad:.1%})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def reliability(predictions: pd.DataFrame, models: list[str], bins: int = 10) -> Figure:
    """Reliability diagram: observed attack rate per forecast bin, with Jeffreys 90% intervals."""
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    top = 0.0
    colors = {"twin": TWIN_COLOR, "oracle": "0.3", "logistic": "#e67e22",
              "boosting": "#27ae60", "base_rate": "#8e44ad"}
    for k, model in enumerate(models):
        d = predictions[predictions["model"] == model]
        if d.empty:
            continue
        c = calibration_curve(d["attack"].to_numpy(), d["p_attack"].to_numpy(), bins)
        jitter = (k - (len(models) - 1) / 2) * 0.004
        # a Jeffreys interval need not contain its point estimate at 0 events: clip
        err = np.clip([c["observed"] - c["low"], c["high"] - c["observed"]], 0, None)
        ax.errorbar(c["p_mean"] + jitter, c["observed"], yerr=err, fmt="o-",
                    ms=4, lw=1, capsize=2, color=colors.get(model), label=model)
        top = max(top, float(np.max(c["high"])), float(np.max(c["p_mean"])))
    top = min(1.0, top * 1.05 + 0.02)
    ax.plot([0, top], [0, top], ls="--", color="0.5", lw=0.8, label="perfect calibration")
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="forecast probability",
           ylabel="observed attack rate", title="Reliability (equal-count bins, 90% CI)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def forest(table: pd.DataFrame, title: str) -> Figure:
    """Odds ratios with 90% credible intervals (``feature, odds_ratio, or_low, or_high``)."""
    t = table.sort_values("odds_ratio")
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(t) + 1.2))
    y = np.arange(len(t))
    strong = (t["p_positive"] >= 0.95) | (t["p_positive"] <= 0.05)
    ax.hlines(y, t["or_low"], t["or_high"], color=np.where(strong, OBS_COLOR, TWIN_COLOR))
    ax.plot(t["odds_ratio"], y, "o", color="k", ms=3)
    ax.axvline(1.0, color="0.5", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_yticks(y, [f"{f} (per {s})" for f, s in zip(t["feature"], t["step"], strict=True)],
                  fontsize=7)
    ax.set(xlabel="odds ratio, 90% credible interval", title=title)
    fig.tight_layout()
    return fig


def forecast_series(forecasts: pd.DataFrame, patient: str) -> Figure:
    """Backtest forecasts of one patient with their 90% interval and the attacks that came."""
    d = forecasts[forecasts["patient_id"] == patient].sort_values("date")
    dates = pd.to_datetime(d["date"])
    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.fill_between(dates, d["p_low"], d["p_high"], color=TWIN_COLOR, alpha=0.25,
                    label="90% interval")
    ax.plot(dates, d["p_attack"], color=TWIN_COLOR, lw=1.2, label="p(attack)")
    hit = d["attack"] == 1
    ax.plot(dates[hit], np.zeros(hit.sum()) + 0.005, "v", color=OBS_COLOR, ms=7,
            label="attack")
    ax.set(ylabel="probability", ylim=(0, None),
           title=f"{patient}: one-day-ahead forecasts, walked forward")
    ax.legend(fontsize=8, loc="upper left", ncols=3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def counterfactuals(summaries: list[dict], patient: str, horizon: int) -> Figure:
    """Expected attacks over the horizon per scenario, with 90% intervals."""
    names = [s["name"] for s in summaries]
    a = [s["expected_attacks"] for s in summaries]
    mean = np.array([x["mean"] for x in a])
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(names) + 1.2))
    y = np.arange(len(names))
    ax.barh(y, mean, color=[("0.6" if n == "baseline" else TWIN_COLOR) for n in names])
    err = np.clip([mean - [x["low"] for x in a], [x["high"] for x in a] - mean], 0, None)
    ax.errorbar(mean, y, xerr=err, fmt="none", color="k", capsize=3)
    ax.set_yticks(y, names)
    ax.set(xlabel=f"expected attacks in the next {horizon} days (90% interval)",
           title=f"{patient}: what if …?")
    fig.tight_layout()
    return fig
