"""The package's layers, counted from its own imports (docs/architecture.md).

The layer contract lives in ``pyproject.toml`` (``[tool.importlinter]``) and is checked by
``lint-imports`` in ``make test``; these tests check the checker too: a planted upward import
breaks it, a planted cycle is found.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "migraine_bayes"
FRONT_ENDS = ("migraine_bayes.cli", "migraine_bayes.api", "migraine_bayes.service")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of modules (more than one module): the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def lint_imports(cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_no_import_cycle_counting_imports_inside_functions() -> None:
    """grimp reads every import, those inside functions included: none closes a cycle, so no
    import sits inside a function to dodge one."""
    assert cycles(grimp.build_graph("migraine_bayes")) == []


def test_the_cycle_count_finds_a_planted_cycle() -> None:
    graph = grimp.build_graph("migraine_bayes")
    graph.add_import(importer="migraine_bayes.store.atomic", imported="migraine_bayes.api")
    assert any("migraine_bayes.api" in c and "migraine_bayes.store.atomic" in c
               for c in cycles(graph))


def test_the_layer_contract_is_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_a_planted_upward_import_breaks_the_layer_contract(tmp_path: Path) -> None:
    """The storage layer importing the API (inside a function, where a cycle would hide)."""
    shutil.copytree(PACKAGE, tmp_path / "migraine_bayes",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    planted = tmp_path / "migraine_bayes" / "store" / "atomic.py"
    planted.write_text(planted.read_text() + "\n\ndef _planted():\n"
                       "    from migraine_bayes import api\n\n    return api\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = lint_imports(tmp_path, env)
    assert result.returncode != 0
    assert "migraine_bayes.store.atomic -> migraine_bayes.api" in result.stdout


def test_imports_inside_functions_only_in_the_front_ends() -> None:
    """A front end may defer a heavy import until a command needs it (start-up time); below
    the front ends every import of the package stands at the top of its module."""
    inside = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if module.startswith(FRONT_ENDS):
            continue
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        inside += [f"{module}:{node.lineno}" for node in ast.walk(tree)
                   if isinstance(node, ast.ImportFrom) and id(node) not in top
                   and (node.module or "").startswith("migraine_bayes")]
    assert inside == []


RAW = re.compile(r"\bmeta\s*(\[|\.get\(|\.setdefault\(|\.pop\(|\.update\(|\|=)")


@pytest.mark.parametrize("line", ['meta["outcome"]', "twin.meta.get('fitting')",
                                  "meta |= {}", 'old.meta ["version"]'])
def test_the_raw_access_pattern_finds_what_it_should(line: str) -> None:
    assert RAW.search(line)


def test_twin_json_is_read_only_through_its_typed_reader() -> None:
    """Only :mod:`migraine_bayes.twin.record` indexes the content of ``twin.json``; every
    other module asks its :class:`TwinRecord` (typed fields, checked on read)."""
    reader = PACKAGE / "twin" / "record.py"
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path in sorted(PACKAGE.rglob("*.py")) if path != reader
             for n, line in enumerate(path.read_text().splitlines(), start=1)
             if RAW.search(line)]
    assert found == []
