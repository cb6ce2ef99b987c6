"""Reading an import's mapping file (TOML): typed, every key checked.

A mapping says how a source's columns become the cohort's variables (docs/import-diary.md). A key
the reader does not know is an error naming the file, the table and the key — with the
nearest known key — never silently ignored: a misspelt ``missing`` would otherwise let "NA"
through as a value.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from migraine_bayes.errors import InputDataError, Problem, did_you_mean


class MappingReader:
    """Typed access to one TOML mapping; problems are collected, then raised together."""

    def __init__(self, path: str | Path, data: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self.problems: list[Problem] = []
        if data is not None:  # the file's tables, already read (and completed) by an adapter
            self.data = data
            return
        try:
            self.data: dict[str, Any] = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputDataError([Problem(self.name, "mapping file does not exist")],
                                 str(self.path)) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputDataError([Problem(self.name, f"not a TOML file: {exc}")],
                                 str(self.path)) from None

    def table(self, key: str, required: bool = False) -> dict[str, Any]:
        """The table ``[key]`` ({} when absent and not required)."""
        value = self.data.get(key)
        if value is None:
            if required:
                self.add(f"the table [{key}] is missing", key)
            return {}
        if not isinstance(value, dict):
            self.add(f"[{key}] must be a table", key)
            return {}
        return value

    def known(self, where: str, table: Mapping[str, Any], keys: set[str]) -> None:
        """Every key of ``table`` is one of ``keys`` (else a problem with the nearest)."""
        for k in table:
            if k not in keys:
                self.add(f"unknown key '{k}' in {where}{did_you_mean(k, keys)}; known keys: "
                         f"{', '.join(sorted(keys))}", k)

    def text(self, where: str, table: Mapping[str, Any], key: str,
             required: bool = False) -> str | None:
        """A string value (``None`` when absent and not required)."""
        value = table.get(key)
        if value is None:
            if required:
                self.add(f"{where} needs '{key}'", key)
            return None
        if not isinstance(value, str) or not value.strip():
            self.add(f"{where}: '{key}' must be a non-empty string", key, value)
            return None
        return value

    def texts(self, where: str, table: Mapping[str, Any], key: str,
              default: tuple[str, ...] = ()) -> tuple[str, ...]:
        """A list of strings (a single string is a list of one)."""
        value = table.get(key, list(default))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str | int | float)
                                                  for v in value):
            self.add(f"{where}: '{key}' must be a list of strings", key, value)
            return default
        return tuple(str(v) for v in value)

    def number(self, where: str, table: Mapping[str, Any], key: str) -> float | None:
        """A number (``None`` when absent)."""
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(f"{where}: '{key}' must be a number", key, value)
            return None
        return float(value)

    def codes(self, where: str, table: Mapping[str, Any], key: str
              ) -> dict[str, float] | None:
        """A table of codes: cell text → number."""
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, dict) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()):
            self.add(f"{where}: '{key}' must map each cell text to a number, "
                     "e.g. {{ none = 0, mild = 1 }}", key, value)
            return None
        return {str(k).strip(): float(v) for k, v in value.items()}

    def add(self, rule: str, key: str | None = None, value: object = None) -> None:
        """Record a problem of the mapping."""
        self.problems.append(Problem(self.name, rule, column=key,
                                     value=None if value is None else str(value)))

    def check(self) -> None:
        """Raise every problem found so far."""
        if self.problems:
            raise InputDataError(self.problems, str(self.path))
