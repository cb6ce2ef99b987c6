"""The HTML report: every section's figures, self-contained, rendered by a real browser."""

from __future__ import annotations

import html as htmlmod
import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from conftest import COMMITTED

from migraine_bayes import api
from migraine_bayes.analysis.treatment_effects import treatment_effects
from migraine_bayes.errors import InputDataError
from migraine_bayes.reports import figure_folder, patient_checks, tripod
from migraine_bayes.reports.html import slug
from migraine_bayes.reports.report import SECTIONS
from migraine_bayes.store.targets import TargetError

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# once the page has loaded: counts the figures the browser decoded, follows every link of the
# table of contents (the hash must change and its target come to the top of the window), and
# lists the summary's presence and the TRIPOD+AI checklist's items, as JSON in <pre id=probe>
PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const decoded = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  const links = [...document.querySelectorAll('nav#toc a')].map(a => {
    const key = a.getAttribute('href').slice(1);
    a.click();
    const target = document.getElementById(key);
    const top = target ? target.getBoundingClientRect().top : null;
    const bottom = window.scrollY + window.innerHeight >= document.body.scrollHeight - 2;
    return {key, hash: location.hash, found: !!target,
            scrolled: target !== null && (Math.abs(top) < 2 || bottom)};
  });
  const summary = document.querySelector('#summary');
  const out = {decoded, images: imgs.length, links,
               summary: summary ? summary.innerText : null,
               first_h2: document.querySelector('h2').innerText,
               tripod: [...document.querySelectorAll('#tripod-checklist tr.tripod-item')]
                 .map(r => r.dataset.item)};
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


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


def expected_figures(twin) -> list[str]:
    """The figure names of a cohort report with a backtest and a simulation, in order."""
    treated = list(dict.fromkeys(treatment_effects(twin)["treatment"]))
    return (["trace", "ppc-monthly", "ppc-gaps", "loo-pit"]
            + ["forest-population"] * bool(twin.meta["hierarchical"])
            + ["forest-patients"] + [f"treatment-{slug(t)}" for t in treated]
            + ["reliability", "within-patient-c", "decision-curve", "forecasts", "scenarios"])


def test_report_opens_with_the_summary_and_holds_every_section(report_files) -> None:
    twin, html, n_scenarios = report_files
    text = Path(html).read_text(encoding="utf-8")
    ids = re.findall(r'<figure id="fig\d+-([a-z0-9-]+)"', text)
    assert ids == expected_figures(twin)
    imgs = re.findall(r'<img class="report-figure"[^>]*src="data:image/png;base64,', text)
    assert len(imgs) == len(ids)
    # the summary comes first, then the contents, then the sections in the contents' order
    order = [text.index(f'id="{key}"') for key in SECTIONS]
    assert order == sorted(order) and text.index('id="summary"') < text.index('id="toc"')
    summary = text[text.index('id="summary"'):text.index('id="toc"')]
    for words in ("AUC, forecasts walked forward", "within-patient C", "Brier skill",
                  "AUC of the best baseline", "twin − baseline",
                  "Calibration", "Top triggers per patient", "Recommended scenario",
                  f"{len(twin.patients)} patient(s)"):
        assert words in summary, words
    for pid in twin.patients:
        assert pid in summary
    assert "Triggers most often raising risk" in summary or "No trigger raises" in summary
    low = text.lower()
    assert "oracle" in low and "logistic" in low and "boosting" in low  # baseline table
    assert "src=\"http" not in text and "href=\"http" not in text  # self-contained
    assert n_scenarios >= 2


def test_every_figure_is_also_written_as_png_and_svg(report_files) -> None:
    twin, html, _ = report_files
    folder = figure_folder(html)
    names = expected_figures(twin)
    for k, name in enumerate(names, start=1):
        png, svg = folder / f"fig{k:02d}-{name}.png", folder / f"fig{k:02d}-{name}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        root = ElementTree.parse(svg).getroot()
        assert root.tag.endswith("svg"), svg
    assert len(list(folder.glob("fig*"))) == 2 * len(names)
    tables = sorted(folder.glob("tab*.csv"))  # the machine tables beside the printed ones
    assert tables and all(pd.read_csv(t).shape[1] >= 1 for t in tables if t.stat().st_size > 1)
    # they name patients: private to their owner, like the report itself
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    for path in [Path(html), *folder.iterdir()]:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_reliability_table_counts_the_days_of_each_bin(report_files, small_backtest) -> None:
    _, html, _ = report_files
    result, _ = small_backtest
    text = Path(html).read_text(encoding="utf-8")
    twin_days = int((result.predictions["model"] == "twin").sum())
    after = text[text.index("-reliability"):]
    table = after[after.index("<table"):after.index("</table>")]
    head = re.findall(r"<th>(.*?)</th>", table)
    cells = [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table,
                                                                         re.S)]
    bins = pd.DataFrame(cells, columns=head)[["Days", "Attacks"]].replace(
        ",", "", regex=True).astype(float)
    assert bins["Days"].sum() == twin_days
    assert bins["Attacks"].sum() == int(
        result.predictions.loc[result.predictions["model"] == "twin", "attack"].sum())


