"""Benchmark: counterfactual simulation, vectorised over draws, against a per-draw loop.

Baseline + 3 scenarios (SCHEMA.md's example: erenumab, ubrogepant in the prodrome, stress
reduction) × 30 days × 2000 posterior draws for one patient of the committed cohort, timed with
:func:`migraine_bayes.interventions.compare` (target ≤ 1 s on 2 cores). Side by side in the same
run: the same simulation written as a plain loop over draws (what one writes first), on a subset
of draws and scaled; its daily probabilities must equal the vectorised ones.
Writes ``reports/benchmarks/simulate_speed.md`` and ``.json``.

    python benchmarks/simulate_speed.py [--repeats 5] [--loop-draws 200]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.special import expit

from migraine_bayes.cohort.io import load_cohort
from migraine_bayes.interventions import PatientSimulator, compare, parse_scenarios
from migraine_bayes.store import atomic
from migraine_bayes.twin.core import DigitalTwin

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "benchmarks"
SCENARIOS = [
    {"name": "erenumab", "type": "medication",
     "params": {"medication": "erenumab", "dosage": "70mg", "frequency": "monthly"}},
    {"name": "prodrome_ubrogepant", "type": "medication",
     "params": {"medication": "ubrogepant", "dosage": "100mg", "timing": "prodrome"}},
    {"name": "stress_reduction", "type": "behavioral",
     "params": {"behavior": "stress_reduction", "intensity": "moderate"}},
]


def loop_baseline(sim: PatientSimulator, draws: int) -> np.ndarray:
    """The baseline simulated draw by draw, day by day (reference implementation)."""
    p = np.empty((draws, sim.horizon))
    d = sim.draws
    for s in range(draws):
        since = sim.days_since0
        for h in range(sim.horizon):
            z, v = sim.z_pool[sim.r[s, h]], sim.v_pool[sim.r[s, h]]
            eta = (d.alpha[s] + z @ d.beta[s] + d.delta[s] @ sim.exposure[h]
                   + sim.latent[s, h] + d.gamma[s] * np.exp(-(since - 1.0) / d.tau[s]))
            p[s, h] = expit(eta / np.sqrt(1.0 + np.pi * (v @ d.beta[s] ** 2) / 8.0))
            since = 1.0 if sim.u[s, h] < p[s, h] else since + 1.0
    return p


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loop-draws", type=int, default=200)
    parser.add_argument("--patient", default="syn125-005")
    args = parser.parse_args()
    cohort = load_cohort(ROOT / "data" / "synthetic")
    twin = DigitalTwin.fit_patient(cohort, args.patient, validate=False)
    scenarios = parse_scenarios(SCENARIOS)
    compare(twin, scenarios, 30, 2000, seed=0)  # warm-up
    times = []
    for rep in range(args.repeats):
        t0 = time.perf_counter()
        compare(twin, scenarios, 30, 2000, seed=rep)
        times.append(time.perf_counter() - t0)
    sim = PatientSimulator(twin, args.patient, 30, 2000, seed=0)
    t0 = time.perf_counter()
    vec = sim.run(None).p
    t_vec = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = loop_baseline(sim, args.loop_draws)
    t_loop = (time.perf_counter() - t0) * 2000 / args.loop_draws
    np.testing.assert_allclose(vec[: args.loop_draws], ref, rtol=1e-10, atol=1e-12)
    res = {"patient": args.patient, "scenarios": 1 + len(SCENARIOS), "days": 30,
           "draws": 2000, "compare_seconds_median": float(np.median(times)),
           "compare_seconds_max": float(np.max(times)), "repeats": args.repeats,
           "baseline_vectorised_seconds": t_vec,
           "baseline_loop_seconds_scaled": t_loop, "loop_ratio": t_loop / t_vec,
           "loop_matches_vectorised": True, "target_seconds": 1.0}
    text = (
        "# Counterfactual simulation speed (one run, side by side)\n\n"
        f"Baseline + {len(SCENARIOS)} scenarios × 30 days × 2000 draws, patient "
        f"{args.patient}: **{res['compare_seconds_median']:.3f} s** median of {args.repeats} "
        f"(max {res['compare_seconds_max']:.3f} s; target ≤ 1 s).\n\n"
        "| baseline only, 2000 draws | seconds |\n|---|---|\n"
        f"| vectorised over draws | {t_vec:.4f} |\n"
        f"| loop over draws (from {args.loop_draws} draws, scaled) | {t_loop:.2f} |\n"
        f"| ratio | {res['loop_ratio']:.0f}× |\n\n"
        "The loop's daily probabilities equal the vectorised ones (checked in this run).\n")
    atomic.write_text(OUT / "simulate_speed.md", text)
    atomic.write_text(OUT / "simulate_speed.json", json.dumps(res, indent=1))
    print(text)


if __name__ == "__main__":
    main()
