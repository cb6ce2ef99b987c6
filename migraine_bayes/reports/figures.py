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

from migraine_bayes.metrics import calibration_curve
from migraine_bayes.model.labels import feature_name, treatment_label

TWIN_COLOR, OBS_COLOR = "#1f5fa6", "#c0392b"
# legible at print size: nothing below 8 pt on a figure that keeps its size in the page
plt.rcParams.update({"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9,
                     "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 8})
LOG_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)


def plain_log_axis(ax, axis: str = "x") -> None:
    """A log axis labelled 0.5, 1, 2 … (never ``10⁰`` or ``3×10⁻¹``)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, StrMethodFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    lo, hi = ax.get_xlim() if axis == "x" else ax.get_ylim()
    ticks = [t for t in LOG_TICKS if lo <= t <= hi] or [1]
    while len(ticks) > 6:  # a narrow panel: every other tick, 1 kept
        ticks = [t for i, t in enumerate(ticks) if (i - ticks.index(1)) % 2 == 0] \
            if 1 in ticks else ticks[::2]
    target.set_major_locator(FixedLocator(ticks))
    target.set_major_formatter(StrMethodFormatter("{x:g}"))
    target.set_minor_formatter(NullFormatter())


def date_axis(ax) -> None:
    """Dates that never overlap: at most 4 ticks, concise labels (month, year when it turns)."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=2, maxticks=4)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
BLOCK_DAYS = 28  # "monthly" attack counts: 4-week blocks
KS_90 = 1.224  # Kolmogorov-Smirnov 90% critical value times sqrt(n)


TRACE_DRAWS = 500  # per chain: the trace and densities look the same, drawing is 3× faster


def sampler_trace(posterior, var_names: list[str]) -> Figure:
    """Per-chain densities and rank plots (Vehtari et al. 2021) of the twin's main parameters.

    A rank plot bins each chain's draws by their rank among all chains: mixing chains have flat,
    equal histograms. Unlike a raw trace (thousands of jagged lines) it stays legible in print
    and small on disk. Chains longer than :data:`TRACE_DRAWS` are thinned evenly for the
    picture (the checks use every draw); the plotted marks are rasterised inside the SVG (axes
    and text stay vector), so the file stays far under 1 MB.
    """
    names = [v for v in var_names if v in posterior.posterior]
    post = posterior.posterior[names]
    post = post.isel(draw=slice(None, None, max(1, -(-post.sizes["draw"] // TRACE_DRAWS))))
    axes = az.plot_trace(post, var_names=names, compact=True, combined=False, kind="rank_bars",
                         figsize=(10, 1.9 * len(names)))
    fig = np.asarray(axes).ravel()[0].figure
    for ax in fig.axes:
        for artist in (*ax.lines, *ax.collections, *ax.patches):
            artist.set_rasterized(True)
    fig.suptitle("Sampler checks: each chain's posterior density (left) and rank plot (right; "
                 "flat and alike when the chains mix)", y=1.0)
    fig.tight_layout()
    return fig


def _grid(n: int, ncols: int, width: float, height: float, sharex: bool = False,
          sharey: bool = False) -> tuple[Figure, np.ndarray]:
    """``n`` panels of ``width`` × ``height`` inches in rows of ``ncols``; unused ones hidden."""
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                             sharex=sharex, sharey=sharey, squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()[:n]


def _labelled_grid(n: int, ncols: int, label: float, panel_w: float, panel_h: float
                   ) -> tuple[Figure, np.ndarray, float]:
    """A grid whose first column's y labels take a fixed ``label`` margin (inches).

    Laid out by hand (tight_layout cannot fit long labels beside one narrow panel). Returns
    the figure, its ``n`` axes (x shared) and the panels' horizontal centre (figure fraction).
    """
    nrows = -(-n // ncols)
    width, height = label + panel_w * ncols + 0.2, (panel_h + 0.35) * nrows + 0.6
    fig, axes = _grid(n, ncols, 1.0, 1.0, sharex=True)
    fig.set_size_inches(width, height)
    fig.subplots_adjust(left=label / width, right=1 - 0.2 / width, bottom=0.6 / height,
                        top=1 - 0.3 / height, wspace=0.08, hspace=0.35 / panel_h)
    return fig, axes, (label + panel_w * ncols / 2) / width


def _ppc_counts(ax, observed: np.ndarray, simulated: np.ndarray, title: str) -> None:
    t = observed.size
    blocks = np.arange(t) // BLOCK_DAYS
    n_blocks = int(blocks.max()) + 1
    obs = np.array([np.nansum(observed[blocks == b]) for b in range(n_blocks)])
    sim = np.stack([simulated[:, blocks == b].sum(1) for b in range(n_blocks)], axis=1)
    lo, med, hi = np.quantile(sim, (0.05, 0.5, 0.95), axis=0)
    x = np.arange(n_blocks) + 1
    ax.fill_between(x, lo, hi, color=TWIN_COLOR, alpha=0.25, step="mid",
                    label="posterior predictive 90%")
    ax.step(x, med, where="mid", color=TWIN_COLOR, label="predictive median")
    ax.plot(x, obs, "o", color=OBS_COLOR, ms=3, label="observed")
    ax.set_title(title, fontsize=9)


def ppc_monthly_counts(observed: np.ndarray, simulated: np.ndarray, patient: str) -> Figure:
    """Observed attacks per 4-week block against the posterior predictive 90% interval.

    ``observed`` (T,) outcomes (NaN unknown), ``simulated`` (S, T) replicated outcomes on the
    same known days.
    """
    fig, ax = plt.subplots(figsize=(7, 2.8))
    _ppc_counts(ax, observed, simulated, f"{patient}: attacks per 4 weeks")
    ax.set(xlabel="4-week block of the diary", ylabel="attacks")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def ppc_monthly_grid(checks: list) -> Figure:
    """Small multiples of :func:`ppc_monthly_counts`, one panel per patient (``PatientChecks``)."""
    fig, axes = _grid(len(checks), 4, 2.6, 1.9, sharey=True)
    for ax, c in zip(axes, checks, strict=True):
        _ppc_counts(ax, c.y, c.replicates, c.patient)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=6, loc="upper left")
    fig.supxlabel("4-week block of the diary", fontsize=9)
    fig.supylabel("attacks per 4 weeks", fontsize=9)
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

    def density(x: np.ndarray) -> np.ndarray | None:
        """The gaps' density per bin; None for a diary without two attacks (no gap)."""
        counts = np.histogram(np.clip(x, 1, 60), edges)[0].astype(float)
        return counts / (counts.sum() * np.diff(edges)) if counts.sum() else None

    dens = [d for r in reps if (d := density(r)) is not None]
    lo, hi = (np.quantile(np.array(dens), (0.05, 0.95), axis=0) if dens
              else (np.zeros(len(edges) - 1),) * 2)
    fig, ax = plt.subplots(figsize=(7, 2.8))
    mid = (edges[:-1] + edges[1:]) / 2
    ax.fill_between(mid, lo, hi, color=TWIN_COLOR, alpha=0.3, step="mid",
                    label="replicated diaries 90%")
    observed_density = density(obs)
    ax.step(mid, observed_density if observed_density is not None else np.zeros(mid.size),
            where="mid", color=OBS_COLOR, label=f"observed ({obs.size} gaps)")
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


def _per(feature: str, natural: object) -> str:
    """A forest row's label: the factor's human name and the step its odds ratio is for."""
    name = feature_name(feature)[0]
    if not isinstance(natural, str) or not natural:
        return name
    return f"{name} (if present)" if natural == "presence" else f"{name} (per {natural})"


def _forest(ax, t: pd.DataFrame, order: list[str], labels: bool) -> None:
    t = t.set_index("feature").reindex(order)
    natural = "or_natural" in t  # per natural unit (per hour, per 10 hPa) when known
    est, lo, hi = (("or_natural", "or_natural_low", "or_natural_high") if natural
                   else ("odds_ratio", "or_low", "or_high"))
    y = np.arange(len(order))
    strong = ((t["p_positive"] >= 0.95) | (t["p_positive"] <= 0.05)).to_numpy()
    ax.hlines(y, t[lo], t[hi], color=np.where(strong, OBS_COLOR, TWIN_COLOR))
    ax.plot(t[est], y, "o", color="k", ms=2.5)
    ax.axvline(1.0, color="0.5", ls="--", lw=0.8)
    ax.set_xscale("log")
    steps = t["natural_step"] if natural else t["step"].fillna("")
    ax.set_yticks(y, [_per(f, s) for f, s in zip(order, steps, strict=True)]
                  if labels else [], fontsize=8)
    ax.set_ylim(-0.7, len(order) - 0.3)
    values = np.concatenate([t[lo], t[hi], [1.0]]).astype(float)
    values = values[np.isfinite(values) & (values > 0)]
    ax.set_xlim(values.min() / 1.15, values.max() * 1.15)
    plain_log_axis(ax)


def forest(table: pd.DataFrame, title: str) -> Figure:
    """Odds ratios with 90% credible intervals.

    ``table``: ``feature, odds_ratio, or_low, or_high`` (per natural unit with ``or_natural,
    or_natural_low, or_natural_high, natural_step``).
    """
    order = list(table.sort_values("odds_ratio")["feature"])
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(order) + 1.2))
    _forest(ax, table, order, labels=True)
    ax.set(xlabel="odds ratio, 90% credible interval", title=title)
    fig.tight_layout()
    return fig


def forest_grid(table: pd.DataFrame, patients: list[str]) -> Figure:
    """Small multiples of :func:`forest`: one panel per patient, features in one shared order.

    ``table``: :func:`migraine_bayes.analysis.sensitivity.trigger_sensitivities` rows
    (``patient_id``
    column); a feature a patient did not measure leaves its row empty in that panel.
    """
    order = list(table.groupby("feature")["log_or_mean"].mean().sort_values().index)
    ncols = min(4, len(patients))
    fig, axes, center = _labelled_grid(len(patients), ncols, 3.4, 2.2,
                                       0.19 * len(order) + 0.5)
    for k, (ax, pid) in enumerate(zip(axes, patients, strict=True)):
        _forest(ax, table[table["patient_id"] == pid], order, labels=k % ncols == 0)
        ax.set_title(pid, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    fig.supxlabel("odds ratio per the step in brackets, 90% credible interval (red: "
                  "P(effect > 0) ≥ 0.95 or ≤ 0.05)", fontsize=9, x=center)
    return fig


def _forecasts(ax, forecasts: pd.DataFrame, patient: str) -> None:
    d = forecasts[forecasts["patient_id"] == patient].sort_values("date")
    dates = pd.to_datetime(d["date"])
    ax.fill_between(dates, d["p_low"], d["p_high"], color=TWIN_COLOR, alpha=0.25,
                    label="90% interval")
    ax.plot(dates, d["p_attack"], color=TWIN_COLOR, lw=1.0, label="p(attack)")
    hit = (d["attack"] == 1).to_numpy()
    ax.plot(dates[hit], np.zeros(hit.sum()) + 0.005, "v", color=OBS_COLOR, ms=5,
            label="attack")
    date_axis(ax)


def forecast_series(forecasts: pd.DataFrame, patient: str) -> Figure:
    """Backtest forecasts of one patient with their 90% interval and the attacks that came."""
    fig, ax = plt.subplots(figsize=(7, 2.6))
    _forecasts(ax, forecasts, patient)
    ax.set_ylim(0, _top(forecasts[forecasts["patient_id"] == patient]))
    ax.set(ylabel="probability", title=f"{patient}: one-day-ahead forecasts, walked forward")
    ax.legend(fontsize=8, loc="upper left", ncols=3)
    fig.tight_layout()
    return fig


def forecast_grid(forecasts: pd.DataFrame, patients: list[str]) -> Figure:
    """Small multiples of :func:`forecast_series`, one panel per patient, shared axes."""
    fig, axes = _grid(len(patients), 4, 2.9, 2.0, sharex=True, sharey=True)
    for ax, pid in zip(axes, patients, strict=True):
        _forecasts(ax, forecasts, pid)
        ax.set_title(pid, fontsize=9)
    axes[0].set_ylim(0, _top(forecasts[forecasts["patient_id"].isin(patients)]))  # shared
    axes[0].legend(fontsize=8, loc="upper left")
    fig.supylabel("one-day-ahead p(attack)", fontsize=9)
    fig.tight_layout()
    return fig


def _top(forecasts: pd.DataFrame) -> float:
    """The y-limit that shows every interval: the largest upper bound plus a margin."""
    high = pd.to_numeric(forecasts["p_high"], errors="coerce").to_numpy(dtype=float)
    high = high[np.isfinite(high)]
    return min(1.0, float(high.max()) * 1.08 + 0.01) if high.size else 1.0


def _counterfactuals(ax, summaries: list[dict], labels: bool) -> None:
    names = [s["name"] for s in summaries]
    a = [s["expected_attacks"] for s in summaries]
    mean = np.array([x["mean"] for x in a])
    y = np.arange(len(names))
    ax.barh(y, mean, color=[("0.6" if n == "baseline" else TWIN_COLOR) for n in names])
    err = np.clip([mean - [x["low"] for x in a], [x["high"] for x in a] - mean], 0, None)
    ax.errorbar(mean, y, xerr=err, fmt="none", color="k", capsize=3)
    ax.set_yticks(y, [treatment_label(n) for n in names] if labels else [], fontsize=9)


def counterfactuals(summaries: list[dict], patient: str, horizon: int) -> Figure:
    """Expected attacks over the horizon per scenario, with 90% intervals."""
    fig, ax = plt.subplots(figsize=(6.5, 0.5 * len(summaries) + 1.4))
    _counterfactuals(ax, summaries, labels=True)
    ax.set(xlabel=f"expected attacks in the next {horizon} days (90% interval)",
           title=f"{patient}: what if …?")
    fig.tight_layout()
    return fig


def counterfactual_grid(patients: list[dict], horizon: int) -> Figure:
    """Small multiples of :func:`counterfactuals`: one panel per patient of a simulation."""
    ncols = min(4, len(patients))
    n_scen = max(len(p["scenarios"]) for p in patients)
    fig, axes, center = _labelled_grid(len(patients), ncols, 2.0, 2.6, 0.34 * n_scen + 0.5)
    for k, (ax, p) in enumerate(zip(axes, patients, strict=True)):
        _counterfactuals(ax, p["scenarios"], labels=k % ncols == 0)
        ax.set_title(p["patient_id"], fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    fig.supxlabel(f"expected attacks in the next {horizon} days (90% interval)", fontsize=9,
                  x=center)
    return fig


def decision_curve(curve: pd.DataFrame) -> Figure:
    """Net benefit of the twin's alarms at each threshold, against alarming on every day or none.

    ``curve``: the backtest's decision-curve table (``threshold, net_benefit,
    net_benefit_low, net_benefit_high, alarm_everyone``).
    """
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    x = curve["threshold"]
    ax.plot(x, curve["net_benefit"], color=TWIN_COLOR, label="twin")
    if "net_benefit_low" in curve:
        ax.fill_between(x, curve["net_benefit_low"], curve["net_benefit_high"],
                        color=TWIN_COLOR, alpha=0.2, label="twin, 90% interval")
    ax.plot(x, curve["alarm_everyone"], color="0.4", ls="--", label="alarm every day")
    ax.axhline(0, color="0.2", lw=0.8, label="alarm on no day")
    top = max(float(np.nanmax(curve.get("net_benefit_high", curve["net_benefit"]))), 1e-3)
    ax.set(xlabel="alarm threshold (probability)", ylabel="net benefit per patient-day",
           ylim=(-0.25 * top, 1.15 * top), title="Decision curve")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def within_patient_c(by_patient: pd.DataFrame) -> Figure:
    """Each patient's within-patient C (AUC of their own backtest days) per model, as dots."""
    fig, ax = plt.subplots(figsize=(5.2, 2.6))
    models = list(dict.fromkeys(by_patient["model"]))
    for k, model in enumerate(models):
        v = by_patient.loc[by_patient["model"] == model, "auc"].dropna().to_numpy()
        ax.plot(v, np.full(v.size, k) + np.linspace(-0.15, 0.15, max(v.size, 1))[:v.size],
                "o", ms=3, color=TWIN_COLOR if model == "twin" else "0.4", alpha=0.8)
        if v.size:
            ax.plot(np.median(v), k, "|", color="k", ms=14, mew=2)
    ax.axvline(0.5, color="0.5", ls="--", lw=0.8)
    ax.set_yticks(range(len(models)), models, fontsize=8)
    ax.set(xlabel="within-patient C (one dot per patient; bar: median)", xlim=(0, 1),
           title="Discrimination within each patient")
    fig.tight_layout()
    return fig


def treatment_forest(rows: pd.DataFrame, treatment: str) -> Figure:
    """Rate ratio of one treatment per patient who started it, and pooled (90% intervals).

    ``rows``: :func:`migraine_bayes.analysis.treatment_effects.treatment_effects` rows of the
    treatment.
    """
    t = rows.iloc[::-1]
    fig, ax = plt.subplots(figsize=(5.6, 0.32 * len(t) + 1.2))
    y = np.arange(len(t))
    pooled = (t["patient_id"] == "pooled").to_numpy()
    ax.hlines(y, t["rr_low"], t["rr_high"], color=np.where(pooled, OBS_COLOR, TWIN_COLOR),
              lw=np.where(pooled, 3, 1.5))
    ax.plot(t["rate_ratio"], y, "D", color="k", ms=4)
    crude = t["crude_rr"].to_numpy(dtype=float)
    ok = np.isfinite(crude) & (crude > 0)
    ax.plot(crude[ok], y[ok], "x", color="0.45", ms=5, label="crude after/before")
    ax.axvline(1.0, color="0.5", ls="--", lw=0.8)
    ax.set_xscale("log")
    values = np.concatenate([t["rr_low"], t["rr_high"], crude[ok], [1.0]]).astype(float)
    values = values[np.isfinite(values) & (values > 0)]
    ax.set_xlim(values.min() / 1.15, values.max() * 1.15)
    plain_log_axis(ax)
    ax.set_yticks(y, [f"{p} (n={n})" if p == "pooled" else p
                      for p, n in zip(t["patient_id"], t["patients"], strict=True)], fontsize=8)
    ax.set(xlabel="attack rate ratio at full effect, 90% interval",
           title=f"{treatment_label(treatment)}: per patient and pooled")
    if ok.any():
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
