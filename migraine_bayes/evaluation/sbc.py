"""Simulation-based calibration of the single-patient model (Talts et al. 2018, arXiv:1804.06788).

Repeatedly: draw parameters from the prior, simulate attacks from the model on a real
patient's covariates, refit with the same compiled model, and record the rank of each true
parameter among ``L`` thinned posterior draws. With a correct sampler and model code, ranks are
uniform on ``0..L``; a chi-square test per parameter checks it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pymc as pm
from scipy import stats

from migraine_bayes.model import ModelData, PatientPrior, build_model
from migraine_bayes.model.design import Design
from migraine_bayes.model.features import is_hinge, is_interaction
from migraine_bayes.model.inference import CompiledModels, SamplerSettings, sample
from migraine_bayes.progress import counted
from migraine_bayes.store import atomic

SCALARS = ("alpha", "gamma", "tau_refractory", "lengthscale", "gp_amplitude")


@dataclass
class SBCResult:
    """Ranks (replicates × parameters) and the uniformity test of each parameter."""

    ranks: pd.DataFrame
    n_draws: int  # L: ranks lie in 0..L
    p_values: dict[str, float]
    components: dict[str, SBCResult] = field(default_factory=dict)  # course, state model

    @property
    def min_p_value(self) -> float:
        """Smallest uniformity p-value over parameters."""
        return min(self.p_values.values())

    def histogram(self, path: str | os.PathLike, bins: int = 10) -> None:
        """Save the rank histograms (one panel per parameter, 99% band of uniform counts)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        cols = list(self.ranks.columns)
        fig, axes = plt.subplots(1, len(cols), figsize=(2.6 * len(cols), 2.6), squeeze=False)
        n = len(self.ranks)
        lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / bins)
        for ax, col in zip(axes[0], cols, strict=True):
            ax.axhspan(lo, hi, color="0.85")
            ax.hist(self.ranks[col], bins=np.linspace(0, self.n_draws + 1, bins + 1),
                    color="C0", edgecolor="white")
            ax.set_title(f"{col}\np = {self.p_values[col]:.2f}", fontsize=8)
            ax.set_yticks([])
        fig.suptitle(f"SBC rank histograms ({n} replicates, L = {self.n_draws})", fontsize=9)
        fig.tight_layout()
        with atomic.atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
        plt.close(fig)


def _uniformity_p(ranks: np.ndarray, n_draws: int, bins: int) -> float:
    counts, _ = np.histogram(ranks, bins=np.linspace(0, n_draws + 1, bins + 1))
    return float(stats.chisquare(counts).pvalue)


def _rank(draws, true, keep: np.ndarray) -> int:
    """Rank of the true value among the kept draws (a single-patient scalar; dim ``s``)."""
    values = draws.values.reshape(-1, draws.sizes["s"])[0][keep]
    return int((values < float(true.values.ravel()[0])).sum())


def run_sbc(data: ModelData, design: Design, replicates: int = 20, seed: int = 0,
            settings: SamplerSettings | None = None, n_draws: int = 99,
            prior: PatientPrior | None = None, bins: int = 10, progress=None) -> SBCResult:
    """Run SBC of the single-patient model on the covariates of ``data`` (one patient).

    Parameters
    ----------
    data, design : ModelData, Design
        One patient's flattened data (its outcomes are replaced by simulations).
    replicates : int
        Number of prior draws (≥ 200 for the full check; ~20 as a smoke check).
    seed : int
        Seed of the prior draws and of every refit.
    settings : SamplerSettings, optional
        Sampler settings of the refits (default: 2 chains × 500 draws).
    n_draws : int
        L, posterior draws kept (thinned evenly) for each rank.
    prior : PatientPrior, optional
        Prior to simulate from and fit with (default: :class:`PatientPrior`).
    bins : int
        Histogram bins of the uniformity test.
    progress : callable, optional
        ``progress(stage, done, total)`` after each replicate (:mod:`migraine_bayes.progress`).
    """
    if len(data.patients) != 1:
        raise ValueError("SBC runs on a single patient's data")
    prior = prior or PatientPrior()
    settings = settings or SamplerSettings(draws=500, tune=500, chains=2, seed=seed)
    rng = np.random.default_rng(seed)
    model = build_model(data, prior)
    with model:
        prior_draws = pm.sample_prior_predictive(draws=replicates, random_seed=rng)
    models = CompiledModels()
    rows = []
    k_first = data.features[0] if data.features else None
    shaped = [f for f in data.features if (is_hinge(f) or is_interaction(f)) and "@lag" not in f]
    tick = counted(progress, "SBC replicates", replicates)
    for r in range(replicates):
        sim = prior_draws.prior_predictive["y_obs"].isel(chain=0, draw=r).values
        truth = prior_draws.prior.isel(chain=0, draw=r)
        rep = dataclasses.replace(data, y=np.asarray(sim, dtype="int64"))
        idata = sample(rep, prior, dataclasses.replace(settings, seed=seed + r), models)
        post = idata.posterior.stack(s=("chain", "draw"))
        keep = np.linspace(0, post.sizes["s"] - 1, n_draws).round().astype(int)
        row = {name: _rank(post[name], truth[name], keep) for name in SCALARS}
        if "lag_weight" in post:  # a distributed lag: the first trigger's effect and weights
            trigger = str(post["trigger"].values[0])
            row[f"beta_total[{trigger}]"] = _rank(post["beta_total"].sel(effect=trigger),
                                                  truth["beta_total"].sel(effect=trigger), keep)
            for lag in post["lag"].values:
                sel = {"trigger": trigger, "lag": lag}
                row[f"lag_weight[{trigger}, {int(lag)}]"] = _rank(
                    post["lag_weight"].sel(sel), truth["lag_weight"].sel(sel), keep)
        elif k_first is not None:
            row[f"beta[{k_first}]"] = _rank(post["beta"].isel(feature=0),
                                            truth["beta"].isel(feature=0), keep)
        for name in shaped:  # a learned shape's slope changes, an interaction's effect
            row[f"beta[{name}]"] = _rank(post["beta"].sel(feature=name),
                                         truth["beta"].sel(feature=name), keep)
        rows.append(row)
        tick(r + 1)
    ranks = pd.DataFrame(rows)
    p_values = {c: _uniformity_p(ranks[c].values, n_draws, bins) for c in ranks.columns}
    return SBCResult(ranks, n_draws, p_values)
