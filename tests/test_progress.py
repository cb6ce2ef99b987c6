"""Progress of long work: bars on a terminal, plain lines otherwise, nothing with --quiet."""

from __future__ import annotations

import io

from rich.console import Console

from migraine_bayes.progress import BarProgress, LineProgress, counted, quiet, reporter


def test_plain_lines_one_per_stage_and_finished_count() -> None:
    out = io.StringIO()
    say = LineProgress(out, every=3600)
    say("fitting")
    tick = counted(say, "walking forward", 3)
    for k in range(1, 4):
        tick(k)
    lines = [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]
    # a count between the first and the last is not repeated within `every` seconds
    assert lines == ["fitting", "walking forward (0/3)", "walking forward (3/3)"]


def test_bars_show_stage_count_elapsed_and_eta() -> None:
    buf = io.StringIO()
    with BarProgress(Console(file=buf, force_terminal=True, width=120)) as bar:
        bar("reading")
        tick = counted(bar, "SBC replicates", 4)
        for k in range(1, 5):
            tick(k)
    text = buf.getvalue()
    assert "SBC replicates" in text and "4/4" in text and "ETA" in text
    assert "reading" in text and "0:00:00" in text  # elapsed column


def test_reporter_picks_lines_off_a_terminal_and_nothing_when_quiet() -> None:
    out = io.StringIO()
    with reporter(stream=out) as say:
        assert isinstance(say, LineProgress)
        say("stage")
    assert "stage" in out.getvalue()
    with reporter(quiet_=True, stream=out) as say:
        assert say is quiet
    assert counted(None, "x", 3)(1) is None
