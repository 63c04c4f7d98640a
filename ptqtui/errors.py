"""Errors a user can act on: each names the file (and line) and the problem in one line."""

from __future__ import annotations

import enum
from pathlib import Path


class ExitCode(enum.IntEnum):
    """The process exit codes, part of the interface (CLI, lint and TUI alike)."""

    OK = 0  # nothing at or above --fail-on
    FINDINGS = 1  # findings at or above --fail-on
    USAGE = 2  # bad usage or unreadable input
    INTERNAL = 3  # a bug in ptqtui; --debug shows the traceback
    INTERRUPTED = 130


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
