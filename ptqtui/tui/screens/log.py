"""Log: what ran and how long, what was skipped, the simulator's own log lines."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from ptqtui.tui.widgets.text import WARN, seconds

if TYPE_CHECKING:
    from ptqtui.diagnosis import Diagnosis


class LogView(VerticalScroll):
    def __init__(self, diagnosis: Diagnosis, **kwargs) -> None:
        super().__init__(**kwargs)
        self.diagnosis = diagnosis

    def compose(self):
        yield Static(log_body(self.diagnosis), id="log-body")


def log_body(d: Diagnosis) -> Group:
    parts: list = []
    a = d.analysis
    parts.append(Text("What ran", style="bold"))
    if a is not None and a.timings:
        table = Table(box=None, pad_edge=False, show_header=True, header_style="dim")
        table.add_column("stage", no_wrap=True)
        table.add_column("time", justify="right")
        table.add_column("passes", justify="right")
        for t in a.timings:
            table.add_row(t.stage, seconds(t.seconds), str(t.passes) if t.passes else "")
        total = sum(t.seconds for t in a.timings)
        table.add_row(Text("total", style="bold"), Text(seconds(total), style="bold"), "")
        parts.append(table)
    else:
        parts.append(Text("  loading inputs and the config checks (no simulator results)"))
    parts.append(Text(f"  seed {d.seed}, ptqtui {d.version}", style="dim"))
    parts.append(Text("\nSkipped", style="bold"))
    if d.skipped:
        for s in d.skipped:
            parts.append(Text(f"  {s.what}: ", style=WARN).append(s.reason, style=""))
    else:
        parts.append(Text("  nothing"))
    data = [x for x in (d.calibration, d.evaluation) if x is not None]
    problems = [p for x in data for p in (*x.skipped, *x.size_mismatches)]
    if problems:
        parts.append(Text("\nFiles left out", style="bold"))
        parts.extend(Text(f"  {p}") for p in problems)
    if a is not None and a.log:
        parts.append(Text("\nCalibration log", style="bold"))
        parts.extend(Text(f"  {line}") for line in a.log)
    notes = (*d.notes, *(a.notes if a else ()))
    if notes:
        parts.append(Text("\nNotes", style="bold"))
        parts.extend(Text(f"  {n}") for n in notes)
    return Group(*parts)
