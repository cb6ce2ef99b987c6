"""Benchmark: how fast the command line answers ``--help`` (target: median of 5 ≤ 1 s each).

Times ``migraine-twin --help`` and ``migraine-twin COMMAND --help`` for every command, each in a
fresh process, ``--repeats`` times (median reported), and beside them, in the same run, a fresh
process that imports :mod:`migraine_bayes.api` — what every ``--help`` cost before the command
line imported PyMC, pandas and ArviZ only where a command needs them. Writes
``reports/benchmarks/help.md`` and ``.json``.

    python benchmarks/help_speed.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from migraine_bayes.store import atomic

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "benchmarks"
TARGET_S = 1.0
CLI = str(Path(sys.executable).with_name("migraine-twin"))


def seconds(argv: list[str]) -> float:
    """Wall time of one fresh process (it must succeed)."""
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - t0


def commands() -> list[str]:
    """Every command of the CLI, read from its own help (sub-apps included as one)."""
    from typer.main import get_command

    from migraine_bayes.cli import app

    return sorted(get_command(app).commands)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cases = {"migraine-twin --help": [CLI, "--help"]}
    cases |= {f"migraine-twin {c} --help": [CLI, c, "--help"] for c in commands()}
    old_case = "python -c 'import migraine_bayes.api' (the old --help's imports)"
    cases[old_case] = [sys.executable, "-c", "import migraine_bayes.api"]
    medians: dict[str, float] = {}
    for _ in range(args.repeats):  # interleaved: a load spike hits every case alike
        for name, argv in cases.items():
            medians.setdefault(name, [])  # type: ignore[arg-type]
            medians[name].append(seconds(argv))  # type: ignore[union-attr]
    medians = {k: statistics.median(v) for k, v in medians.items()}  # type: ignore[arg-type]
    helps = {k: v for k, v in medians.items() if k.endswith("--help")}
    old = medians[old_case]  # not any name with "import": `migraine-twin import` is a command
    worst = max(helps.values())
    rows = [f"| `{k}` | {v:.2f} |" for k, v in medians.items()]
    text = "\n".join([
        "# How fast the command line answers `--help`",
        "",
        f"Median of {args.repeats} fresh processes each, interleaved, in one run "
        f"(`python benchmarks/help_speed.py --repeats {args.repeats}`). Target: every `--help` "
        f"≤ {TARGET_S:.0f} s.",
        "",
        "| command | seconds (median) |",
        "|---|---|",
        *rows,
        "",
        f"Slowest `--help`: **{worst:.2f} s** ({'meets' if worst <= TARGET_S else 'misses'} the "
        f"target); importing the API as every `--help` did before: {old:.2f} s "
        f"({old / worst:.1f}× the slowest `--help` now).",
        "",
    ])
    OUT.mkdir(parents=True, exist_ok=True)
    atomic.write_text(OUT / "help.md", text)
    atomic.write_text(OUT / "help.json", json.dumps(
        {"repeats": args.repeats, "median_s": medians, "worst_help_s": worst,
         "old_import_s": old, "target_s": TARGET_S}, indent=2))
    print(text)


if __name__ == "__main__":
    main()
