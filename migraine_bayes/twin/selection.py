"""Choosing a twin's structure from the data: PSIS-LOO over candidate structures.

Each candidate (same-day triggers, a distributed lag 0–3, learned dose–response shapes,
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

import dataclasses
import functools
import multiprocessing
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from migraine_bayes.cohort.io import Cohort
from migraine_bayes.dims import CHAIN, DRAW
from migraine_bayes.model import FeatureOptions
from migraine_bayes.model.inference import InferenceWarning, SamplerSettings
from migraine_bayes.model.kernel import log_likelihood, log_odds
from migraine_bayes.twin.core import DigitalTwin
from migraine_bayes.twin.forecast import posterior_terms

NEGLIGIBLE_ELPD = 4.0
SE_MULTIPLE = 2.0
# fewer diary days than this (all patients together): no candidate can earn its terms, and
# PSIS-LOO's differences would be noise; the simplest structure is fitted and the record says so
MIN_DAYS = 90
CRITERION = "PSIS-LOO ELPD (arviz.loo), paired differences to the best"


@dataclass(frozen=True)
class Candidate:
    """One structure a twin may take: its name, features and cohort prior of deviations."""

    name: str
    options: FeatureOptions
    deviations: str = "normal"


# simplest first: ties go to the earlier
CANDIDATES = (
    Candidate("same-day triggers", FeatureOptions()),
    # 0-3 rather than 0-2: a trigger acting 3 days later (issue 34's delayed generator); the
    # Dirichlet prior favours the same day, so a shorter lag is found inside it
    Candidate("distributed lag 0-3", FeatureOptions((1, 2, 3))),
    Candidate("learned shapes", FeatureOptions((), "learned")),
    Candidate("interactions", FeatureOptions((), "fixed", True)),
    Candidate("sparse deviations", FeatureOptions(), "horseshoe"),
)


def not_compared(diary_days: int) -> dict:
    """The ``selection`` record of a twin too short to compare structures on.

    The simplest candidate, kept without a comparison (fewer than :data:`MIN_DAYS` diary
    days), and why.
    """
    return {"criterion": CRITERION, "chosen": CANDIDATES[0].name,
            "reason": f"not compared: {diary_days} diary day(s), fewer than the {MIN_DAYS} a "
                      "comparison needs; the simplest structure is fitted",
            "rule": f"at least {MIN_DAYS} diary days to compare", "table": []}


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
    with warnings.catch_warnings():  # days with Pareto k > 0.7 are counted in the table
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
        return az.loo(data, pointwise=True)


def compare(fitted: dict[str, object]) -> pd.DataFrame:
    """The comparison table of fitted candidate twins (in candidate order).

    Columns: ``structure``, ``elpd_loo``, ``se``, ``p_loo``, ``elpd_diff`` (best minus this),
    ``se_diff`` (of the paired pointwise difference), ``high_pareto_k`` (days with k > 0.7),
    ``checks_ok`` (the candidate's sampler passed R-hat, ESS and divergences).
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
                     "high_pareto_k": int((res.pareto_k.values > 0.7).sum()),
                     "checks_ok": bool(fitted[name].record.diagnostics.get("ok", True))})
    return pd.DataFrame(rows)


def choose(table: pd.DataFrame) -> tuple[str, str]:
    """The simplest structure not worse than the best beyond noise, and why (module doc).

    A candidate whose sampler failed its checks is not kept while another passed them; the
    differences stay those to the best of all, which the reason then names as failed.
    """
    best = table.loc[table["elpd_diff"].idxmin(), "structure"]
    if "checks_ok" in table and table["checks_ok"].any():
        table = table[table["checks_ok"].astype(bool)]
    failed = ("" if best in set(table["structure"])
              else f"; the best ({best}) failed its sampler checks")
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
                                  f"{row['se_diff']:.1f}){failed}")
    kept = table.loc[table["elpd_diff"].idxmin(), "structure"]
    return kept, "the best ELPD" + (f" of the candidates that passed their checks{failed}"
                                    if failed else "")


def workers_for(n_candidates: int) -> int:
    """Processes to fit candidates in: one per core, at most one per candidate.

    One inside a daemonic process (a pool worker cannot start processes of its own).
    """
    if multiprocessing.current_process().daemon:
        return 1
    return max(1, min(n_candidates, os.cpu_count() or 1))


