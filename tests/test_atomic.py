from __future__ import annotations

from pathlib import Path

import pytest

from migraine_bayes.store import atomic


class Boom(Exception):
    pass


def test_crash_while_writing_leaves_old_file(tmp_path: Path) -> None:
    target = tmp_path / "twin.json"
    atomic.write_text(target, "old")
    with pytest.raises(Boom), atomic.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise Boom
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["twin.json"]


def test_crash_while_writing_a_directory_leaves_old_directory(tmp_path: Path) -> None:
    target = tmp_path / "twin"
    with atomic.atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("v1")
    with pytest.raises(Boom), atomic.atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("v2-partial")
        raise Boom
    assert (target / "a.txt").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["twin"]
    with atomic.atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("v2")
    assert (target / "a.txt").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["twin"]
