"""Benchmark: two-stage cohort fits of 10 → 1,000 patients on local Dask workers.

For each size, a generated cohort (``simulate_cohort``, ``--days`` days) is fitted by
:func:`migraine_bayes.twin.two_stage.fit_two_stage` on ``--workers`` local worker processes, in a
fresh driver process (so that its peak memory is its own). Measured: wall time of the fit
(panel, population fit, patients, gathering) and of saving the twin, time per patient, the
share of patients passing their checks (R-hat ≤ 1.01, bulk and tail ESS ≥ 400, no divergence,
E-BFMI ≥ 0.3), peak memory of the driver and each worker's largest resident memory at the end
of a task (a worker's own ``ru_maxrss`` is useless: forked from the driver, it inherits the
driver's peak). From the per-patient cost of the
largest run, the projection for a 32-worker cluster and for 100,000 patients.

Targets (2 cores): 1,000 × 365 days in ≤ 45 min, ≥ 98% passing, ≤ 6 GB peak memory in all
(driver + workers). Writes ``reports/benchmarks/scale.md``, ``.json`` and ``.png``.

    python benchmarks/scale.py [--sizes 10,100,1000] [--days 365] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "benchmarks"
TARGET_S = 45 * 60.0
TARGET_PASS = 0.98
TARGET_MEMORY_MB = 6 * 1024.0


def one(n: int, days: int, workers: int, seed: int) -> dict:
    """Fit one generated cohort of ``n`` patients (run in its own process)."""
    from migraine_bayes.synthetic.cohort import simulate_cohort
    from migraine_bayes.twin import cluster
    from migraine_bayes.twin.cluster import ClusterOptions
    from migraine_bayes.twin.two_stage import fit_two_stage

    cohort = simulate_cohort(n_patients=n, n_days=days, seed=seed).cohort
    generated_mb = cluster.peak_memory_mb()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        twin = fit_two_stage(cohort, cluster_options=ClusterOptions(workers=workers),
                             work_dir=Path(tmp) / "work")
        fit_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        twin.save(Path(tmp) / "twin")
        save_s = time.perf_counter() - t1
        size_mb = sum(f.stat().st_size for f in (Path(tmp) / "twin").rglob("*")
                      if f.is_file()) / 2**20
    fitting = twin.meta["fitting"]
    per = fitting["patients"]
    workers_peak: dict[str, float] = {}
    for p in per.values():
        workers_peak[p["worker"]] = max(workers_peak.get(p["worker"], 0.0), p["peak_memory_mb"])
    passing = sum(p["ok"] for p in per.values())
    return {"patients": n, "days": days, "workers": workers, "fit_s": fit_s, "save_s": save_s,
            "stages_s": fitting["seconds"],
            "patient_stage_s_per_patient": fitting["seconds"]["patients"] / n,
            "per_patient_fit_s_median": sorted(p["seconds"] for p in per.values())[len(per) // 2],
            "fitted": len(per), "not_fitted": len(fitting["not_fitted"]),
            "passing": passing, "pass_share": passing / n,
            "retried": sum(p["attempts"] > 1 for p in per.values()),
            "retries": dict(Counter(p.get("retry") or "none" for p in per.values())),
            "first_attempt_failures": kinds(p.get("first_failures", []) for p in per.values()),
            "final_failures": kinds(p["failures"] for p in per.values()),
            "population_patients": len(fitting["population_patients"]),
            "population_ok": fitting["population_diagnostics"]["ok"],
            "driver_peak_mb": cluster.peak_memory_mb(), "driver_after_data_mb": generated_mb,
            "driver_peak_by_stage_mb": fitting["driver_peak_mb"],
            "worker_peak_mb": workers_peak,
            "total_peak_mb": cluster.peak_memory_mb() + sum(workers_peak.values()),
            "twin_size_mb": size_mb}


def kinds(failure_lists) -> dict[str, int]:
    """Patients failing each check (R-hat, bulk ESS, tail ESS, divergences, E-BFMI)."""
    names = ("R-hat", "bulk ESS", "tail ESS", "divergent", "E-BFMI")
    out: Counter = Counter()
    for failures in failure_lists:
        out.update({n for n in names for f in failures if f.startswith(n) or n in f.split()})
    return dict(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print("RESULT " + json.dumps(one(args.one, args.days, args.workers, args.seed)))
        return
    results = []
    for n in [int(s) for s in args.sizes.split(",")]:
        print(f"fitting {n} patients × {args.days} days on {args.workers} workers …",
              flush=True)
        proc = subprocess.run([sys.executable, __file__, "--one", str(n), "--days",
                               str(args.days), "--workers", str(args.workers), "--seed",
                               str(args.seed)], capture_output=True, text=True, check=False)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not line:
            raise SystemExit(f"{n} patients failed:\n{proc.stderr[-4000:]}")
        results.append(json.loads(line[0][len("RESULT "):]))
        r = results[-1]
        print(f"  {r['fit_s']:.0f} s ({r['patient_stage_s_per_patient']:.2f} s per patient in "
              f"stage 2), {r['pass_share']:.1%} passing, {r['total_peak_mb']:.0f} MB peak",
              flush=True)
    write(results)


def projection(r: dict) -> dict:
    """Wall time on 32 workers and for 100,000 patients from the largest run's costs."""
    per_worker_s = r["patient_stage_s_per_patient"] * r["workers"]  # one worker, one patient
    fixed = r["stages_s"]["population"]
    per_patient_driver = (r["stages_s"]["panel"] + r["stages_s"]["gather"] + r["save_s"]) / r[
        "patients"]
    out = {}
    for n in (r["patients"], 100_000):
        for w in (r["workers"], 32):
            out[f"{n}_patients_{w}_workers_h"] = (fixed + n * per_worker_s / w
                                                  + n * per_patient_driver) / 3600
    out["patient_fit_core_s"] = per_worker_s
    out["driver_s_per_patient"] = per_patient_driver
    return out


