"""Benchmark: fitting speed and sampler quality, side by side in one run.

(a) this toolkit, 1 patient × 365 days (after the first compile); (a+) the same with the
    distributed trigger lag (``--lags 1,2``: each trigger's effect spread over 0-2 days);
    (a++) with the lag, learned shapes and interactions (``--shapes learned --interactions``);
(b) 20 patients × 365 days, hierarchical;
(c) the same 20 patients fitted one by one, model compiled once;
(d) the naive way: a fresh PyMC model per patient (non-centred AR(1) latent state, Bernoulli
    attacks, 6 triggers), sampled with PyMC's default NUTS — built and compiled every time.

Targets (2 cores): (a) ≤ 20 s with every non-latent R-hat ≤ 1.01 and bulk ESS ≥ 400;
(b) ≤ 5 min, same checks; (c) ≥ 5× (d) in effective samples per second per patient.
Writes ``reports/benchmarks/fit_speed.md`` and ``.json``.

    python benchmarks/fit_speed.py [--naive-patients 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import arviz as az
import numpy as np
import pymc as pm

from migraine_bayes.model import FeatureOptions, build_design
from migraine_bayes.model.inference import COHORT_SETTINGS, PATIENT_SETTINGS
from migraine_bayes.state import build_panel
from migraine_bayes.store import atomic
from migraine_bayes.synthetic.cohort import simulate_cohort
from migraine_bayes.twin.core import DigitalTwin

OUT = Path(__file__).resolve().parent.parent / "reports" / "benchmarks"
NAIVE_TRIGGERS = ["trigger.stress", "trigger.sleep_duration", "trigger.menstruation",
                  "trigger.skipped_meal", "derived.stress_letdown", "derived.pressure_change"]


def naive_fit(panel, pid: str, seed: int) -> tuple[float, float, float]:
    """Build and sample the naive per-patient model; (seconds, min bulk ESS, max R-hat)."""
    t0 = time.perf_counter()
    p = panel.sel(patient=pid)
    feats = [f for f in NAIVE_TRIGGERS if f in p["feature"].values]
    x = p["imputed"].sel(feature=feats).values
    x = (x - np.nanmean(x, 0)) / np.where(np.nanstd(x, 0) > 0, np.nanstd(x, 0), 1)
    x = np.nan_to_num(x)
    y = p["onset"].values
    known = ~np.isnan(y)
    with pm.Model(coords={"day": np.arange(len(y)), "feature": feats}):
        alpha = pm.Normal("alpha", -2, 1)
        beta = pm.Normal("beta", 0, 0.5, dims="feature")
        rho = pm.Uniform("rho", 0, 1)
        sigma = pm.HalfNormal("sigma", 0.5)
        eps = pm.Normal("eps", dims="day")
        latent = pm.Deterministic("latent", _ar1(eps, rho, sigma), dims="day")
        eta = alpha + (x * beta).sum(-1) + latent
        pm.Bernoulli("y", logit_p=eta[known], observed=y[known])
        idata = pm.sample(random_seed=seed, progressbar=False, chains=2, cores=2,
                          compute_convergence_checks=False)
    seconds = time.perf_counter() - t0
    s = az.summary(idata, var_names=["alpha", "beta", "rho", "sigma"], kind="diagnostics")
    return seconds, float(s["ess_bulk"].min()), float(s["r_hat"].max())


def _ar1(eps, rho, sigma):
    import pytensor
    import pytensor.tensor as pt

    first = eps[0] * sigma / pt.sqrt(1 - rho**2)

    def step(e, prev, rho, sigma):
        return rho * prev + sigma * e

    rest, _ = pytensor.scan(step, sequences=[eps[1:]], outputs_info=[first],
                            non_sequences=[rho, sigma])
    return pt.concatenate([first[None], rest])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--naive-patients", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="5 patients, for CI")
    args = parser.parse_args()
    n_pat = 5 if args.quick else 20
    sc = simulate_cohort(n_pat, 365, seed=2026)
    cohort = sc.cohort
    ids = cohort.patient_ids
    panel = build_panel(cohort)
    shared = build_design(panel)
    kw = dict(features=shared.features, scaling=shared.scaling,
              interventions=shared.interventions, validate=False)
    results = {}

    # warm-up: the first compile of the single-patient model
    t0 = time.perf_counter()
    DigitalTwin.fit_patient(cohort, ids[0], **kw)
    results["first_compile_and_fit_s"] = time.perf_counter() - t0

    # (a) one patient after the first compile
    t0 = time.perf_counter()
    tw = DigitalTwin.fit_patient(cohort, ids[1], **kw)
    d = tw.meta["diagnostics"]
    results["a"] = {"seconds": time.perf_counter() - t0, "min_ess_bulk": d["min_ess_bulk"],
                    "max_rhat": d["max_rhat"], "divergences": d["divergences"],
                    "attempts": d["attempts"], "ok": d["ok"]}

    # (a+) one patient with the distributed lag; (a++) with lags, learned shapes and
    # interactions (each after its own first compile)
    for key, options in (("a_lags", FeatureOptions((1, 2))),
                         ("a_all", FeatureOptions((1, 2), "learned", True))):
        design = build_design(panel, options=options)
        kw_opt = dict(features=design.features, scaling=design.scaling,
                      interventions=design.interventions, validate=False)
        DigitalTwin.fit_patient(cohort, ids[0], **kw_opt)
        t0 = time.perf_counter()
        tw = DigitalTwin.fit_patient(cohort, ids[1], **kw_opt)
        d = tw.meta["diagnostics"]
        results[key] = {"seconds": time.perf_counter() - t0, "min_ess_bulk": d["min_ess_bulk"],
                        "max_rhat": d["max_rhat"], "divergences": d["divergences"],
                        "attempts": d["attempts"], "ok": d["ok"],
                        "features": len(design.features)}

    # (c) every patient one by one, same compiled model
    per = []
    for pid in ids:
        t0 = time.perf_counter()
        tw = DigitalTwin.fit_patient(cohort, pid, **kw)
        sec = time.perf_counter() - t0
        dd = tw.meta["diagnostics"]
        per.append({"patient": pid, "seconds": sec, "min_ess_bulk": dd["min_ess_bulk"],
                    "ess_per_s": dd["min_ess_bulk"] / sec, "ok": dd["ok"],
                    "max_rhat": dd["max_rhat"]})
    results["c"] = {"patients": len(per),
                    "mean_seconds": float(np.mean([r["seconds"] for r in per])),
                    "mean_ess_per_s": float(np.mean([r["ess_per_s"] for r in per])),
                    "all_ok": all(r["ok"] for r in per), "per_patient": per}

    # (d) naive: fresh model per patient, PyMC default sampler
    naive = []
    for pid in ids[: args.naive_patients]:
        sec, ess, rhat = naive_fit(panel, pid, seed=1)
        naive.append({"patient": pid, "seconds": sec, "min_ess_bulk": ess, "ess_per_s": ess / sec,
                      "max_rhat": rhat})
    results["d"] = {"patients": len(naive),
                    "mean_seconds": float(np.mean([r["seconds"] for r in naive])),
                    "mean_ess_per_s": float(np.mean([r["ess_per_s"] for r in naive])),
                    "per_patient": naive}
    results["c_over_d_ess_per_s"] = results["c"]["mean_ess_per_s"] / results["d"]["mean_ess_per_s"]
    same = [r for r in per if r["patient"] in {n["patient"] for n in naive}]
    results["c_over_d_same_patients"] = (float(np.mean([r["ess_per_s"] for r in same]))
                                         / results["d"]["mean_ess_per_s"])

    # (b) hierarchical cohort
    t0 = time.perf_counter()
    tw = DigitalTwin.fit_cohort(cohort, settings=COHORT_SETTINGS)
    d = tw.meta["diagnostics"]
    results["b"] = {"seconds": time.perf_counter() - t0, "patients": n_pat,
                    "min_ess_bulk": d["min_ess_bulk"], "min_ess_tail": d["min_ess_tail"],
                    "max_rhat": d["max_rhat"], "divergences": d["divergences"],
                    "attempts": d["attempts"], "ok": d["ok"], "worst": d["worst"]}
    results["settings"] = {"patient": PATIENT_SETTINGS.__dict__, "cohort": COHORT_SETTINGS.__dict__}

    a, b, c, dn = results["a"], results["b"], results["c"], results["d"]
    al, aa = results["a_lags"], results["a_all"]
    lines = [
        f"# Fit speed ({n_pat} synthetic patients × 365 days, 2 cores, one run)", "",
        "| case | wall time | min bulk ESS | max R-hat | checks | target |",
        "|---|---|---|---|---|---|",
        f"| (a) 1 patient, after first compile | {a['seconds']:.1f} s | {a['min_ess_bulk']:.0f} | "
        f"{a['max_rhat']:.3f} | {'pass' if a['ok'] else 'FAIL'} | ≤ 20 s |",
        f"| (a+) the same, distributed lag 0-2 days ({al['features']} features) | "
        f"{al['seconds']:.1f} s | {al['min_ess_bulk']:.0f} | {al['max_rhat']:.3f} | "
        f"{'pass' if al['ok'] else 'FAIL'} | ≤ 20 s |",
        f"| (a++) the same, lags + learned shapes + interactions ({aa['features']} features) | "
        f"{aa['seconds']:.1f} s | {aa['min_ess_bulk']:.0f} | {aa['max_rhat']:.3f} | "
        f"{'pass' if aa['ok'] else 'FAIL'} | ≤ 20 s |",
        f"| (b) {n_pat} patients hierarchical | {b['seconds']:.0f} s | {b['min_ess_bulk']:.0f} | "
        f"{b['max_rhat']:.3f} | {'pass' if b['ok'] else 'FAIL'} "
        f"(attempts {b['attempts']}) | ≤ 300 s |",
        f"| (c) {n_pat} patients one by one | {c['mean_seconds']:.1f} s/patient | "
        f"ESS/s {c['mean_ess_per_s']:.0f} | | {'all pass' if c['all_ok'] else 'some FAIL'} | |",
        f"| (d) naive, fresh PyMC model each ({dn['patients']} patients) | "
        f"{dn['mean_seconds']:.1f} s/patient | ESS/s {dn['mean_ess_per_s']:.1f} | | | |",
        "", f"(c)/(d) effective samples per second: **{results['c_over_d_ess_per_s']:.0f}×** "
        f"(same patients only: {results['c_over_d_same_patients']:.0f}×; target ≥ 5×)",
        f"first compile + fit: {results['first_compile_and_fit_s']:.0f} s",
    ]
    text = "\n".join(lines) + "\n"
    atomic.write_text(OUT / "fit_speed.md", text)
    atomic.write_text(OUT / "fit_speed.json", json.dumps(results, indent=1, default=float))
    print(text)


if __name__ == "__main__":
    main()
