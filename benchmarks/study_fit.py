"""Benchmark: the hierarchical fit of a study-shaped cohort (target ≤ 5 min, 150 × ~30 days).

A study of ``--patients`` short diaries (:mod:`migraine_bayes.synthetic.study`: 1–17 weeks,
median 4) is fitted as one cohort twin of headache days with the default settings, on this
machine's cores. Measured: the wall time of the whole fit (model compile included, as a user
meets it), the sampling time, the latent basis size, and the sampler checks (R-hat, ESS,
divergences, E-BFMI). Writes ``reports/benchmarks/study_fit.md`` and ``.json``.

    python benchmarks/study_fit.py [--patients 150] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from migraine_bayes.store import atomic
from migraine_bayes.synthetic.study import simulate_study
from migraine_bayes.twin.core import DigitalTwin

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "benchmarks"
TARGET_S = 300.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    study = simulate_study(args.patients, seed=args.seed)
    days = [p["diary_days"] for p in study.truth["patients"]]
    t0 = time.perf_counter()
    twin = DigitalTwin.fit_cohort(study.cohort, outcome="headache_day")
    wall = time.perf_counter() - t0
    d = twin.meta["diagnostics"]
    res = {"patients": args.patients, "diary_days": int(sum(days)),
           "diary_days_median": float(sorted(days)[len(days) // 2]),
           "diary_days_range": [min(days), max(days)],
           "latent_basis_functions": len(twin.meta["domain"]["basis_offset"]),
           "fit_wall_s": wall, "sampling_s": d["sampling_seconds"], "target_s": TARGET_S,
           "checks_ok": d["ok"], "attempts": d["attempts"], "max_rhat": d["max_rhat"],
           "min_ess_bulk": d["min_ess_bulk"], "min_ess_tail": d["min_ess_tail"],
           "divergences": d["divergences"], "min_bfmi": d["min_bfmi"],
           "failures": d["failures"], "settings": d["settings"]}
    text = (
        "# Study-scale fit (hierarchical, headache days)\n\n"
        f"{args.patients} patients, {res['diary_days']} diary days (median "
        f"{res['diary_days_median']:.0f} per patient, {min(days)}–{max(days)}), "
        f"{res['latent_basis_functions']} latent basis functions per patient.\n\n"
        "| measure | value |\n|---|---|\n"
        f"| fit, wall (compile included) | {wall:.0f} s (target ≤ {TARGET_S:.0f} s) |\n"
        f"| sampling | {d['sampling_seconds']:.0f} s, {d['attempts']} attempt(s) |\n"
        f"| checks | {'pass' if d['ok'] else 'FAIL: ' + '; '.join(d['failures'])} |\n"
        f"| max R-hat | {d['max_rhat']:.3f} |\n"
        f"| min bulk / tail ESS | {d['min_ess_bulk']:.0f} / {d['min_ess_tail']:.0f} |\n"
        f"| divergences | {d['divergences']} |\n"
        f"| min E-BFMI | {d['min_bfmi']:.2f} |\n")
    OUT.mkdir(parents=True, exist_ok=True)
    atomic.write_text(OUT / "study_fit.md", text)
    atomic.write_text(OUT / "study_fit.json", json.dumps(res, indent=1))
    print(text)


if __name__ == "__main__":
    main()
