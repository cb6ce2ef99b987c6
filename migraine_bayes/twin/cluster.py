"""Where per-patient work runs: worker processes or machines (Dask ``distributed``), or here.

:func:`session` opens it — ``workers`` local processes (a ``LocalCluster``, one thread each:
a fit samples its chains on one core), an existing cluster's scheduler (``tcp://HOST:PORT``),
or this process (``workers=0``). :func:`run` submits one task per job and yields the results as
they finish, keeping only a few tasks in flight so that a cohort of thousands never sits in
memory as pending task arguments. A task whose worker dies (killed, out of memory) is rerun by
the scheduler on another worker; only a task that keeps killing workers comes back as an error.

Worker processes keep the compiled models of :mod:`migraine_bayes.model.inference` between tasks,
so each worker compiles a model shape once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from migraine_bayes.errors import MigraineBayesError

IN_FLIGHT_PER_WORKER = 2  # tasks queued per worker: it never waits, the driver holds few
# Dask keeps each comm's last messages under 1 MB for debugging (1,000 by default): a patient's
# task (~0.8 MB) would stay in the driver's memory long after it finished — 1.3 MB a patient
LOG_LENGTH = 10


class ClusterError(MigraineBayesError):
    """The cluster asked for cannot be reached or started."""


@dataclass(frozen=True)
class ClusterOptions:
    """How a two-stage cohort fit is spread (:mod:`migraine_bayes.twin.two_stage`).

    ``workers``: local worker processes (0: fit in this process); ignored with ``scheduler``,
    the address of a running Dask scheduler (``tcp://HOST:PORT``). ``population_patients``:
    patients in the stage-1 hierarchical fit (a stratified subsample when the cohort is
    larger).
    """

    workers: int = 2
    scheduler: str | None = None
    population_patients: int = 20

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ValueError(f"workers must be 0 or more, got {self.workers}")
        if self.population_patients < 2:
            raise ValueError("population_patients must be at least 2 (a hierarchy needs "
                             f"patients to pool), got {self.population_patients}")
        if self.scheduler is not None and "://" not in self.scheduler:
            raise ValueError(f"scheduler must be an address like tcp://HOST:PORT, got "
                             f"{self.scheduler!r}")

    def to_dict(self) -> dict:
        """Plain dict for ``twin.json``."""
        return asdict(self)


@contextlib.contextmanager
def session(options: ClusterOptions) -> Iterator[Any]:
    """A ``distributed.Client`` for ``options`` (None: run in this process); closed on exit."""
    if options.scheduler is None and options.workers == 0:
        yield None
        return
    import dask
    import distributed  # noqa: F401  (registers its configuration: set before it, the
    # setting below would be the whole "distributed" section, and LocalCluster fails on it)

    with dask.config.set({"distributed.admin.low-level-log-length": LOG_LENGTH}):
        yield from _session(options)


def _session(options: ClusterOptions) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    if options.scheduler is not None:
        try:
            client = Client(options.scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {options.scheduler}: "
                               f"{exc}") from None
        with client:
            yield client
        return
    # one thread per worker: nutpie samples the chains of a fit one after another on it
    # any free port for the (unused) dashboard: two clusters on one machine must not collide
    with LocalCluster(n_workers=options.workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client


def run(client: Any, fn: Callable[[Any], Any], jobs: Iterable[tuple[str, Any]]
        ) -> Iterator[tuple[str, Any]]:
    """``(key, fn(job))`` for every job as it finishes; ``(key, exception)`` when it raised.

    ``client`` None runs the jobs here, one after another. With a client, at most
    ``IN_FLIGHT_PER_WORKER`` tasks per worker are pending at once; a job lost with its worker is
    rerun by the scheduler (``distributed.scheduler.allowed-failures``).
    """
    jobs = iter(jobs)
    if client is None:
        for key, job in jobs:
            try:
                yield key, fn(job)
            except Exception as exc:
                yield key, exc
        return
    from distributed import as_completed

    n_workers = max(len(client.scheduler_info().get("workers", {})), 1)
    keys: dict[Any, str] = {}

    def submit() -> Any | None:
        nxt = next(jobs, None)
        if nxt is None:
            return None
        key, job = nxt
        future = client.submit(fn, job, pure=False)
        keys[future] = key
        return future

    first = [f for f in (submit() for _ in range(IN_FLIGHT_PER_WORKER * n_workers + 1))
             if f is not None]
    pending = as_completed(first)
    for future in pending:
        key = keys.pop(future)
        try:
            result = future.result()
        except Exception as exc:
            result = exc
        future.release()
        following = submit()
        if following is not None:
            pending.add(following)
        yield key, result


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``).

    Between a two-stage fit's stages the driver has freed large temporaries (the panel's
    long-form tables) that glibc would otherwise keep mapped; elsewhere a no-op.
    """
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def peak_memory_mb() -> float:
    """Peak resident memory of the calling process so far (MB).

    Not for a worker: a process forked from a large one (Dask's worker start-up) inherits its
    parent's peak; use :func:`resident_memory_mb` there.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def resident_memory_mb() -> float:
    """Resident memory of the calling process now (MB; Linux ``/proc``, else the peak)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, IndexError, ValueError):
        return peak_memory_mb()
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def process_label() -> str:
    """The process a task ran in (host and pid: no patient data)."""
    return f"{os.uname().nodename}:{os.getpid()}"
