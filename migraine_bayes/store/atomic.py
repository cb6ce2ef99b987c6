"""Atomic file and directory writes: a crash never leaves a half-written file behind.

Write to a temporary sibling, flush and fsync, then ``os.replace`` it over the target (atomic on
POSIX within one file system).

What the package writes holds patient data (twins, forecasts, reports, exports), so it is private
to its owner: a new file is 0600 and a new folder 0700 unless the caller says otherwise, and a
file or folder written again keeps its mode less every permission of "others" — a save never
widens permissions and never leaves them open to everyone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask_mode(base: int) -> int:
    """``base`` (0o666 for files, 0o777 for folders) less the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700
OTHERS = 0o007  # never granted by a write


def final_mode(target: Path, new: int | None, base: int, keep: bool = True) -> int:
    """The mode a replacement of ``target`` gets (a save never widens permissions).

    The existing file's mode less :data:`OTHERS` (``keep``), else ``new``, else ``base`` less
    the umask.
    """
    if keep:
        try:
            return stat.S_IMODE(os.stat(target).st_mode) & ~OTHERS
        except FileNotFoundError:
            pass
    return new if new is not None else _umask_mode(base)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, mode: int | None = PRIVATE_FILE) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target``.

    The file keeps ``target``'s mode (less "others") when it exists, else gets ``mode``
    (default 0600; None: 0666 less the umask).

    Use for writers that take a path (``DataFrame.to_parquet``, ``Dataset.to_netcdf``)::

        with atomic_path("posterior.nc") as tmp:
            idata.to_netcdf(tmp)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, final_mode(target, mode, 0o666))  # mkstemp creates 0600
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(target: str | os.PathLike, text: str, mode: int | None = PRIVATE_FILE) -> None:
    """Atomically write ``text`` (UTF-8) to ``target`` (a new file: ``mode``, default 0600)."""
    with atomic_path(target, mode) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike, mode: int | None = PRIVATE_FOLDER,
                     keep: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it takes the place of ``target``.

    The directory keeps ``target``'s mode (less "others") when it exists and ``keep``, else
    gets ``mode`` (default 0700; None: 0777 less the umask).

    An existing ``target`` is moved aside first and removed only after the new one is in place,
    so at every instant either the old or the new complete directory exists under that name
    (or, between two renames, the old one under its backup name).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, final_mode(target, mode, 0o777, keep))  # mkdtemp creates 0700
        backup = None
        if target.exists():
            backup = target.with_name(f".{target.name}.old")
            if backup.exists():
                shutil.rmtree(backup)
            os.replace(target, backup)
        os.replace(tmp, target)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
