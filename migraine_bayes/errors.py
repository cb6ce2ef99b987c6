"""Typed errors that cross the package boundary.

Every user-facing error carries a list of :class:`Problem` so that a caller (the CLI, a notebook)
can show all of them at once instead of the first one only.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One broken rule in one place of an input file.

    Attributes
    ----------
    file : str
        File name as found in the cohort folder (``observations.csv``), or ``scenario`` etc.
    rule : str
        The rule broken, in words a researcher understands.
    row : int or None
        1-based data row (the header is not counted; in a CSV it sits on line ``row + 1``).
        ``None`` when the problem concerns the whole file or a column.
    column : str or None
        Column name, or ``None`` when the problem concerns a whole row or file.
    value : str or None
        The offending value as text, if any.

    """

    file: str
    rule: str
    row: int | None = None
    column: str | None = None
    value: str | None = None
    line: int | None = None  # a CSV row's first line when a quoted cell spans lines

    def __str__(self) -> str:
        where = self.file
        if self.row is not None and self.file.endswith(".xml"):
            where += f", line {self.row}"  # an XML record is named by its line
        elif self.row is not None:
            where += f", row {self.row}"
            if self.file.endswith(".csv"):
                where += f" (line {self.line or self.row + 1})"
        if self.column is not None:
            where += f", column '{self.column}'"
        text = f"{where}: {self.rule}"
        if self.value is not None:
            text += f" (got {self.value!r})"
        return text


class MigraineBayesError(Exception):
    """Base class of the package's own errors."""


class InputDataError(MigraineBayesError, ValueError):
    """Invalid input data; lists every problem found, each with file/row/column/rule."""

    def __init__(self, problems: list[Problem], source: str = "input data") -> None:
        self.problems = list(problems)
        self.source = source
        lines = [f"{len(self.problems)} problem(s) in {source}:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class ProblemLog:
    """Problems collected over a whole (possibly streamed) input, in bounded memory.

    The first ``per_rule`` problems of each (file, rule) are kept in full; later ones are only
    counted, with their first and last row, and summarised by :meth:`problems`.
    """

    def __init__(self, per_rule: int = 50) -> None:
        self.per_rule = per_rule
        self._listed: list[Problem] = []
        self._more: dict[tuple[str, str, str | None], list[int]] = {}  # key → [n, first, last]
        self._counts: dict[tuple[str, str, str | None], int] = {}

    def add(self, problem: Problem, rule: str | None = None) -> None:
        """Record one problem; ``rule`` groups problems whose texts differ row by row."""
        key = (problem.file, rule or problem.rule, problem.column)
        n = self._counts.get(key, 0)
        self._counts[key] = n + 1
        if problem.row is None or n < self.per_rule:
            self._listed.append(problem)
            return
        more = self._more.setdefault(key, [0, problem.row, problem.row])
        more[0] += 1
        more[2] = problem.row

    def room(self, file: str, rule: str, column: str | None) -> int:
        """How many more problems of this (file, rule, column) would be listed in full."""
        return max(0, self.per_rule - self._counts.get((file, rule, column), 0))

    def count(self, file: str, rule: str, column: str | None, rows: list[int] | None = None,
              n: int = 0, first: int = 0, last: int = 0) -> None:
        """Count further rows of a rule without listing them.

        Either ``rows`` (1-based), or ``n`` rows from ``first`` to ``last``.
        """
        if rows is not None:
            if not rows:
                return
            n, first, last = len(rows), rows[0], rows[-1]
        key = (file, rule, column)
        self._counts[key] = self._counts.get(key, 0) + n
        more = self._more.setdefault(key, [0, first, last])
        more[0] += n
        more[2] = last

    def add_rows(self, file: str, rule: str, column: str | None, rows: list[int],
                 values: list[str | None]) -> None:
        """One rule broken on many rows: the first listed in full, the rest counted.

        As many rows are listed (each with its value) as the rule has room for.
        """
        room = self.room(file, rule, column)
        for row, value in zip(rows[:room], values[:room], strict=True):
            self.add(Problem(file, rule, row=row, column=column, value=value))
        self.count(file, rule, column, rows=rows[room:])

    def extend(self, problems: list[Problem]) -> None:
        """Record several problems."""
        for p in problems:
            self.add(p)

    def __bool__(self) -> bool:
        return bool(self._listed)

    def __len__(self) -> int:
        return sum(self._counts.values())

    def problems(self) -> list[Problem]:
        """The kept problems plus one summary line per rule with more rows than listed."""
        out = list(self._listed)
        for (file, rule, column), (n, first, last) in self._more.items():
            out.append(Problem(file, f"{rule}: {n} more rows (rows {first}…{last})",
                               column=column))
        return out


class InferenceWarning(UserWarning):
    """The sampler's checks failed even after the retry: treat this posterior with suspicion.

    Defined here (and re-exported by :mod:`migraine_bayes.model.inference`) so that a caller
    can filter it without importing PyMC.
    """


def did_you_mean(name: object, known: Iterable[str]) -> str:
    """`` (did you mean 'a' or 'b'?)`` for the known names closest to ``name``, else ``""``.

    The one "did you mean" of every message that names an unknown variable, column, drug or
    behaviour (case and surrounding spaces ignored).
    """
    close = difflib.get_close_matches(str(name).strip().lower(), list(known), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
