"""Federated against pooled: the same cohort fitted without pooling diaries, and pooled.

A generated cohort is split over sites with different case mixes (patients sorted by attack
rate, cut into contiguous blocks, a third of them then swapped at random: each site holds
mostly low-, middle- or high-frequency patients). Both fits see the days up to an origin
``--holdout`` days before the end:

- **federated** (:mod:`migraine_bayes.twin.federation`): each site fits its patients alone and
  sends Gaussian summaries; the coordinator fits the population; each site refits against it;
- **pooled**: the two-stage fit of the whole cohort (:mod:`migraine_bayes.twin.two_stage`)
  whose stage 1 is the full hierarchy on every patient (``population_patients`` = all).

Scored: the population parameters (the federated posterior mean's distance to the pooled one
in pooled posterior sds, and the ratio of sds), and one-day-ahead forecasts of every patient's
held-out days (each twin's particle filter walking the observed days; AUC and Brier of both on
the same days).

Run: ``python -m migraine_bayes.evaluation.federation_study --out reports/validation``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from migraine_bayes.cohort.truncate import truncate
from migraine_bayes.dims import PATIENT
from migraine_bayes.evaluation.backtest import walk_forward
from migraine_bayes.metrics import brier, roc_auc
from migraine_bayes.model.inference import InferenceWarning
from migraine_bayes.state import build_panel
from migraine_bayes.store import atomic
from migraine_bayes.synthetic.cohort import simulate_cohort
from migraine_bayes.twin import federation, two_stage
from migraine_bayes.twin.cluster import ClusterOptions

# the population parameters compared (both fits name them alike)
COMPARED = ("mu_alpha", "sigma_alpha", "mu_beta", "tau_beta", "mu_gamma", "sigma_gamma",
            "mu_delta", "sigma_delta")
TARGET_MEAN_SD = 0.1  # |federated mean - pooled mean| / pooled sd
TARGET_SD_RATIO = 0.10  # |federated sd / pooled sd - 1|
TARGET_SCORE = 0.005  # |Δ AUC|, |Δ Brier|


def split_sites(rates: pd.Series, n_sites: int, seed: int, swap: float = 1 / 3
                ) -> dict[str, list[str]]:
    """Patients (index of ``rates``) split into ``n_sites`` of different case mixes."""
    order = list(rates.sort_values(kind="stable").index)
    blocks = np.array_split(np.arange(len(order)), n_sites)
    site_of = np.empty(len(order), dtype=int)
    for k, block in enumerate(blocks):
        site_of[block] = k
    rng = np.random.default_rng(seed)
    moved = rng.choice(len(order), round(swap * len(order)), replace=False)
    site_of[moved] = rng.permutation(site_of[moved])
    return {f"site-{k + 1}": [order[i] for i in range(len(order)) if site_of[i] == k]
            for k in range(n_sites)}


def compare_populations(federated, pooled) -> pd.DataFrame:
    """Per population parameter: both means and sds, the distance in sds, the sd ratio."""
    rows = []
    for name in COMPARED:
        if name not in pooled or name not in federated:
            continue
        f, p = federated[name], pooled[name]
        dims = [d for d in p.dims if d not in ("chain", "draw")]
        fm, fs = f.mean(("chain", "draw")), f.std(("chain", "draw"))
        pm_, ps = p.mean(("chain", "draw")), p.std(("chain", "draw"))
        labels = [""] if not dims else [str(v) for v in p[dims[0]].values]
        for k, label in enumerate(labels):
            sel = {} if not dims else {dims[0]: p[dims[0]].values[k]}
            a, b = float(fm.sel(sel)), float(pm_.sel(sel))
            sa, sb = float(fs.sel(sel)), float(ps.sel(sel))
            rows.append({"parameter": name + (f"[{label}]" if label else ""),
                         "pooled_mean": b, "federated_mean": a, "pooled_sd": sb,
                         "federated_sd": sa, "distance_sd": abs(a - b) / sb,
                         "sd_ratio": sa / sb})
    return pd.DataFrame(rows)


def forecasts(twins: dict[str, object], panel, train_days: np.ndarray, origin: pd.Timestamp,
              seed: int) -> pd.DataFrame:
    """One-day-ahead forecasts of every patient's days after its training days (to ``origin``)."""
    rng = np.random.default_rng(seed)
    rows = []
    diary = panel["in_diary"].values
    for i, pid in enumerate(str(p) for p in panel[PATIENT].values):
        stop = int(diary[i].sum())
        if stop > train_days[i]:
            rows += walk_forward(twins[pid], panel.isel({PATIENT: [i]}), None,
                                 int(train_days[i]), stop, origin, rng)
    df = pd.DataFrame(rows)
    return df[df["attack"].notna()]


