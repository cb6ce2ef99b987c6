"""Every CLI command on the committed cohort (small settings), and its failure modes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import COMMITTED, small_tables, write_tables
from typer.testing import CliRunner

from migraine_bayes.cli import app

runner = CliRunner()


def test_validate_data_ok_on_committed_cohort() -> None:
    res = runner.invoke(app, ["validate-data", str(COMMITTED)])
    assert res.exit_code == 0, res.output
    assert "ok: 12 patients" in res.output


def test_validate_data_lists_problems_with_exit_2(tmp_path: Path) -> None:
    t = small_tables()
    t["observations"].loc[2, "value"] = "900"
    t["observations"].loc[2, "variable"] = "resting_hr"
    t["attacks"].loc[0, "onset"] = "yesterday"
    res = runner.invoke(app, ["validate-data", str(write_tables(tmp_path / "c", t))])
    assert res.exit_code == 2
    assert "observations.csv, row 3 (line 4), column 'value'" in res.output
    assert "attacks.csv, row 1 (line 2), column 'onset'" in res.output
    assert "Traceback" not in res.output


def test_generate_then_validate(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    res = runner.invoke(app, ["generate", str(out), "--patients", "2", "--days", "60",
                              "--seed", "1", "--csv"])
    assert res.exit_code == 0, res.output
    assert (out / "observations.csv").exists() and (out / "truth.json").exists()
    assert runner.invoke(app, ["validate-data", str(out)]).exit_code == 0


def test_bad_usage_exit_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["generate", str(tmp_path), "--patients", "0"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["validate-data"])
    assert res.exit_code == 2


@pytest.mark.slow  # ~80 s; CI runs the full `make demo` through the console script right after
def test_console_script_demo_runs_the_whole_workflow(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("migraine-twin")
    out = tmp_path / "demo"
    res = subprocess.run([str(exe), "demo", "--out", str(out), "--patients", "3", "--days",
                          "200"], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    assert "attacks_per_month" in res.stdout
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("syn")]
    assert len(lines) == 3
    assert f"report written to {out / 'report.html'}" in res.stdout
    for name in ("cohort/truth.json", "twin/posterior.nc", "backtest.csv",
                 "backtest.scores.csv", "simulation.json", "report.html"):
        assert (out / name).is_file(), name
    assert "fitting" in res.stderr  # progress lines
    assert "Traceback" not in res.stderr


def test_console_script_bad_data_no_traceback(tmp_path: Path) -> None:
    folder = write_tables(tmp_path / "c", small_tables())
    (folder / "attacks.csv").write_text("")
    exe = Path(sys.executable).with_name("migraine-twin")
    res = subprocess.run([str(exe), "validate-data", str(folder)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2
    assert "attacks.csv: file is empty" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert pd.read_csv(folder / "observations.csv").shape[0] == 60  # input untouched


def test_fit_then_forecast_csv_and_json(tmp_path: Path) -> None:
    twin = tmp_path / "twin"
    res = runner.invoke(app, ["fit", str(COMMITTED), "--patients", "syn125-005", "--out",
                              str(twin), "--draws", "500", "--seed", "2", "--structure",
                              "fixed"])
    assert res.exit_code == 0, res.output
    assert "max R-hat" in res.output and (twin / "posterior.nc").exists()
    # what the data went into, and every recorded item no model uses, with the reason
    assert "data used:" in res.output and "treatment(s)" in res.output
    res = runner.invoke(app, ["forecast", str(twin), "--horizon", "2"])
    assert res.exit_code == 0, res.output
    assert "data are written unencrypted" in res.stderr  # no key: said, on stderr only
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith("patient_id,date,issued_at,p_attack,p_low,p_high,top_factors")
    assert len(lines) == 3
    out = tmp_path / "f.jsonl"
    res = runner.invoke(app, ["forecast", str(twin), "--json", "--out", str(out),
                              "--cohort", str(COMMITTED), "--date", "2025-12-01"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["date"].startswith("2025-12-01") and 0 < rows[0]["p_attack"] < 1
    # the next attack's course, and the forecast given tonight's prodrome
    assert 0 < rows[0]["duration_h_low"] < rows[0]["duration_h_median"] < rows[0][
        "duration_h_high"] and 0 <= rows[0]["p_aura"] <= 1 and 0 <= rows[0]["severity_mean"] <= 3
    plain = pd.read_csv(io.StringIO(runner.invoke(app, ["forecast", str(twin),
                                                        "--prodrome", ""]).stdout))
    res = runner.invoke(app, ["forecast", str(twin), "--prodrome", "fatigue,yawning"])
    assert res.exit_code == 0, res.output
    warned = pd.read_csv(io.StringIO(res.stdout))
    assert warned["p_attack"].iloc[0] > plain["p_attack"].iloc[0]
    res = runner.invoke(app, ["forecast", str(twin), "--prodrome", "headache"])
    assert res.exit_code == 2 and "not a premonitory symptom" in res.output
    # tomorrow's measured state
    state = tmp_path / "state.csv"
    res = runner.invoke(app, ["predict-state", str(twin), "--out", str(state)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(state)
    assert list(table.columns) == ["patient_id", "date", "feature", "mean", "low", "high"]
    assert "trigger.stress" in set(table["feature"]) and (table["low"] <= table["high"]).all()


def test_fit_strict_exits_3_when_checks_fail(tmp_path: Path) -> None:
    res = runner.invoke(app, ["fit", str(COMMITTED), "--patients", "syn125-005", "--out",
                              str(tmp_path / "t"), "--draws", "50", "--chains", "2", "--strict",
                              "--structure", "fixed"])
    assert res.exit_code == 3, res.output
    assert "inference checks failed" in res.output


def test_fit_and_forecast_bad_arguments(tmp_path: Path) -> None:
    res = runner.invoke(app, ["fit", str(COMMITTED), "--patients", "nobody", "--out",
                              str(tmp_path / "t")])
    assert res.exit_code == 2 and "unknown patient ids ['nobody']" in res.output
    res = runner.invoke(app, ["forecast", str(tmp_path)])
    assert res.exit_code == 2 and "not a twin directory" in res.output
    res = runner.invoke(app, ["fit", str(COMMITTED), "--out", str(tmp_path / "t"),
                              "--outcome", "migraine"])
    assert res.exit_code == 2


def test_backtest_then_report(tmp_path: Path) -> None:
    twin = tmp_path / "twin"
    res = runner.invoke(app, ["fit", str(COMMITTED), "--patients", "syn125-005", "--out",
                              str(twin), "--draws", "500", "--seed", "2", "--structure",
                              "fixed"])
    assert res.exit_code == 0, res.output
    bt = tmp_path / "bt.csv"
    res = runner.invoke(app, ["backtest", str(COMMITTED), "--train-until", "2025-11-05",
                              "--patients", "syn125-005", "--out", str(bt), "--seed", "3",
                              "--refit-every", "61"])
    assert res.exit_code == 0, res.output
    assert "twin" in res.output and "oracle" in res.output
    table = pd.read_csv(bt)
    assert len(table) == 61 and set(table["patient_id"]) == {"syn125-005"}
    assert (tmp_path / "bt.scores.csv").is_file()
    validation = pd.read_csv(tmp_path / "bt.validation.csv").set_index("model")
    assert {"twin", "base_rate"} <= set(validation.index)
    assert (pd.read_csv(tmp_path / "bt.decision_curve.csv")["alarm_no_one"] == 0).all()
    assert "history" in set(pd.read_csv(tmp_path / "bt.by_subgroup.csv")["subgroup"])
    html = tmp_path / "r.html"
    res = runner.invoke(app, ["report", str(twin), "--out", str(html), "--backtest", str(bt)])
    assert res.exit_code == 0, res.output
    text = html.read_text()
    assert html.stat().st_size > 100_000 and 'id="validation"' in text
    assert "TRIPOD+AI measures" in text and "Decision curve" in text
    assert "writing the report" in res.stderr  # plain progress lines off a terminal
    assert (tmp_path / "r_figures" / "fig01-trace.svg").is_file()
    one = tmp_path / "p.html"
    res = runner.invoke(app, ["report", str(twin), "--out", str(one), "--backtest", str(bt),
                              "--patient", "syn125-005", "--quiet"])
    assert res.exit_code == 0, res.output
    assert res.stderr == "" and "patient syn125-005" in one.read_text()
    res = runner.invoke(app, ["report", str(twin), "--out", str(tmp_path / "x.html"),
                              "--patient", "syn125-999"])
    assert res.exit_code == 2 and "'syn125-999' is not in the twin" in res.output


def test_backtest_and_report_bad_arguments(tmp_path: Path) -> None:
    res = runner.invoke(app, ["backtest", str(COMMITTED), "--train-until", "2026-03-01",
                              "--out", str(tmp_path / "b.csv")])
    assert res.exit_code == 2 and "nothing to backtest" in res.output
    res = runner.invoke(app, ["backtest", str(COMMITTED), "--train-until", "2024-12-01",
                              "--out", str(tmp_path / "b.csv")])
    assert res.exit_code == 2 and "no diary day up to 2024-12-01" in res.output
    res = runner.invoke(app, ["backtest", str(COMMITTED), "--train-until", "2025-11-05",
                              "--out", str(tmp_path / "b.csv"), "--refit-every", "0"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["backtest", str(COMMITTED), "--train-until", "2025-11-05",
                              "--out", str(tmp_path / "b.csv"), "--information", "psychic"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["backtest", str(COMMITTED), "--train-until", "5 Nov",
                              "--out", str(tmp_path / "b.csv")])
    assert res.exit_code == 2 and "YYYY-MM-DD" in res.output
    res = runner.invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 2 and "not a twin directory" in res.output
    assert not (tmp_path / "b.csv").exists()


def test_cli_sbc_small(tmp_path: Path) -> None:
    res = runner.invoke(app, ["sbc", "--out", str(tmp_path), "--replicates", "5", "--seed", "1",
                              "--cohort", str(COMMITTED)])
    assert res.exit_code == 0, res.output
    assert "uniformity p =" in res.output
    assert (tmp_path / "sbc_ranks.png").stat().st_size > 0
    assert len(pd.read_csv(tmp_path / "sbc_ranks.csv")) == 5


@pytest.mark.filterwarnings("ignore::migraine_bayes.model.inference.InferenceWarning")
def test_fit_with_lags_shapes_and_interactions_says_what_it_learned(tmp_path: Path) -> None:
    """One fit with every learned structure: a distributed lag, learned dose-responses and
    interactions, printed by ``fit``, saved with the spec and read back by the sensitivity
    tables (the small cohort, with sleep that varies: two graded triggers make a pair)."""
    from migraine_bayes.analysis.sensitivity import (
        dose_response,
        interactions,
        lag_weights,
        learned_shapes,
    )
    from migraine_bayes.model import FeatureOptions
    from migraine_bayes.twin.core import DigitalTwin

    tables = small_tables()
    obs = tables["observations"]
    sleep = obs["variable"] == "sleep_duration"
    obs.loc[sleep, "value"] = [f"{6.0 + 0.5 * (i % 5):.1f}" for i in range(int(sleep.sum()))]
    cohort = write_tables(tmp_path / "cohort", tables)
    twin = tmp_path / "twin"
    res = runner.invoke(app, ["fit", str(cohort), "--out", str(twin), "--draws",
                              "100", "--chains", "2", "--lags", "1,2", "--shapes", "learned",
                              "--interactions"])
    assert res.exit_code == 0, res.output
    assert "distributed lag over [0, 1, 2] days" in res.output
    assert "learned dose-response (population): " in res.output
    assert "pairs, horseshoe)" in res.output
    loaded = DigitalTwin.load(twin)  # the spec (lagged features) round-trips its hash
    assert loaded.spec.options == FeatureOptions((1, 2), "learned", True)
    shapes = learned_shapes(loaded).set_index("feature")
    assert "trigger.stress" in shapes.index  # hinges at 6 and 7 points
    row = shapes.loc["trigger.stress"]
    assert row["threshold_low"] <= row["threshold"] <= row["threshold_high"]
    assert 0 <= row["p_knee"] <= 1 and row["knee"] > 0
    curve = dose_response(loaded, loaded.patients[0], "trigger.stress", points=9)
    assert curve.attrs["knee"] == row["knee"] and (curve["or_low"] <= curve["or_high"]).all()
    pairs = interactions(loaded)
    assert "trigger.sleep_duration:trigger.stress" in set(pairs["pair"])
    assert ((pairs["or_low"] <= pairs["odds_ratio"]) & (pairs["odds_ratio"] <= pairs["or_high"])
            ).all()
    table = lag_weights(loaded)
    assert set(table["lag"]) == {0, 1, 2} and "trigger.stress" in set(table["trigger"])
    sums = table.groupby("trigger")["weight"].sum()  # medians of a simplex: near 1
    assert ((sums > 0.8) & (sums < 1.2)).all(), sums
    assert (table["weight_low"] <= table["weight"]).all()
    assert (table["weight"] <= table["weight_high"]).all()
    res = runner.invoke(app, ["forecast", str(twin)])
    assert res.exit_code == 0, res.output


def test_structure_auto_refuses_flags_it_would_choose(small_cohort_dir, tmp_path) -> None:
    """``fit --structure auto`` chooses lags, shapes, interactions and deviations itself: given
    with them (or an unknown structure) it stops before any fit, naming the clash."""
    for extra in (["--structure", "auto", "--lags", "1,2"], ["--structure", "maybe"]):
        res = runner.invoke(app, ["fit", str(small_cohort_dir), "--out", str(tmp_path / "t"),
                                  *extra])
        assert res.exit_code == 2, res.output
        assert ("chooses the lags" in res.output) or ("fixed or auto" in res.output)
        assert not (tmp_path / "t").exists()
    res = runner.invoke(app, ["backtest", str(COMMITTED), "--train-until", "2025-11-05",
                              "--out", str(tmp_path / "b.csv"), "--separate", "--structure",
                              "auto"])
    assert res.exit_code == 2 and "not with --separate" in res.output
    assert not (tmp_path / "b.csv").exists()


def test_help_imports_nothing_heavy() -> None:
    """``--help`` answers at once: the command line imports PyMC, ArviZ, pandas and xarray only
    when a command runs (the timing itself is benchmarks/help_speed.py's)."""
    code = ("import sys, migraine_bayes.cli\n"
            "heavy = sorted(m for m in ('pymc', 'pytensor', 'arviz', 'pandas', 'xarray', "
            "'scipy', 'matplotlib') if m in sys.modules)\n"
            "print(','.join(heavy))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert res.stdout.strip() == ""
    exe = Path(sys.executable).with_name("migraine-twin")
    res = subprocess.run([str(exe), "fit", "--help"], capture_output=True, text=True,
                         check=True, env={**__import__("os").environ, "COLUMNS": "80"})
    assert "no encryption key" not in res.stdout + res.stderr  # said when data are written
    assert "<bool>" not in res.stdout and "--draws N" in res.stdout
    assert "default: 1000 for one patient" in res.stdout
    assert "headache_day" in res.stdout and "paper diary" in res.stdout


def test_unencrypted_note_when_a_writer_runs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MIGRAINE_BAYES_KEY", raising=False)
    res = runner.invoke(app, ["fit", str(tmp_path / "none"), "--out", str(tmp_path / "t")])
    assert "no encryption key" in res.output
    res = runner.invoke(app, ["validate-data", str(tmp_path / "none")])
    assert "no encryption key" not in res.output  # reads only


def test_file_for_a_folder_and_a_misspelt_variable_say_so(tmp_path: Path) -> None:
    t = small_tables()
    cohort = write_tables(tmp_path / "c", t)
    res = runner.invoke(app, ["validate-data", str(cohort / "observations.csv")])
    assert res.exit_code == 2
    assert "is a file; a cohort is a folder" in res.output
    res = runner.invoke(app, ["report", str(cohort / "observations.csv"), "--out",
                              str(tmp_path / "r.html")])
    assert res.exit_code == 2 and "is a file; a twin is the folder" in res.output
    t["observations"].loc[2, "variable"] = "sleep_duraton"
    res = runner.invoke(app, ["validate-data", str(write_tables(tmp_path / "d", t))])
    assert res.exit_code == 2
    assert "did you mean 'sleep_duration'" in res.output
