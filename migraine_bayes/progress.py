"""Progress of long work (fit, backtest, monitor, SBC, report) as the user sees it.

The package's long functions take ``progress``, a callable ``progress(stage, done=None,
total=None)``: a new ``stage`` starts a step; ``done``/``total`` count its items. The command
line passes one of these reporters:

- :class:`BarProgress` on a terminal: a ``rich`` progress bar per stage (stage, count, elapsed,
  estimated time left);
- :class:`LineProgress` otherwise (a pipe, a log file, CI): plain lines on stderr, one per stage
  and at most one per ``every`` seconds for counted items;
- :func:`quiet` for ``--quiet``: nothing.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO


class Progress(Protocol):
    """What long functions call: ``progress(stage)`` or ``progress(stage, done, total)``."""

    def __call__(self, stage: str, done: int | None = None, total: int | None = None) -> None:
        """Report a stage, or ``done`` of its ``total`` items."""


def quiet(stage: str, done: int | None = None, total: int | None = None) -> None:
    """Report nothing (``--quiet``)."""


def counted(progress: Progress | None, stage: str, total: int):
    """A ``tick(done)`` for a loop of ``total`` items of ``stage`` (no-op without progress)."""
    if progress is None:
        return lambda done: None
    progress(stage, 0, total)
    return lambda done: progress(stage, done, total)


class LineProgress:
    """Plain progress lines on ``stream``: ``[  12 s] stage (3/10)``, throttled to ``every`` s."""

    def __init__(self, stream: TextIO | None = None, every: float = 10.0) -> None:
        self.stream = stream
        self.every = every
        self.t0 = time.perf_counter()
        self.stage: str | None = None
        self.last = -float("inf")

    def __call__(self, stage: str, done: int | None = None, total: int | None = None) -> None:
        """Print a line for a new stage, a finished count, or every ``every`` seconds."""
        now = time.perf_counter()
        new = stage != self.stage
        finished = done is not None and total is not None and done >= total
        if not (new or finished or now - self.last >= self.every):
            return
        self.stage, self.last = stage, now
        count = f" ({done}/{total})" if done is not None and total else ""
        print(f"[{now - self.t0:5.0f} s] {stage}{count}", file=self.stream or sys.stderr,
              flush=True)


class BarProgress:
    """A ``rich`` progress display on the terminal: one bar per stage; use as a context manager."""

    def __init__(self, console=None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            console=console or Console(stderr=True), transient=False)
        self.tasks: dict[str, int] = {}
        self.current: str | None = None

    def __enter__(self) -> BarProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self._finish(self.current)
        self.bar.stop()

    def _finish(self, stage: str | None) -> None:
        if stage is not None and stage in self.tasks:
            task = self.tasks[stage]
            total = self.bar.tasks[task].total
            self.bar.update(task, completed=total if total else 1, total=total or 1)

    def __call__(self, stage: str, done: int | None = None, total: int | None = None) -> None:
        """Move the stage's bar (a new stage completes the previous one)."""
        if stage != self.current:
            self._finish(self.current)
            self.current = stage
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(stage, total=total)
        self.bar.update(self.tasks[stage], completed=done or 0, total=total)


def reporter(quiet_: bool = False, stream: TextIO | None = None):
    """The reporter for the command line: a context manager yielding a :class:`Progress`.

    Nothing with ``quiet_``; bars when ``stream`` (default stderr) is a terminal; lines otherwise.
    """
    import contextlib

    stream = stream or sys.stderr
    if quiet_:
        return contextlib.nullcontext(quiet)
    if stream.isatty():
        return BarProgress()
    return contextlib.nullcontext(LineProgress(stream))
