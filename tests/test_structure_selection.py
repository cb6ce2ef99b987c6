"""``fit`` chooses the twin's structure from the data by default (issue 34): every candidate
fitted (in parallel processes), compared by PSIS-LOO, the simplest within noise kept, its table
in ``twin.json``, in ``fit``'s output and in the report."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from migraine_bayes import api
from migraine_bayes.cli import app
from migraine_bayes.cohort.io import load_cohort
from migraine_bayes.model.inference import InferenceWarning
from migraine_bayes.reports.html import Document
from migraine_bayes.reports.report import _selection_table
from migraine_bayes.synthetic.cohort import simulate_cohort
from migraine_bayes.twin.core import DigitalTwin
from migraine_bayes.twin.selection import CANDIDATES, candidates, fit_candidate, loo

runner = CliRunner()


@pytest.mark.slow  # ~50 s of compiling four models: CI runs it right after make test
def test_fit_chooses_the_structure_by_default(tmp_path: Path) -> None:
    cohort = simulate_cohort(1, 150, seed=34).write(tmp_path / "c")
    twin_dir = tmp_path / "twin"
    res = runner.invoke(app, ["fit", str(cohort), "--out", str(twin_dir), "--draws", "300",
                              "--chains", "2", "--seed", "1"])
    assert res.exit_code == 0, res.output
    assert "structure chosen by PSIS-LOO: " in res.stdout
    twin = DigitalTwin.load(twin_dir)
    sel = twin.record.selection
    rows = {r["structure"]: r for r in sel["table"]}
    assert list(rows) == [c.name for c in candidates(cohort=False)]  # no deviations for one
    for row in rows.values():
        assert f"{row['structure']:<22} ELPD" in res.stdout
        assert row["elpd_diff"] >= 0 and row["se_diff"] >= 0 and isinstance(row["checks_ok"], bool)
    assert min(r["elpd_diff"] for r in rows.values()) == 0
    kept = {c.name: c for c in CANDIDATES}[sel["chosen"]]
    assert twin.spec.options == kept.options  # the saved twin is the kept structure
    best = next(name for name, r in rows.items() if r["elpd_diff"] == 0)
    assert best == sel["chosen"] or f"the best ({best})" in sel["reason"]
    # the kept one, and only it, was validated (the candidates are fitted without)
    assert twin.record.validation is not None and "brier" in twin.record.validation
    # the report's methods hold the table (with its CSV for papers)
    doc = Document("t", tmp_path / "figures")
    _selection_table(doc, twin)
    text = "".join(doc.parts)
    assert "Structure selection (PSIS-LOO" in text and "ELPD below the best" in text
    assert f"{sel['chosen']} (kept)" in text
    assert list((tmp_path / "figures").glob("tab*-structure-selection.csv"))
    # a candidate fitted in another process is the same fit as run here alone (same seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferenceWarning)
        here = fit_candidate(load_cohort(cohort), twin.patients, "onset",
                             api.sampler_settings(False, seed=1, draws=300, chains=2), False,
                             {c.name: c for c in CANDIDATES}[sel["chosen"]])
    np.testing.assert_allclose(float(loo(here).elpd_loo), rows[sel["chosen"]]["elpd_loo"],
                               atol=1e-3)


@pytest.mark.slow  # five candidate cohort fits in two processes beside CI's two test workers
# took over 20 minutes there: make validate runs it (pytest -m slow), CI does not
def test_backtest_chooses_at_the_first_origin_and_refits_keep_it(tmp_path: Path) -> None:
    """``backtest``'s default for a cohort twin: the first origin's fit chooses the structure
    by PSIS-LOO, every later refit keeps it, and the meta file holds the table."""
    cohort = simulate_cohort(3, 150, seed=341).write(tmp_path / "c")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferenceWarning)
        result = api.backtest(cohort, tmp_path / "bt.csv", "2025-04-10", draws=200, chains=2,
                              refit_every=30, information="observed")
    first, *later = [next(iter(f.values())) for f in result.twins]
    assert later and first.record.selection["table"]
    for twin in later:
        assert twin.spec.options == first.spec.options
        assert twin.spec.deviations == first.spec.deviations
    meta = api.read_backtest(tmp_path / "bt.csv")["meta"]
    assert meta["structure"] == "auto"
    assert meta["selection"]["chosen"] == first.record.selection["chosen"]
