"""Progress reports and cancellation shared by every long-running stage."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Progress:
    stage: str  # "calibration", "sensitivity", ...
    done: int
    total: int | None = None  # None when unknown
    note: str | None = None


ProgressCallback = Callable[[Progress], None]


class Cancelled(Exception):
    """Raised inside a stage when its cancel event is set."""


def check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled()


def report(
    progress: ProgressCallback | None,
    stage: str,
    done: int,
    total: int | None = None,
    note: str | None = None,
) -> None:
    if progress is not None:
        progress(Progress(stage, done, total, note))
