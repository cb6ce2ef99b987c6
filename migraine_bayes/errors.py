"""Typed errors that cross the package boundary.

Every user-facing error carries a list of :class:`Problem` so that a caller (the CLI, a notebook)
can show all of them at once instead of the first one only.
"""

from __future__ import annotations

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

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
            if self.file.endswith(".csv"):
                where += f" (line {self.row + 1})"
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
