"""The repository documents itself: every file it names is in it, nothing outside is cited."""

from __future__ import annotations

import re

from conftest import ROOT

# a repository path: a top-level folder of the repository, then a file with an extension
PATH = re.compile(r"(?<![\w/.-])((?:docs|data|benchmarks|tests|notebooks|migraine_bayes|\.ci)"
                  r"/[\w./-]*\w\.\w+)")
# team documents, not shipped
OUTSIDE = ("shared/", "DESIGN.md", "seed-guide", "seed guide", "STYLE.md")


def _texts() -> dict[str, str]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "migraine_bayes").rglob("*.py")),
             *sorted((ROOT / "migraine_bayes").rglob("*.json")),
             *sorted((ROOT / "notebooks").glob("*.ipynb")), ROOT / "Makefile", ROOT / "mkdocs.yml"]
    return {str(f.relative_to(ROOT)): f.read_text(encoding="utf-8") for f in files}


def test_every_repository_path_named_in_readme_docs_and_code_exists() -> None:
    def exists(path: str) -> bool:  # code may name a package resource relative to the package
        return (ROOT / path).exists() or (ROOT / "migraine_bayes" / path).exists()

    missing = sorted({(name, path) for name, text in _texts().items()
                      for path in PATH.findall(text) if not exists(path)})
    assert not missing, missing


def test_nothing_outside_the_repository_is_cited() -> None:
    cited = sorted({(name, word) for name, text in _texts().items() for word in OUTSIDE
                    if word in text})
    assert not cited, cited
