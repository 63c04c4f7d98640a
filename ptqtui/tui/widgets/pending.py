"""A part of the diagnosis still being measured: its stage, percent and the time it has left."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

from ptqtui.tui.widgets.text import WARN, seconds

if TYPE_CHECKING:
    from ptqtui.progress import Progress

SETTLE = 0.5  # seconds into a stage before its rate says anything about the time left


@dataclass(frozen=True, slots=True)
class StageClock:
    """The latest progress of one stage, when it came, and when the stage began."""

    progress: Progress
    at: float
    started: float

    def percent(self) -> int | None:
        p = self.progress
        if not p.total:
            return None
        return max(0, min(100, int(100 * p.done / p.total)))

    def left(self) -> float | None:
        """Seconds the stage has left at its rate so far (None: too early to say)."""
        p = self.progress
        elapsed = self.at - self.started
        if not p.total or p.done <= 0 or p.done >= p.total or elapsed < SETTLE:
            return None
        return elapsed * (p.total - p.done) / p.done


def describe(label: str, clock: StageClock | None) -> Text:
    """'sensitivity: measuring... 42 %, ~1 min left' (or '... waiting')."""
    text = Text(f"{label}: ", style="bold")
    if clock is None:
        return text.append("waiting", style="dim")
    text.append("measuring...", style=WARN)
    percent = clock.percent()
    if percent is not None:
        text.append(f" {percent} %")
    left = clock.left()
    if left is not None:
        text.append(f", ~{seconds(left)} left")
    return text


class PendingLine(Static):
    """One line per pending part of a screen; `stages` are the progress stages it follows."""

    DEFAULT_CSS = """
    PendingLine {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self, label: str, stages: tuple[str, ...], clocks: dict, **kwargs) -> None:
        super().__init__(**kwargs)
        self.label = label
        self.stages = stages
        self.clock: StageClock | None = next(
            (clocks[s] for s in reversed(stages) if s in clocks), None
        )
        self.add_class("pending")

    def on_mount(self) -> None:
        self.update(describe(self.label, self.clock))

    def follow(self, clock: StageClock) -> None:
        """A stage this line follows moved on."""
        if clock.progress.stage in self.stages:
            self.clock = clock
            self.update(describe(self.label, clock))