def run(out: Path, patients: int = 300, sites: int = 3, days: int = 365, holdout: int = 60,
        draws: int = 600, seed: int = 38, site_effects: bool = False, workers: int = 2) -> dict:
    """Generate, split, fit both ways, compare (module text); returns the figures written."""
    start = time.perf_counter()

    def say(message: str) -> None:
        print(f"[{time.perf_counter() - start:5.0f} s] {message}", flush=True)

    syn = simulate_cohort(n_patients=patients, n_days=days, seed=seed)
    cohort = syn.cohort
    panel = build_panel(cohort)
    ids = [str(p) for p in panel[PATIENT].values]
    dates = panel["date"].values
    last = pd.Timestamp(np.nanmax(np.where(panel["in_diary"].values, dates,
                                           np.datetime64("NaT"))))
    origin = (last - pd.Timedelta(days=holdout)).normalize()
    train = truncate(cohort, origin)
    train_days = (panel["in_diary"].values & (dates <= np.datetime64(origin))).sum(axis=1)
    y = panel["onset"].where(panel["in_diary"])
    rates = pd.Series((y.sum("day") / y.notnull().sum("day")).values, index=ids)
    split = split_sites(rates, sites, seed)
    settings = dataclasses.replace(two_stage.PATIENT_STAGE_SETTINGS, draws=draws, seed=seed)
    opts = ClusterOptions(workers=workers, population_patients=max(2, patients))
    singles = two_stage.ByPatient(train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferenceWarning)
        t0 = time.perf_counter()
        members = [federation.Site(name, singles.of(p), settings=settings, cluster=opts,
                                   seed=seed) for name, p in split.items()]
        fed = federation.federate(members, site_effects=site_effects,
                                  settings=dataclasses.replace(federation.POPULATION_SETTINGS,
                                                               seed=seed), progress=say)
        t_fed = time.perf_counter() - t0
        t0 = time.perf_counter()
        say("pooled: the two-stage fit of the whole cohort")
        pooled = two_stage.fit_two_stage(train, settings=settings, cluster_options=opts)
        t_pool = time.perf_counter() - t0
    table = compare_populations(fed.population.site_draws(), pooled.posterior.posterior)
    fed_twins = {pid: twin for twin in fed.twins.values() for pid in twin.patients}
    pooled_twins = dict.fromkeys(ids, pooled)
    f = forecasts(fed_twins, panel, train_days, origin, seed)
    p = forecasts(pooled_twins, panel, train_days, origin, seed)
    both = f.merge(p, on=["patient_id", "date"], suffixes=("_fed", "_pool"))
    attack = both["attack_fed"].to_numpy()
    scores = {"days": len(both), "attacks": int(attack.sum()),
              "auc_federated": roc_auc(attack, both["p_attack_fed"].to_numpy()),
              "auc_pooled": roc_auc(attack, both["p_attack_pool"].to_numpy()),
              "brier_federated": brier(attack, both["p_attack_fed"].to_numpy()),
              "brier_pooled": brier(attack, both["p_attack_pool"].to_numpy())}
    result = {"patients": patients, "sites": {k: len(v) for k, v in split.items()},
              "days": days, "holdout": holdout, "seed": seed, "site_effects": site_effects,
              "seconds_federated": t_fed, "seconds_pooled": t_pool,
              "max_distance_sd": float(table["distance_sd"].max()),
              "max_sd_ratio_error": float((table["sd_ratio"] - 1).abs().max()),
              "population_checks": fed.population.diagnostics.failures,
              "scores": scores, "table": table.to_dict(orient="records")}
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out / "federation.json", json.dumps(result, indent=1, default=float))
    atomic.write_text(out / "federation.md", _markdown(result, table, split, rates))
    return result


def _markdown(result: dict, table: pd.DataFrame, split: dict, rates: pd.Series) -> str:
    s = result["scores"]
    mix = ", ".join(f"{k}: {len(v)} patients, {30 * rates[v].mean():.1f} attacks/month"
                    for k, v in split.items())
    lines = [
        "# Federated against pooled fitting", "",
        f"{result['patients']} generated patients × {result['days']} days (seed "
        f"{result['seed']}) over {len(split)} sites ({mix}); both fits on the days up to "
        f"{result['holdout']} days before the end; site effects "
        f"{'on' if result['site_effects'] else 'off'}.", "",
        "| measure | federated | pooled | target |", "|---|---|---|---|",
        f"| largest distance of a population mean (pooled sds) | "
        f"{result['max_distance_sd']:.3f} | — | ≤ {TARGET_MEAN_SD} |",
        f"| largest error of a population sd (ratio − 1) | "
        f"{result['max_sd_ratio_error']:.3f} | — | ≤ {TARGET_SD_RATIO:.2f} |",
        f"| AUC, held-out days ({s['days']} days, {s['attacks']} attacks) | "
        f"{s['auc_federated']:.4f} | {s['auc_pooled']:.4f} | Δ ≤ {TARGET_SCORE} |",
        f"| Brier score | {s['brier_federated']:.4f} | {s['brier_pooled']:.4f} | "
        f"Δ ≤ {TARGET_SCORE} |",
        f"| wall time (2 cores) | {result['seconds_federated']:.0f} s | "
        f"{result['seconds_pooled']:.0f} s | |",
        "", "Per population parameter (posterior mean and sd):", "",
        "| parameter | pooled mean | federated mean | pooled sd | federated sd | "
        "distance (sds) | sd ratio |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r.parameter} | {r.pooled_mean:.3f} | {r.federated_mean:.3f} | "
              f"{r.pooled_sd:.3f} | {r.federated_sd:.3f} | {r.distance_sd:.2f} | "
              f"{r.sd_ratio:.2f} |" for r in table.itertuples()]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Command line (module text)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--sites", type=int, default=3)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--holdout", type=int, default=60)
    parser.add_argument("--draws", type=int, default=600)
    parser.add_argument("--seed", type=int, default=38)
    parser.add_argument("--site-effects", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    a = parser.parse_args()
    r = run(a.out, a.patients, a.sites, a.days, a.holdout, a.draws, a.seed, a.site_effects,
            a.workers)
    s = r["scores"]
    print(f"population: largest distance {r['max_distance_sd']:.3f} sd, sd error "
          f"{r['max_sd_ratio_error']:.3f}; AUC {s['auc_federated']:.4f} vs "
          f"{s['auc_pooled']:.4f}, Brier {s['brier_federated']:.4f} vs "
          f"{s['brier_pooled']:.4f}; {r['seconds_federated']:.0f} s vs "
          f"{r['seconds_pooled']:.0f} s; written to {a.out / 'federation.md'}")


if __name__ == "__main__":
    main()
