"""Benchmark: updating a living twin with one new diary day (target ≤ 1 s on 2 cores).

One patient of the committed cohort fitted on its first 300 days; then, day by day, one new day
is filtered. Measured side by side in one run: ``DigitalTwin.update`` in memory (panel rebuild
+ particle filter), the whole ``migraine-twin update`` path (load, update, atomic save, audit
trail) and, for scale, refitting the twin from scratch (what an update avoids).
Writes ``reports/benchmarks/update_speed.md`` and ``.json``.

    python benchmarks/update_speed.py [--days 5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from migraine_bayes import api
from migraine_bayes.cohort.io import load_cohort
from migraine_bayes.cohort.truncate import truncate
from migraine_bayes.store import atomic
from migraine_bayes.twin.core import DigitalTwin

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "benchmarks"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--patient", default="syn125-005")
    args = parser.parse_args()
    cohort = load_cohort(ROOT / "data" / "synthetic").subset([args.patient])
    start = pd.Timestamp(cohort.diary_periods().loc[args.patient, "start"])
    cut = start + pd.Timedelta(days=299)
    twin = DigitalTwin.fit_patient(truncate(cohort, cut), args.patient, validate=False)
    t0 = time.perf_counter()
    DigitalTwin.fit_patient(truncate(cohort, cut), args.patient, validate=False)
    refit = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = twin.save(Path(tmp) / "twin")
        memory, full = [], []
        for k in range(1, args.days + 1):
            data = truncate(cohort, cut + pd.Timedelta(days=k))
            t0 = time.perf_counter()
            twin.update(data)
            memory.append(time.perf_counter() - t0)
            folder = data.write(Path(tmp) / f"c{k}")
            t0 = time.perf_counter()
            api.update(path, folder, retrain_when_due=False)
            full.append(time.perf_counter() - t0)
    res = {"patient": args.patient, "fitted_days": 300, "updates": args.days,
           "update_in_memory_s": float(np.median(memory)),
           "update_in_memory_max_s": float(np.max(memory)),
           "update_cli_path_s": float(np.median(full)), "update_cli_path_max_s": float(
               np.max(full)), "refit_s": refit, "target_s": 1.0}
    text = (
        "# Living-twin update speed (one run, side by side)\n\n"
        f"One new diary day for one patient ({args.patient}, fitted on 300 days), median of "
        f"{args.days} consecutive days:\n\n| path | seconds |\n|---|---|\n"
        f"| `DigitalTwin.update` (panel rebuild + particle filter) | "
        f"{res['update_in_memory_s']:.3f} (max {res['update_in_memory_max_s']:.3f}) |\n"
        f"| `migraine-twin update` path (load, update, atomic save, audit) | "
        f"{res['update_cli_path_s']:.3f} (max {res['update_cli_path_max_s']:.3f}) |\n"
        f"| refit from scratch (compiled model) | {refit:.1f} |\n\n"
        f"Target ≤ 1 s; refit / update = {refit / res['update_in_memory_s']:.0f}×.\n")
    atomic.write_text(OUT / "update_speed.md", text)
    atomic.write_text(OUT / "update_speed.json", json.dumps(res, indent=1))
    print(text)


if __name__ == "__main__":
    main()
