"""Benchmark: rejecting a huge invalid observations file (target ≤ 1 GB peak memory).

Writes a cohort whose ``observations.csv`` has ``--rows`` rows (default 2 million), every one of
them invalid (a value outside the registry range, every tenth also an unknown variable), and
runs ``migraine-twin validate-data`` on it in a child process, measuring wall time and the
child's peak resident memory. A valid file of the same size is measured beside it, for scale.
Writes ``reports/benchmarks/bad_file.md`` and ``.json``.

    python benchmarks/bad_file.py [--rows 2000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from migraine_bayes.store import atomic

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "benchmarks"
TARGET_MB = 1024


def write_cohort(folder: Path, rows: int, invalid: bool) -> Path:
    """A cohort of 100 patients with ``rows`` stress observations (written in blocks)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    block = 200_000
    with open(folder / "observations.csv", "w", encoding="utf-8") as fh:
        fh.write("patient_id,time,variable,value\n")
        for start in range(0, rows, block):
            n = min(block, rows - start)
            k = np.arange(start, start + n)
            pid = np.char.add("P", (k % 100).astype(str))
            minute = (k // 100)
            time_ = (pd.Timestamp("2024-01-01") + pd.to_timedelta(minute, unit="min")
                     ).strftime("%Y-%m-%dT%H:%M")
            value = rng.integers(11, 99, n) if invalid else rng.integers(0, 10, n)
            var = np.where(invalid & (k % 10 == 0), "stres", "stress")
            pd.DataFrame({"p": pid, "t": time_, "v": var, "x": value}).to_csv(
                fh, header=False, index=False)
    (folder / "attacks.csv").write_text("patient_id,onset\nP0,2024-01-02T10:00\n")
    return folder


def run(folder: Path) -> dict:
    """``migraine-twin validate-data`` in a child: exit code, seconds, peak MB, output size."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).with_name("migraine-twin")), "validate-data",
                           str(folder)], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    lines = proc.stderr.splitlines()
    return {"exit_code": proc.returncode, "seconds": round(seconds, 1),
            "peak_mb": round(max(peak, before) / 1024, 0), "message_lines": len(lines),
            "first_lines": lines[:3], "summary_lines": [ln for ln in lines if "more rows" in ln]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bad = write_cohort(Path(tmp) / "bad", args.rows, invalid=True)
        size_mb = (bad / "observations.csv").stat().st_size / 2**20
        invalid = run(bad)  # first: ru_maxrss of children is a running maximum
        good = run(write_cohort(Path(tmp) / "good", args.rows, invalid=False))
    res = {"rows": args.rows, "file_mb": round(size_mb, 1), "invalid": invalid,
           "valid": good, "target_peak_mb": TARGET_MB,
           "ok": invalid["exit_code"] == 2 and invalid["peak_mb"] <= TARGET_MB}
    text = (f"# Rejecting an invalid {args.rows:,}-row observations file ({size_mb:.0f} MB)\n\n"
            "| file | exit code | seconds | peak memory (MB) | message lines |\n"
            "|---|---|---|---|---|\n"
            f"| all rows invalid | {invalid['exit_code']} | {invalid['seconds']} | "
            f"{invalid['peak_mb']:.0f} | {invalid['message_lines']} |\n"
            f"| all rows valid (for scale; peak ≥ the invalid run's) | {good['exit_code']} | "
            f"{good['seconds']} | {good['peak_mb']:.0f} | {good['message_lines']} |\n\n"
            f"Target: the invalid file rejected in ≤ {TARGET_MB} MB — "
            f"{'met' if res['ok'] else 'NOT met'}.\n\nSummary lines of the rejection:\n\n"
            + "\n".join(f"    {ln}" for ln in invalid["summary_lines"]) + "\n")
    atomic.write_text(OUT / "bad_file.json", json.dumps(res, indent=1))
    atomic.write_text(OUT / "bad_file.md", text)
    print(text)
    if not res["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
