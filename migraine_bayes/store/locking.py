"""One writer per twin: an exclusive, re-entrant file lock beside the twin directory.

The lock file ``.<twin name>.lock`` sits next to the directory (not inside it: a save replaces
the directory by a rename, and a lock inside it would be on the old one). Every write of a
twin or its audit trail — fit, update, retrain, forecast records, journal replay — holds it,
so concurrent commands queue instead of losing each other's work. Within one process the lock
is re-entrant (an update that retrains takes it once more).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import filelock

from migraine_bayes.errors import MigraineBayesError

TIMEOUT_S = 600.0  # how long a command waits for another writer of the same twin

_LOCKS: dict[str, filelock.FileLock] = {}
_GUARD = threading.Lock()


class TwinBusyError(MigraineBayesError):
    """Another process kept a twin locked for longer than the timeout."""


def real_path(path: str | os.PathLike) -> Path:
    """The twin directory's real location: a symlinked path is written through, not replaced."""
    path = Path(path).absolute()
    return path.resolve() if path.is_symlink() else path


def lock_file(path: str | os.PathLike) -> Path:
    """Where the lock of the twin at ``path`` lives."""
    real = real_path(path)
    return real.with_name(f".{real.name}.lock")


@contextlib.contextmanager
def twin_lock(path: str | os.PathLike, timeout: float = TIMEOUT_S) -> Iterator[None]:
    """Hold the exclusive lock of the twin at ``path`` (waits up to ``timeout`` seconds)."""
    target = lock_file(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _GUARD:
        lock = _LOCKS.setdefault(str(target), filelock.FileLock(str(target), mode=0o600))
    try:
        lock.acquire(timeout=timeout)
    except filelock.Timeout:
        raise TwinBusyError(f"the twin {real_path(path).name} is being written by another "
                            f"process (lock {target}); waited {timeout:.0f} s — try again "
                            "when it has finished") from None
    try:
        yield
    finally:
        lock.release()
