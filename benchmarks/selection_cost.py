"""Benchmark: the cost of choosing a twin's structure from the data (``fit``'s default).

(a) 1 patient × 365 days: ``migraine-twin fit`` with the default structure selection (every
    candidate fitted, in one process per core, compared by PSIS-LOO, the kept one validated)
    beside ``--structure fixed`` (one fit and its validation fit), each in a fresh process, run
    alternately side by side; target: the ratio of medians ≤ 3.
(b) a 16 × 365 cohort with the default selection; target: ≤ 10 min on 2 cores.

Writes ``reports/benchmarks/selection_cost.md`` and ``.json``.

    python benchmarks/selection_cost.py [--repeats 2] [--cohort-patients 16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from migraine_bayes.store import atomic
from migraine_bayes.synthetic.cohort import simulate_cohort

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "benchmarks"
CLI = Path(sys.executable).with_name("migraine-twin")


def timed_fit(cohort: Path, out: Path, *extra: str) -> tuple[float, str]:
    """Wall seconds of one ``migraine-twin fit`` in a fresh process, and its output."""
    t0 = time.perf_counter()
    res = subprocess.run([str(CLI), "fit", str(cohort), "--out", str(out), "--seed", "1",
                          *extra], capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if res.returncode != 0:
        raise SystemExit(f"fit failed:\n{res.stdout}\n{res.stderr}")
    return time.perf_counter() - t0, res.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cohort-patients", type=int, default=16)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        one = simulate_cohort(1, args.days, seed=7).write(tmp / "one")
        fixed, auto, chosen = [], [], ""
        for r in range(args.repeats):
            fixed.append(timed_fit(one, tmp / f"fixed{r}", "--structure", "fixed")[0])
            seconds, text = timed_fit(one, tmp / f"auto{r}")
            auto.append(seconds)
            chosen = next((line for line in text.splitlines()
                           if line.startswith("structure chosen")), "")
        cohort_s, cohort_chosen = float("nan"), ""
        if args.cohort_patients:
            many = simulate_cohort(args.cohort_patients, args.days, seed=8).write(tmp / "many")
            cohort_s, text = timed_fit(many, tmp / "cohort")
            cohort_chosen = next((line for line in text.splitlines()
                                  if line.startswith("structure chosen")), "")
    med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    result = {"cores": os.cpu_count(), "days": args.days, "fixed_s": fixed, "auto_s": auto,
              "ratio": med(auto) / med(fixed), "one_patient_chosen": chosen,
              "cohort_patients": args.cohort_patients, "cohort_auto_s": cohort_s,
              "cohort_chosen": cohort_chosen}
    lines = ["# The cost of choosing the structure (fit's default)", "",
             f"{os.cpu_count()} cores; each fit a fresh `migraine-twin fit` process; "
             f"runs alternated side by side.", "",
             "| fit | wall time | target |", "|---|---|---|",
             f"| 1 × {args.days}, `--structure fixed` (fit + validation fit) | "
             + ", ".join(f"{s:.0f} s" for s in fixed) + " | |",
             f"| 1 × {args.days}, default (selection) | " + ", ".join(f"{s:.0f} s" for s in auto)
             + f" | ratio of medians **{result['ratio']:.2f}** (≤ 3) |"]
    if args.cohort_patients:
        lines.append(f"| {args.cohort_patients} × {args.days}, default (selection) | "
                     f"{cohort_s / 60:.1f} min | ≤ 10 min |")
    lines += ["", f"One patient: {chosen}", "", f"Cohort: {cohort_chosen}"]
    atomic.write_text(OUT / "selection_cost.md", "\n".join(lines) + "\n")
    atomic.write_text(OUT / "selection_cost.json", json.dumps(result, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