def fit_all(fit: Callable[[Candidate], object], chosen_from: tuple[Candidate, ...],
            workers: int = 1, progress=None) -> dict[str, object]:
    """Every candidate fitted by ``fit(candidate)``, by name (in candidate order).

    With ``workers`` > 1, ``fit`` (then picklable: a module-level function or a
    ``functools.partial`` of one) runs in that many fresh processes: a candidate's cost is
    mostly compiling its model, which one process does one at a time. Each fit takes its seed
    from its own settings, so the draws are those of the same fit run alone.
    """
    say = progress or (lambda _m: None)
    if workers <= 1:
        return {c.name: fit(c) for c in chosen_from}
    say(f"fitting {len(chosen_from)} candidate structures in {workers} processes: "
        + ", ".join(c.name for c in chosen_from))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {c.name: pool.submit(fit, c) for c in chosen_from}
        for done in as_completed(futures.values()):
            name = next(n for n, f in futures.items() if f is done)
            done.result()  # a failed fit raises here, in the caller
            say(f"candidate structure fitted: {name}")
        return {name: f.result() for name, f in futures.items()}


def fit_candidate(cohort: Cohort, ids: list[str], outcome: str,
                  settings: SamplerSettings | None, overuse: bool,
                  candidate: Candidate) -> DigitalTwin:
    """One candidate's fit of the patients ``ids``, without the validation fit.

    One patient: a patient twin; several: a cohort twin (only the kept one is validated).
    Module-level, so that :func:`fit_all` can run it in another process (as a
    ``functools.partial``). Its checks are in its record (the kept one's are shown), not
    warned here.
    """
    options = dataclasses.replace(candidate.options, overuse=overuse)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferenceWarning)
        if len(ids) == 1:
            return DigitalTwin.fit_patient(cohort, ids[0], outcome=outcome, settings=settings,
                                           validate=False, options=options)
        return DigitalTwin.fit_cohort(cohort, ids, outcome=outcome, settings=settings,
                                      options=options, deviations=candidate.deviations)


def fit_chosen(cohort: Cohort, ids: list[str], outcome: str, settings: SamplerSettings | None,
               overuse: bool, diary_days: int, progress=None) -> DigitalTwin:
    """The twin of the structure chosen from the data, its ``selection`` in its record.

    Every candidate fitted (:func:`fit_candidate`, in parallel processes) and compared
    (:func:`select`); with fewer than :data:`MIN_DAYS` diary days, the simplest candidate
    alone (:func:`not_compared`). No validation fit (``DigitalTwin.validated`` adds it); the
    kept twin's failed checks are warned (:class:`InferenceWarning`), as a fixed fit's are.
    """
    if diary_days < MIN_DAYS:
        twin = fit_candidate(cohort, ids, outcome, settings, overuse, CANDIDATES[0])
        record = not_compared(diary_days)
    else:
        cohort_twin = len(ids) > 1
        twin, record = select(functools.partial(fit_candidate, cohort, ids, outcome, settings,
                                                overuse),
                              cohort_twin, workers_for(len(candidates(cohort_twin))), progress)
    twin.record = twin.record.replace(selection=record)
    diagnostics = twin.record.diagnostics
    if not diagnostics.get("ok", True):
        warnings.warn(f"inference checks failed ({record['chosen']}): "
                      + "; ".join(diagnostics.get("failures", [])), InferenceWarning,
                      stacklevel=2)
    return twin


def select(fit: Callable[[Candidate], object], cohort: bool, workers: int = 1,
           progress=None) -> tuple[object, dict]:
    """Fit every candidate (:func:`fit_all`), compare them, keep the chosen twin.

    Returns the chosen twin and its ``selection`` record: the criterion, the table and the
    reason (kept in ``twin.json``).
    """
    fitted = fit_all(fit, candidates(cohort), workers, progress)
    if progress is not None:
        progress("comparing the candidates by PSIS-LOO")
    table = compare(fitted)
    chosen, reason = choose(table)
    record = {"criterion": CRITERION, "chosen": chosen, "reason": reason,
              "rule": f"simplest with ELPD difference < {NEGLIGIBLE_ELPD:g} or < "
                      f"{SE_MULTIPLE:g} SE of the difference",
              "table": table.round(3).to_dict(orient="records")}
    return fitted[chosen], record
