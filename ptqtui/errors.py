"""Errors a user can act on: each names the file (and line) and the problem in one line."""

from __future__ import annotations

from pathlib import Path


class PtqInputError(Exception):
    """A user input (model, config, data) that cannot be read; the CLI exits 2 with its text."""

    def __init__(self, path: str | Path | None, problem: str, *, line: int | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.problem = " ".join(problem.split())  # library messages may span lines
        self.line = line
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = self.path or ""
        if self.line is not None:
            where = f"{where} line {self.line}"
        return f"{where}: {self.problem}" if where else self.problem


class UsageError(Exception):
    """Bad command-line usage: exits 2 with the message."""
