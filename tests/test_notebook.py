"""The worked notebook runs from top to bottom (small setting) and writes its report."""

from __future__ import annotations

import nbformat
from conftest import ROOT
from nbclient import NotebookClient

NOTEBOOK = ROOT / "notebooks" / "worked_analysis.ipynb"


def test_worked_notebook_executes(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MIGRAINE_BAYES_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MIGRAINE_BAYES_ROOT", str(ROOT))
    monkeypatch.setenv("MIGRAINE_BAYES_NOTEBOOK_OUT", str(tmp_path))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={
        "metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    assert (tmp_path / "report.html").stat().st_size > 100_000
    assert any("report:" in o.get("text", "") for o in nb.cells[-1].get("outputs", []))
