"""Screenshots of a report's parts in headless Chromium, and its weight (report HTML, figures).

Cuts four parts out of a report written by ``migraine-twin report`` — the summary box, the
validation table, the patients' forest plot and the forecast grid — renders each alone with the
report's own style in headless Chromium (the way a reader's browser shows it) and writes
``docs/images/report/<label>-<part>.png``. It also measures the HTML's size and the largest
figure file of its ``_figures`` folder (targets: ≤ 2 MB and ≤ 1 MB), into
``reports/benchmarks/report_<label>.json``.

    python benchmarks/report_screenshots.py REPORT.html --label after

``docs/report-screenshots.md`` shows the *before* (the report of ``main`` 072bdce, made from the
same twin and backtest with that commit's code) beside the *after*.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images" / "report"
OUT = ROOT / "reports" / "benchmarks"
WIDTH = 1100
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


def parts(text: str) -> dict[str, str]:
    """The four parts' markup, cut out of the report."""
    found = {}
    m = re.search(r'<section class="box" id="summary">.*?</section>', text, re.S)
    if m:
        found["summary"] = m.group(0)
    start = text.find('id="validation"')
    if start >= 0:
        m = re.search(r"<table.*?</table>", text[start:], re.S)
        if m:
            found["validation-table"] = m.group(0)
    for name in ("forest-patients", "forecasts"):
        m = re.search(rf'<figure id="fig\d+-{name}">.*?</figure>', text, re.S)
        if m:
            found[name] = m.group(0)
    return found


def shoot(markup: str, style: str, path: Path, browser: str) -> None:
    """Render ``markup`` alone in headless Chromium and save it, cropped to its content."""
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "part.html"
        page.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"><style>{style}'
                        f"</style></head><body>{markup}</body></html>", encoding="utf-8")
        shot = Path(tmp) / "shot.png"
        subprocess.run([browser, *FLAGS, f"--user-data-dir={tmp}/profile",
                        f"--screenshot={shot}", f"--window-size={WIDTH},4000",
                        page.as_uri()], check=True, capture_output=True, timeout=120)
        img = Image.open(shot).convert("RGB")
        ink = np.flatnonzero(np.asarray(img).min(axis=(1, 2)) < 250)
        bottom = int(ink.max()) + 16 if ink.size else img.height
        path.parent.mkdir(parents=True, exist_ok=True)
        img = img.crop((0, 0, img.width, min(bottom, img.height)))
        img.quantize(colors=128).save(path, optimize=True)  # screenshots: few colours


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", type=Path)
    ap.add_argument("--label", default="after")
    args = ap.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium not found (bash .ci/install-chromium)")
    text = args.html.read_text(encoding="utf-8")
    style = re.search(r"<style>(.*?)</style>", text, re.S).group(1)
    shots = {}
    for name, markup in parts(text).items():
        path = IMAGES / f"{args.label}-{name}.png"
        shoot(markup, style, path, browser)
        shots[name] = str(path.relative_to(ROOT))
    figures = args.html.with_name(f"{args.html.stem}_figures")
    sizes = {p.name: p.stat().st_size for p in figures.glob("fig*")} if figures.exists() else {}
    largest = max(sizes.items(), key=lambda kv: kv[1]) if sizes else ("", 0)
    result = {"label": args.label, "html_bytes": args.html.stat().st_size,
              "largest_figure": largest[0], "largest_figure_bytes": largest[1],
              "figures_bytes": sum(sizes.values()), "screenshots": shots}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"report_{args.label}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