def test_loo_pit_of_a_fitted_twin_is_uniform(report_files) -> None:
    twin = report_files[0]
    pit = np.concatenate([patient_checks(twin, p, seed=i).pit
                          for i, p in enumerate(twin.patients)])
    # Kolmogorov–Smirnov distance to the uniform, at the 99% level
    grid = np.sort(pit)
    d = np.max(np.abs(np.arange(1, grid.size + 1) / grid.size - grid))
    assert d < 1.63 / np.sqrt(grid.size), d


def _render(html: Path, tmp_path: Path) -> dict:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: `make test` installs it (.ci/install-chromium)")
        pytest.skip("chromium not installed (run .ci/install-chromium)")
    page = tmp_path / "probe.html"
    page.write_text(Path(html).read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"),
                    encoding="utf-8")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
           "--window-size=1200,900", "--virtual-time-budget=20000", "--dump-dom",
           page.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, dom[:500]
    return json.loads(htmlmod.unescape(found.group(1)))


def test_report_renders_in_headless_chromium(report_files, tmp_path) -> None:
    twin, html, _ = report_files
    probe = _render(html, tmp_path)
    n = len(expected_figures(twin))
    assert (probe["decoded"], probe["images"]) == (n, n)
    assert probe["first_h2"] == "Summary" and "within-patient C" in probe["summary"]
    keys = [link["key"] for link in probe["links"]]
    assert keys == [k for k in SECTIONS if k != "summary"]
    for link in probe["links"]:
        assert link["found"] and link["hash"] == f"#{link['key']}" and link["scrolled"], link
    assert probe["tripod"] == [item for item, *_ in tripod.ITEMS]


def test_one_patient_report_is_short_and_complete(report_files, small_backtest, tmp_path
                                                 ) -> None:
    twin, html, _ = report_files
    pid = twin.patients[0]
    folder = Path(html).parent
    out = api.report(folder / "twin", tmp_path / "p.html", patient=pid,
                     backtest=small_backtest[1], simulation=folder / "simulation.json")
    text = out.read_text(encoding="utf-8")
    assert f"patient {pid}" in text and 'id="summary"' in text and 'id="toc"' in text
    assert "Top triggers per patient" in text and "Recommended scenario" in text
    others = [p for p in twin.patients if p != pid]
    assert not any(p in text for p in others)  # nobody else's data
    names = re.findall(r'<figure id="fig\d+-([a-z0-9-]+)"', text)
    assert names == ["forest", "ppc", "forecasts", f"scenarios-{slug(pid)}"]
    assert len(list(figure_folder(out).glob("*.svg"))) == len(names)
    probe = _render(out, tmp_path)
    assert probe["first_h2"] == "Summary" and all(
        link["found"] and link["scrolled"] for link in probe["links"])
    with pytest.raises(InputDataError, match="not in the twin"):
        api.report(folder / "twin", tmp_path / "q.html", patient="nobody")


def test_report_will_not_replace_a_figure_folder_it_did_not_write(report_files, tmp_path
                                                                  ) -> None:
    html = report_files[1]
    (tmp_path / "r_figures").mkdir()
    (tmp_path / "r_figures" / "mine.png").write_bytes(b"user's file")
    with pytest.raises(TargetError, match="r_figures exists"):
        api.report(Path(html).parent / "twin", tmp_path / "r.html")
    assert (tmp_path / "r_figures" / "mine.png").read_bytes() == b"user's file"


def test_n_of_1_report_finds_a_responders_treatment_effect(report_files) -> None:
    twin = report_files[0]
    effects = treatment_effects(twin)
    truth = json.loads((COMMITTED / "truth.json").read_text())
    courses = {(p["patient_id"], c["name"]): c for p in truth["patients"]
               for c in p["interventions"] if c["acts_through"] == "log_odds"}
    own = effects[effects["patient_id"] != "pooled"]
    assert len(own) and set(zip(own["patient_id"], own["treatment"], strict=True)) <= set(courses)
    for row in own.itertuples():
        course = courses[(row.patient_id, row.treatment)]
        assert row.start == course["start"] and row.kind == course["kind"]
        # the periods are the known diary days before and from the start
        panel = twin.panel.sel(patient=row.patient_id)
        known = panel["in_diary"].values & ~np.isnan(panel["onset"].values.astype(float))
        dates = pd.to_datetime(panel["date"].values)
        before = known & (dates < pd.Timestamp(course["start"]))
        assert row.days_before == before.sum()
        assert row.attacks_before == np.nansum(panel["onset"].values[before])
        if course["responder"]:  # a true responder: benefit found, truth inside the interval
            assert row.p_benefit >= 0.8, row
            assert row.rr_low <= np.exp(course["log_odds_ratio"]) <= row.rr_high, row
    pooled = effects[effects["patient_id"] == "pooled"].set_index("treatment")
    for name, rows in own.groupby("treatment"):
        assert pooled.loc[name, "patients"] == len(rows)
        assert pooled.loc[name, "days_after"] == rows["days_after"].sum()


