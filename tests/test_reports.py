"""The HTML report: every section's figures, self-contained, rendered by a real browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from migraine_bayes import api
from migraine_bayes.reports import patient_checks

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# counts figures that the browser decoded, once the page has loaded
PROBE = ("<script>window.addEventListener('load', () => { const imgs = [...document.images];"
         " document.title = 'figures:' + imgs.filter(i => i.complete && i.naturalWidth > 0)"
         ".length + '/' + imgs.length; });</script>")


@pytest.fixture(scope="module")
def report_files(small_backtest, tmp_path_factory):
    result, backtest_file = small_backtest
    folder = tmp_path_factory.mktemp("report")
    twin = next(iter(result.twins[0].values()))
    twin.save(folder / "twin")
    scenarios = api.applicable_scenarios(twin, api.DEMO_SCENARIOS)
    (folder / "scenarios.json").write_text(json.dumps(scenarios))
    api.simulate(folder / "twin", folder / "scenarios.json", horizon=30, draws=500,
                 out=folder / "simulation.json")
    html = api.report(folder / "twin", folder / "report.html", backtest=backtest_file,
                      simulation=folder / "simulation.json")
    return twin, html, len(scenarios)


def expected_figures(n_patients: int, n_hierarchical: bool) -> int:
    # trace, PPC per patient, gaps, LOO-PIT, population forest, forest per patient,
    # reliability, forecast series per patient, counterfactual per patient
    return 1 + n_patients + 2 + int(n_hierarchical) + n_patients + 1 + n_patients + n_patients


def test_report_holds_every_figure_and_table(report_files) -> None:
    twin, html, n_scenarios = report_files
    text = Path(html).read_text(encoding="utf-8")
    n = len(twin.patients)
    imgs = re.findall(r'<img class="report-figure"[^>]*src="data:image/png;base64,', text)
    assert len(imgs) == expected_figures(n, twin.meta["hierarchical"])
    for heading in ("Sampler diagnostics", "Posterior predictive checks",
                    "Trigger sensitivities", "Backtest", "Counterfactual interventions"):
        assert f"<h2>{heading}" in text
    assert "oracle" in text and "logistic" in text and "boosting" in text  # baseline table
    assert "src=\"http" not in text and "href=\"http" not in text  # self-contained
    assert n_scenarios >= 2


def test_loo_pit_of_a_fitted_twin_is_uniform(report_files) -> None:
    twin = report_files[0]
    pit = np.concatenate([patient_checks(twin, p, seed=i).pit
                          for i, p in enumerate(twin.patients)])
    # Kolmogorov–Smirnov distance to the uniform, at the 99% level
    grid = np.sort(pit)
    d = np.max(np.abs(np.arange(1, grid.size + 1) / grid.size - grid))
    assert d < 1.63 / np.sqrt(grid.size), d


def test_report_renders_in_headless_chromium(report_files, tmp_path) -> None:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: `make test` installs it (.ci/install-chromium)")
        pytest.skip("chromium not installed (run .ci/install-chromium)")
    twin, html, _ = report_files
    page = tmp_path / "probe.html"
    page.write_text(Path(html).read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"),
                    encoding="utf-8")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
           "--virtual-time-budget=20000", "--dump-dom", page.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True).stdout
    found = re.search(r"<title>figures:(\d+)/(\d+)</title>", dom)
    assert found, dom[:500]
    n = expected_figures(len(twin.patients), twin.meta["hierarchical"])
    assert (int(found.group(1)), int(found.group(2))) == (n, n)
