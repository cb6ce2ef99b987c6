"""Where a command may write: nothing the user did not ask to replace, without ``--force``.

Never another patient's twin, a cohort file or a folder of the user's.

What a fit does with its ``--out`` (a new twin, a new version of the same patients' twin, or
with ``--force`` a replacement that keeps the old twin beside it) is decided by
:func:`migraine_bayes.twin.store.twin_target`, which reads the twin there.
:func:`check_output_file` guards the single files of ``forecast``/``simulate``/``drift``/
``backtest``/``report``; :func:`check_folder_target` the folder of ``generate``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from pathlib import Path

from migraine_bayes.errors import MigraineBayesError
from migraine_bayes.store.locking import real_path

COHORT_FILES = frozenset(f"{stem}{suffix}" for stem in
                         ("variables", "patients", "observations", "attacks", "treatments")
                         for suffix in (".csv", ".parquet")) | {"truth.json"}


class TargetError(MigraineBayesError, ValueError):
    """A write would replace something the user did not ask to replace."""


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def set_aside(path: Path) -> Path:
    """Rename ``path`` to ``<name>.replaced-<UTC time>`` beside it (nothing is deleted)."""
    aside = path.with_name(f"{path.name}.replaced-{_stamp()}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.replaced-{_stamp()}-{n}")
    os.replace(path, aside)
    return aside


def is_twin(path: Path) -> bool:
    """True for a directory holding a saved twin."""
    return (path / "twin.json").is_file()


def is_cohort(path: Path) -> bool:
    """True for a folder holding a cohort's tables."""
    return any((path / f"{stem}{s}").is_file() for stem in ("observations", "attacks")
               for s in (".csv", ".parquet"))


def check_folder_target(out: str | os.PathLike, force: bool) -> None:
    """A folder about to be replaced as a whole (``generate``): empty, absent or ``force``."""
    path = Path(out)
    if path.is_file():
        raise TargetError(f"{out} is a file, not a folder")
    if path.is_dir() and any(path.iterdir()) and not force:
        kind = ("a twin" if is_twin(path) else "a cohort" if is_cohort(path)
                else "a non-empty folder")
        raise TargetError(f"{out} holds {kind}; writing there would delete it — choose another "
                          "folder, or pass --force to replace it")


def check_output_file(out: str | os.PathLike, force: bool,
                      inputs: Iterable[str | os.PathLike | None] = ()) -> None:
    """Check a single output file before it is written.

    Never a folder; never, without ``force``, an existing cohort file, a file inside a twin
    directory or inside one of the command's ``inputs`` folders.
    """
    path = Path(out).absolute()
    if path.is_dir():
        raise TargetError(f"{out} is a folder; give a file name")
    if force or not path.exists():
        return
    parent = real_path(path.parent)
    folders = {real_path(p) for p in inputs if p is not None and Path(p).is_dir()}
    reason = None
    if path.name in COHORT_FILES and is_cohort(parent):
        reason = "a file of a cohort"
    elif any(is_twin(p) for p in (parent, *parent.parents[:2])):
        reason = "a file inside a twin directory"
    elif parent in folders:
        reason = "a file inside an input folder of this command"
    if reason:
        raise TargetError(f"{out} is {reason}; writing there would replace it — choose "
                          "another file, or pass --force")
