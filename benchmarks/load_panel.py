"""Benchmark: load the committed cohort and build its daily panel (target: under 5 s).

Also measures, side by side in the same run, the same cohort with observations as CSV instead of
Parquet, so the ratio is robust to a noisy shared machine. Writes
``reports/benchmarks/load_panel.md`` and ``.json``.

    python benchmarks/load_panel.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from migraine_bayes.cohort.io import load_cohort
from migraine_bayes.state import build_panel
from migraine_bayes.store import atomic

ROOT = Path(__file__).resolve().parent.parent
COHORT = ROOT / "data" / "synthetic"
OUT = ROOT / "reports" / "benchmarks"


def time_once(folder: Path) -> tuple[float, float]:
    t0 = time.perf_counter()
    cohort = load_cohort(folder)
    t1 = time.perf_counter()
    build_panel(cohort)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv_copy = Path(tmp) / "csv"
        load_cohort(COHORT).write(csv_copy, observations_format="csv")
        variants = {"parquet (committed)": COHORT, "csv": csv_copy}
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
        time_once(COHORT)  # warm imports and caches once
        for _ in range(args.repeats):  # interleaved: both variants see the same machine load
            for name, folder in variants.items():
                runs[name].append(time_once(folder))
    rows = []
    for name, r in runs.items():
        load = statistics.median(x[0] for x in r)
        panel = statistics.median(x[1] for x in r)
        rows.append({"variant": name, "load_s": load, "panel_s": panel, "total_s": load + panel})
    base = rows[0]["total_s"]
    lines = ["# Load + panel benchmark (committed cohort: 12 patients × 365 days)", "",
             f"median of {args.repeats} interleaved runs; target: total < 5 s", "",
             "| observations | load (s) | panel (s) | total (s) | ratio to parquet |",
             "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['variant']} | {row['load_s']:.2f} | {row['panel_s']:.2f} | "
                     f"{row['total_s']:.2f} | {row['total_s'] / base:.2f} |")
    text = "\n".join(lines) + "\n"
    atomic.write_text(OUT / "load_panel.md", text)
    atomic.write_text(OUT / "load_panel.json", json.dumps(rows, indent=1))
    print(text)


if __name__ == "__main__":
    main()
