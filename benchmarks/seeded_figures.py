"""Seeded figures that a refactor must keep, for a before/after table.

Runs, with fixed seeds: the committed cohort's backtest (observed information, one origin), a
one-patient twin's forecast and the simulation of ``data/scenarios.json``, and a small SBC.
Writes ``reports/benchmarks/seeded_figures.json``. Run it on two checkouts (a worktree of the
old commit: ``PYTHONPATH=<worktree> python benchmarks/seeded_figures.py``) and compare the files.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "reports" / "benchmarks"))
    parser.add_argument("--sbc-replicates", type=int, default=10)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from migraine_bayes import api

    out = Path(args.out)
    work = out / "seeded_figures"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    bt = api.backtest(ROOT / "data" / "synthetic", work / "bt.csv", "2025-11-05",
                      information="observed", refit_every=61, seed=0, force=True)
    twin = work / "twin"
    api.fit(ROOT / "data" / "synthetic", twin, patients=["syn125-005"], seed=0, force=True)
    forecast = api.forecast(twin, horizon=3)
    sim = api.simulate(twin, ROOT / "data" / "scenarios.json", horizon=30, seed=0)
    sbc = api.sbc(work / "sbc", replicates=args.sbc_replicates, seed=0)
    figures = {
        "backtest": bt.scores[["model", "auc", "brier", "ece"]].round(6).to_dict("records"),
        "forecast": forecast[["p_attack", "p_low", "p_high"]].round(8).to_dict("records"),
        "simulate": {s["name"]: round(s["expected_attacks"]["mean"], 6)
                     for s in sim["patients"][0]["scenarios"]},
        "sbc_p_values": {k: round(float(v), 6) for k, v in sbc.p_values.items()},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "seeded_figures.json").write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
