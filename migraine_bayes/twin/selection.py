"""Choosing a twin's structure from the data: PSIS-LOO over candidate structures.

Each candidate (same-day triggers, a distributed lag 0–2, learned dose–response shapes,
pairwise interactions; for a cohort also sparse deviations) is fitted; its pointwise log
likelihood on every fitted day with a known outcome is computed through the one likelihood
kernel (:mod:`migraine_bayes.model.kernel`, the same numbers the PyMC graph gives), and
Pareto-smoothed importance-sampling leave-one-out (``arviz.loo``) estimates its expected log
predictive density (ELPD) with a standard error. The candidates are compared on the same days:
each one's difference to the best, with the standard error of that paired difference. The
simplest candidate that is not worse than the best beyond noise is kept — a difference under
:data:`NEGLIGIBLE_ELPD`, or under :data:`SE_MULTIPLE` standard errors of the difference
(Sivula, Magnusson & Vehtari 2022: differences below 4 are small, and their SE unreliable).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from migraine_bayes.dims import CHAIN, DRAW
from migraine_bayes.model import FeatureOptions
from migraine_bayes.model.kernel import log_likelihood, log_odds
from migraine_bayes.twin.forecast import posterior_terms

NEGLIGIBLE_ELPD = 4.0
SE_MULTIPLE = 2.0


@dataclass(frozen=True)
class Candidate:
    """One structure a twin may take: its name, features and cohort prior of deviations."""

    name: str
    options: FeatureOptions
    deviations: str = "normal"


# simplest first: ties go to the earlier
CANDIDATES = (
    Candidate("same-day triggers", FeatureOptions()),
    Candidate("distributed lag 0-2", FeatureOptions((1, 2))),
    Candidate("learned shapes", FeatureOptions((), "learned")),
    Candidate("interactions", FeatureOptions((), "fixed", True)),
    Candidate("sparse deviations", FeatureOptions(), "horseshoe"),
)


def candidates(cohort: bool) -> tuple[Candidate, ...]:
    """The candidates of a cohort twin, or of a one-patient twin (no deviations to sparsify)."""
    return tuple(c for c in CANDIDATES if cohort or c.deviations == "normal")


def pointwise_log_likelihood(twin) -> xr.DataArray:
    """``log p(y_t | θ)`` of every fitted day with a known outcome: (chain, draw, day).

    Fitted days are the first ``coverage[p]["diary_days"]`` days of each patient (an updated
    twin's later days are not part of its fit).
    """
    post = twin.posterior.posterior
    design = twin.design()
    coverage = twin.record.coverage
    parts = []
    for i, pid in enumerate(design.patients):
        fitted = int(coverage.get(pid, {}).get("diary_days", design.y.shape[1]))
        days = np.flatnonzero(~np.isnan(design.y[i, :fitted]))
        if days.size:
            eta, scale = log_odds(posterior_terms(post, design, i, days, twin.domain))
            parts.append(log_likelihood(design.y[i, days][None, :], eta * scale))
    ll = np.concatenate(parts, axis=1)
    n_chain, n_draw = post.sizes[CHAIN], post.sizes[DRAW]
    return xr.DataArray(ll.reshape(n_chain, n_draw, -1), dims=(CHAIN, DRAW, "day"),
                        name="y")


def loo(twin) -> az.ELPDData:
    """PSIS-LOO of a twin's fitted days (pointwise)."""
    ll = pointwise_log_likelihood(twin)
    post = twin.posterior.posterior  # for the draws' relative efficiency
    data = az.InferenceData(posterior=post, log_likelihood=xr.Dataset({"y": ll}))
    return az.loo(data, pointwise=True)


def compare(fitted: dict[str, object]) -> pd.DataFrame:
    """The comparison table of fitted candidate twins (in candidate order).

    Columns: ``structure``, ``elpd_loo``, ``se``, ``p_loo``, ``elpd_diff`` (best minus this),
    ``se_diff`` (of the paired pointwise difference), ``high_pareto_k`` (days with k > 0.7).
    """
    results = {name: loo(twin) for name, twin in fitted.items()}
    best = max(results, key=lambda n: results[n].elpd_loo)
    best_points = results[best].loo_i.values
    rows = []
    for name, res in results.items():
        diff = best_points - res.loo_i.values
        rows.append({"structure": name, "elpd_loo": float(res.elpd_loo), "se": float(res.se),
                     "p_loo": float(res.p_loo), "elpd_diff": float(diff.sum()),
                     "se_diff": float(np.sqrt(diff.size * diff.var())),
                     "high_pareto_k": int((res.pareto_k.values > 0.7).sum())})
    return pd.DataFrame(rows)


def choose(table: pd.DataFrame) -> tuple[str, str]:
    """The simplest structure not worse than the best beyond noise, and why (module doc)."""
    best = table.loc[table["elpd_diff"].idxmin(), "structure"]
    for _, row in table.iterrows():
        if row["elpd_diff"] < NEGLIGIBLE_ELPD:
            why = "negligible"
        elif row["elpd_diff"] < SE_MULTIPLE * row["se_diff"]:
            why = f"within {SE_MULTIPLE:g} SE"
        else:
            continue
        if row["structure"] == best:
            return best, "the best ELPD, and the simplest within noise of it"
        return row["structure"], (f"the simplest within noise of the best ({best}): ELPD "
                                  f"{row['elpd_diff']:.1f} lower ({why}; SE of the difference "
                                  f"{row['se_diff']:.1f})")
    return best, "the best ELPD"


def select(fit: Callable[[Candidate], object], cohort: bool) -> tuple[object, dict]:
    """Fit every candidate with ``fit(candidate)``, compare, keep the chosen twin.

    Returns the chosen twin and its ``selection`` record: the criterion, the table and the
    reason (kept in ``twin.json``).
    """
    fitted = {c.name: fit(c) for c in candidates(cohort)}
    table = compare(fitted)
    chosen, reason = choose(table)
    record = {"criterion": "PSIS-LOO ELPD (arviz.loo), paired differences to the best",
              "chosen": chosen, "reason": reason,
              "rule": f"simplest with ELPD difference < {NEGLIGIBLE_ELPD:g} or < "
                      f"{SE_MULTIPLE:g} SE of the difference",
              "table": table.round(3).to_dict(orient="records")}
    return fitted[chosen], record
