"""Progress of a report-mode run on stderr: Rich bars with an ETA on a terminal, plain lines
otherwise (logs, CI, a pipe), nothing with --quiet."""

from __future__ import annotations

import time
from typing import TextIO

from ptqtui.progress import Progress


class StderrProgress:
    """A ProgressCallback; use as a context manager so the bars are closed on any exit."""

    def __init__(self, stream: TextIO, *, prog: str = "ptqtui", quiet: bool = False) -> None:
        self._stream = stream
        self._prog = prog
        self._quiet = quiet
        self._stage: str | None = None
        self._started = 0.0
        self._bars = None
        self._task = None
        isatty = getattr(stream, "isatty", None)
        self._live = bool(isatty and isatty()) and not quiet

    def __enter__(self) -> StderrProgress:
        if self._live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import (
                Progress as RichProgress,
            )

            self._bars = RichProgress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                TaskProgressColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=Console(file=self._stream),
                transient=True,
            )
            self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._finish_stage()
        if self._bars is not None:
            self._bars.stop()

    def __call__(self, p: Progress) -> None:
        if self._quiet:
            return
        if p.stage != self._stage:
            self._finish_stage()
            self._stage = p.stage
            self._started = time.monotonic()
            if self._bars is not None:
                self._task = self._bars.add_task(p.stage, total=p.total)
            else:
                note = f" ({p.note})" if p.note else ""
                size = f", {p.total} steps" if p.total else ""
                print(f"{self._prog}: {p.stage}{size}{note} ...", file=self._stream, flush=True)
        if self._bars is not None and self._task is not None:
            description = p.stage + (f": {p.note}" if p.note else "")
            self._bars.update(self._task, completed=p.done, total=p.total,
                              description=description)  # fmt: skip

    def _finish_stage(self) -> None:
        if self._stage is None:
            return
        seconds = time.monotonic() - self._started
        if self._bars is not None:
            if self._task is not None:  # one bar, the running stage's; the done ones a line
                self._bars.remove_task(self._task)
            self._bars.console.print(
                f"{self._prog}: {self._stage} done in {seconds:.1f} s", markup=False
            )
        self._stage = None
        self._task = None