def test_crude_rate_ratio_interval_is_the_exact_binomial_one() -> None:
    from scipy.stats import binomtest

    from migraine_bayes.analysis.treatment_effects import _crude

    for a_before, d_before, a_after, d_after in [(7, 111, 6, 194), (0, 50, 3, 60),
                                                 (12, 80, 0, 90), (30, 200, 18, 150)]:
        point, lo, hi = _crude(a_before, d_before, a_after, d_after)
        n = a_before + a_after
        ci = binomtest(a_after, n).proportion_ci(confidence_level=0.9, method="exact")
        def rr(q: float, odds: float = d_after / d_before) -> float:
            return np.inf if q >= 1 else q / (1 - q) / odds

        # the one-sided 95% bounds (a 90% two-sided interval)
        assert np.isclose(lo, rr(ci.low), rtol=1e-6) and np.isclose(hi, rr(ci.high), rtol=1e-6)
        if a_before:
            assert np.isclose(point, (a_after / d_after) / (a_before / d_before))


def test_calibration_verdict_reads_the_intervals() -> None:
    from migraine_bayes.reports.summary import calibration_verdict

    ok = {"citl_low": -0.2, "citl_high": 0.1, "cal_slope_low": 0.8, "cal_slope_high": 1.2,
          "observed_expected": 0.97, "cal_slope": 1.0}
    assert "no miscalibration shown" in calibration_verdict(ok)
    high = ok | {"citl_low": -0.6, "citl_high": -0.2, "cal_slope_low": 0.5,
                 "cal_slope_high": 0.8}
    text = calibration_verdict(high)
    assert "too high on average" in text and "too extreme" in text
    assert "not estimable" in calibration_verdict(ok | {"cal_slope_low": float("nan")})


def test_every_label_a_report_shows_comes_from_the_registry(report_files) -> None:
    """No internal identifier reaches the reader: text, headers, captions and table cells say
    "Sleep debt (h below usual)", never derived.sleep_debt, trigger.stress or @lag1."""
    _twin, html, _ = report_files
    text = Path(html).read_text(encoding="utf-8")
    visible = re.sub(r'src="data:image/png;base64,[^"]*"', "", text)
    for internal in ("derived.", "trigger.", "symptom.", "physiological.", "environmental.",
                     "temporal.", "@lag", "@over", "auc_low", "or_high", "p_positive",
                     "patient_id"):
        assert internal not in visible, (internal, visible[visible.find(internal) - 200:
                                                            visible.find(internal) + 100])
    assert "Sleep debt" in visible and "Odds ratio" in visible
    assert re.search(r"0\.\d{3} \(0\.\d{3}–0\.\d{3}\)", visible)  # AUC (interval), 3 decimals
    # every recorded variable and treatment: used by a model, or listed as unused with why
    assert "What each recorded variable and treatment went into" in visible
    # printed tables are at most 8 columns wide (wider ones split)
    for table in re.findall(r"<table.*?</table>", visible, re.S):
        header = re.search(r"<thead>(.*?)</thead>", table, re.S)
        assert header is None or header.group(1).count("<th") <= 8


@pytest.mark.filterwarnings("ignore::migraine_bayes.errors.InferenceWarning")  # 40 days
def test_small_data_get_cautions_instead_of_trigger_claims(tmp_path) -> None:
    """2 patients × 20 days: no trigger is named and no recommendation made; the reason is said;
    the methods do not describe a backtest that was not run."""
    from migraine_bayes.model.inference import SamplerSettings
    from migraine_bayes.synthetic.cohort import simulate_cohort
    from migraine_bayes.twin.core import DigitalTwin

    sc = simulate_cohort(2, 20, seed=7, attacks_per_month_median=14.0)
    twin = DigitalTwin.fit_cohort(sc.cohort, settings=SamplerSettings(
        draws=100, tune=200, chains=2))
    twin.save(tmp_path / "twin")
    out = api.report(tmp_path / "twin", tmp_path / "r.html")
    text = out.read_text(encoding="utf-8")
    summary = text[text.index('id="summary"'):text.index('id="toc"')]
    assert "withheld" in summary and "below the stated minimum" in summary
    assert "Small data" in summary
    assert " OR " not in summary  # no trigger claim on the first screen
    assert "no backtest was run" in text and "walked forward" not in summary


def test_gap_check_takes_replicate_diaries_without_two_attacks() -> None:
    """A replicated diary with fewer than two attacks has no gap: it is left out of the band
    (it made the density 0/0 and the small-data report fail), never a warning or a crash."""
    import warnings

    from migraine_bayes.reports.figures import ppc_intervals

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ppc_intervals([np.array([0, 1, 0, 0, 1.0])], [np.array([[0, 0, 0, 0, 1.0],
                                                                [1, 0, 1, 0, 0]])])
        ppc_intervals([np.array([0, 0, 0, 0, 1.0])], [np.zeros((2, 5))])