def write(results: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from migraine_bayes.store import atomic

    OUT.mkdir(parents=True, exist_ok=True)
    results = sorted(results, key=lambda r: r["patients"])
    big = max(results, key=lambda r: r["patients"])
    proj = projection(big)
    payload = {"results": results, "projection": proj, "targets": {
        "wall_s_1000": TARGET_S, "pass_share": TARGET_PASS, "total_peak_mb": TARGET_MEMORY_MB}}
    atomic.write_text(OUT / "scale.json", json.dumps(payload, indent=1))
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    n = [r["patients"] for r in results]
    ax[0].loglog(n, [r["fit_s"] / 60 for r in results], "o-")
    ax[0].axhline(TARGET_S / 60, ls="--", c="grey")
    ax[0].set(xlabel="patients", ylabel="fit wall time (min)")
    ax[1].semilogx(n, [r["fit_s"] / r["patients"] for r in results], "o-", label="whole fit")
    ax[1].semilogx(n, [r["patient_stage_s_per_patient"] for r in results], "s-",
                   label="stage 2 only")
    ax[1].set(xlabel="patients", ylabel="seconds per patient", ylim=(0, None))
    ax[1].legend()
    fig.suptitle(f"two-stage fits, {big['days']} days, {big['workers']} local workers")
    fig.tight_layout()
    with atomic.atomic_path(OUT / "scale.png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    lines = ["# Scaling: two-stage cohort fits on local Dask workers", "",
             f"{big['days']}-day generated cohorts, {big['workers']} worker processes of one "
             "thread, this machine. Targets: 1,000 patients ≤ 45 min, ≥ 98% passing their "
             "checks, ≤ 6 GB peak memory in all.", "",
             "| patients | fit | per patient (whole / stage 2) | population fit | save | "
             "passing | retried | memory (driver peak + each worker's largest resident "
             "memory at a task's end) | twin size |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['patients']} | {r['fit_s'] / 60:.1f} min | {r['fit_s'] / r['patients']:.2f}"
            f" / {r['patient_stage_s_per_patient']:.2f} s | {r['stages_s']['population']:.0f} s"
            f" | {r['save_s']:.0f} s | {r['passing']}/{r['patients']} ({r['pass_share']:.1%})"
            f" | {r['retried']} | {r['total_peak_mb'] / 1024:.2f} GB ({r['driver_peak_mb']:.0f}"
            f" + {' + '.join(f'{v:.0f}' for v in r['worker_peak_mb'].values())} MB) | "
            f"{r['twin_size_mb']:.0f} MB |")
    lines += ["", f"Projection from the {big['patients']}-patient run: one patient costs "
              f"{proj['patient_fit_core_s']:.1f} s of one worker core, and the driver "
              f"{proj['driver_s_per_patient']:.3f} s (panel, gathering, saving).", "",
              "| patients | 2 workers | 32 workers |", "|---|---|---|"]
    w = big["workers"]
    for m in (big["patients"], 100_000):
        lines.append(f"| {m:,} | {proj[f'{m}_patients_{w}_workers_h']:.2f} h | "
                     f"{proj[f'{m}_patients_32_workers_h']:.2f} h |")
    lines += ["", "![scaling](scale.png)", ""]
    atomic.write_text(OUT / "scale.md", "\n".join(lines))


if __name__ == "__main__":
    main()
