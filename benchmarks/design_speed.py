"""Benchmark: `design` for one patient and two options in ≤ 60 s on 2 cores.

Fits one patient of the committed cohort (not timed), saves the twin, then times
``migraine-twin design TWIN --patient P --compare current,erenumab:140`` with its defaults
(1,000 simulated futures, every candidate schedule up to 16 weeks and the fixed 12-week ABAB)
in a fresh process, ``--repeats`` times (median). Beside it, in the same run, the same
process answering ``--help``, the floor of any command. Writes
``reports/benchmarks/design.md`` and ``.json``.

    python benchmarks/design_speed.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from migraine_bayes.cohort.io import load_cohort
from migraine_bayes.store import atomic
from migraine_bayes.twin.core import fit_patients

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "benchmarks"
CLI = str(Path(sys.executable).with_name("migraine-twin"))
TARGET_S = 60.0
PATIENT = "syn125-001"


def seconds(argv: list[str]) -> float:
    """Wall time of one fresh process (it must succeed)."""
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        twin = Path(folder) / "twin"
        fit_patients(load_cohort(ROOT / "data" / "synthetic"), [PATIENT])[PATIENT].save(twin)
        plan = Path(folder) / "plan.json"
        argv = [CLI, "design", str(twin), "--patient", PATIENT, "--compare",
                "current,erenumab:140", "--out", str(plan), "--force"]
        design = [seconds(argv) for _ in range(args.repeats)]
        floor = [seconds([CLI, "--help"]) for _ in range(args.repeats)]
        result = json.loads(plan.read_text())
    median = statistics.median(design)
    out = {"design_s": round(median, 1), "runs_s": [round(s, 1) for s in design],
           "help_s": round(statistics.median(floor), 2), "target_s": TARGET_S,
           "passed": median <= TARGET_S, "candidates": len(result["candidates"]) + 1,
           "simulations": result["simulations"]}
    OUT.mkdir(parents=True, exist_ok=True)
    atomic.write_text(OUT / "design.json", json.dumps(out, indent=2) + "\n")
    md = ["# `design`: one patient, two options", "",
          f"`python benchmarks/design_speed.py --repeats {args.repeats}` (2 cores).", "",
          "| command | median wall time | runs |", "|---|---|---|",
          f"| `design` ({out['candidates']} schedules × {out['simulations']} futures) | "
          f"**{median:.1f} s** | {', '.join(f'{s:.1f}' for s in design)} |",
          f"| `--help` (floor) | {out['help_s']:.2f} s | |", "",
          f"Target ≤ {TARGET_S:.0f} s: " + ("**met**." if out["passed"] else "**not met**."),
          ""]
    atomic.write_text(OUT / "design.md", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
