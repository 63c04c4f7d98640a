"""Per-stage progress of a running diagnosis, with an estimate of what is left."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static

from ptqtui.tui.widgets.text import WARN, clip, seconds

if TYPE_CHECKING:
    from ptqtui.progress import Progress


class ProgressPanel(Vertical):
    """Stages done (with their time), the current one with a bar and the time it has left."""

    def __init__(self, title: str, started: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.started = started
        self.done: list[tuple[str, float]] = []
        self.stage: str | None = None
        self.stage_started = started

    def compose(self):
        yield Static(Text(self.title, style="bold"), id="progress-title")
        yield Static(id="progress-done")
        yield Static(Text("starting..."), id="progress-stage")
        yield ProgressBar(id="progress-bar", show_eta=False)
        yield Static(
            Text("q or ctrl+c cancels; the screens open with the first results", style="dim"),
            id="progress-hint",
        )

    def show(self, p: Progress, at: float) -> None:
        if p.stage != self.stage:
            if self.stage is not None:
                self.done.append((self.stage, at - self.stage_started))
            self.stage = p.stage
            self.stage_started = at
            done = Text()
            for stage, took in self.done:
                done.append(f"  done  {stage:<24} {seconds(took):>7}\n")
            self.query_one("#progress-done", Static).update(done)
        elapsed = at - self.stage_started
        line = Text(f"  now   {p.stage:<24}", style="bold")
        if p.total:
            line.append(f" {p.done}/{p.total}")
            if 0 < p.done < p.total and elapsed > 0.5:
                left = elapsed * (p.total - p.done) / p.done
                line.append(f"  about {seconds(left)} left in this stage", style=WARN)
        elif p.done:
            line.append(f" {p.done}")
        if p.note:
            line.append(f"\n        {clip(p.note, max(20, self.size.width - 10))}", style="dim")
        self.query_one("#progress-stage", Static).update(line)
        bar = self.query_one(ProgressBar)
        bar.update(total=p.total, progress=p.done)
        total = at - self.started
        self.query_one("#progress-title", Static).update(
            Text(self.title, style="bold").append(f"   {seconds(total)} so far", style="dim")
        )
