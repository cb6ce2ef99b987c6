"""Benchmark: the demo's report weighs at most half of what it did (issue 13), the HTML at most
2 MB and no figure file over 1 MB (issue 36).

The demo's ``report.html`` was 4,132,052 bytes before the report had small multiples (42
figures, one per patient and kind; commit 3af6917, the default demo). Reads the report that
``make demo`` wrote (or ``--report``), counts its figures and checks it against half of that,
beside the PNG and SVG copies written to ``report_figures/``. Writes
``reports/benchmarks/report_size.md`` and ``.json``; exits 1 above the target.

    python benchmarks/report_size.py [--report reports/demo/report.html]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from migraine_bayes.reports import figure_folder
from migraine_bayes.store import atomic

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "benchmarks"
BEFORE_BYTES = 4_132_052  # reports/demo/report.html at 3af6917, default demo
BEFORE_FIGURES = 42
MAX_HTML_BYTES = 2 * 1024 * 1024
MAX_FIGURE_BYTES = 1024 * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, default=ROOT / "reports" / "demo" / "report.html")
    args = parser.parse_args()
    text = args.report.read_text(encoding="utf-8")
    size = args.report.stat().st_size
    figures = len(re.findall(r'<img class="report-figure"', text))
    folder = figure_folder(args.report)
    exported = sorted(folder.iterdir()) if folder.is_dir() else []
    result = {"report_bytes": size, "before_bytes": BEFORE_BYTES, "ratio": size / BEFORE_BYTES,
              "target_ratio": 0.5, "figures": figures, "before_figures": BEFORE_FIGURES,
              "exported_png": sum(p.suffix == ".png" for p in exported),
              "exported_svg": sum(p.suffix == ".svg" for p in exported),
              "exported_bytes": sum(p.stat().st_size for p in exported)}
    figs = [p for p in exported if p.suffix in (".png", ".svg")]
    largest = max(figs, key=lambda p: p.stat().st_size) if figs else None
    result["largest_figure"] = largest.name if largest else None
    result["largest_figure_bytes"] = largest.stat().st_size if largest else 0
    ok = (result["ratio"] <= result["target_ratio"] and result["exported_svg"] == figures
          and size <= MAX_HTML_BYTES and result["largest_figure_bytes"] <= MAX_FIGURE_BYTES)
    lines = ["# Report size (the demo's report.html)", "",
             "| | bytes | figures |", "|---|---|---|",
             f"| before (3af6917) | {BEFORE_BYTES:,} | {BEFORE_FIGURES} |",
             f"| now | {size:,} | {figures} |", "",
             f"ratio {result['ratio']:.2f} (target ≤ 0.50): {'met' if ok else 'MISSED'}; "
             f"{result['exported_png']} PNG and {result['exported_svg']} SVG copies "
             f"({result['exported_bytes']:,} bytes) in {folder.name}/; largest figure file "
             f"{result['largest_figure']} {result['largest_figure_bytes']:,} bytes (target ≤ "
             f"{MAX_FIGURE_BYTES:,}); HTML target ≤ {MAX_HTML_BYTES:,} bytes"]
    atomic.write_text(OUT / "report_size.md", "\n".join(lines) + "\n")
    atomic.write_text(OUT / "report_size.json", json.dumps(result, indent=1))
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
