"""Calibration: the method sweep, the chosen method, the accumulated-error curve."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

from rich.console import Group
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from ptqtui.tui.screens.plots import NodePlotScreen, curve_screen, longest_tails
from ptqtui.tui.widgets.chart import ColumnChart
from ptqtui.tui.widgets.text import GOOD, WARN, clip, num, pct, pct_interval

if TYPE_CHECKING:
    from ptqtui.analysis.results import Analysis, SweepRow
    from ptqtui.diagnosis import Diagnosis


class CalibrationView(VerticalScroll):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("h", "histograms", "Histograms"),
        Binding("c", "curve", "Curve plot"),
    ]

    def __init__(self, diagnosis: Diagnosis, **kwargs) -> None:
        super().__init__(**kwargs)
        self.analysis = diagnosis.analysis

    def compose(self):
        a = self.analysis
        if a is None or (not a.sweep and not a.curve):
            yield Static("No calibration measurements in this diagnosis.", id="calibration-none")
            return
        yield Static(_chosen(a), id="calibration-chosen")
        if a.sweep:
            yield _sweep_table(a, self.app.size.width)
        if a.curve:
            yield Static(_curve(a), id="curve-chart")

    def action_histograms(self) -> None:
        """Every node's histogram with the methods' thresholds, longest tail first."""
        nodes = longest_tails(self.analysis.nodes) if self.analysis else []
        if not nodes:
            self.notify("No activation histograms in this diagnosis", severity="warning")
            return
        self.app.push_screen(NodePlotScreen(nodes))

    def action_curve(self) -> None:
        if self.analysis is None or not self.analysis.curve:
            self.notify("No accumulated-error curve in this diagnosis", severity="warning")
            return
        self.app.push_screen(curve_screen(self.analysis.curve))


_SHORTER = (
    ("max, max_percentile ", "max p="),
    ("per_channel", "per_ch"),
    ("asymmetric", "asym"),
    ("bias_correction", "bias"),
)


def short_label(label: str, room: int) -> str:
    """The sweep label, abbreviated when it does not fit (the tail tells the rows apart)."""
    if len(label) <= room:
        return label
    for long, short in _SHORTER:
        label = label.replace(long, short)
    return clip(label, room)


def _sweep_table(a: Analysis, width: int) -> DataTable:
    table: DataTable = DataTable(id="sweep-table", cursor_type="row", zebra_stripes=True)
    labelled = any(r.top1 is not None for r in a.sweep)
    table.add_column(" ", key="mark")
    table.add_column("calibration", key="label")
    table.add_column("cosine", key="cosine")
    table.add_column("+-", key="noise")
    if labelled:
        table.add_column("top-1", key="top1")
    metric = next((r.metric for r in a.sweep if r.metric), None)
    table.add_column(_agree_header(metric), key="agreement")
    best = max(a.sweep, key=lambda r: r.cosine)
    whole = max((r.samples or 0 for r in a.sweep), default=0)
    room = max(16, width - (51 if labelled else 42))  # the numbers stay on screen at 80
    for i, r in enumerate(a.sweep):
        mark = Text("*", style="bold") if r.chosen else Text("")
        if r is best:
            label = Text(short_label(r.label, room - 5), style="bold")
            label.append(" best", style=GOOD)
        else:
            label = Text(short_label(r.label, room))
        numbers = [num(r.cosine), num(r.noise)]
        numbers += [pct(r.top1)] if labelled else []
        table.add_row(mark, label, *numbers, _agree_cell(r, whole), key=str(i))
    return table


def _agree_cell(r: SweepRow, whole: int = 0) -> str:
    """The row's task agreement with its 95 % interval, the header saying "%"; "n=25" when a
    sequential measurement stopped it on fewer samples than the rows measured whole."""
    cell = pct_interval(r.agreement, r.agreement_low, r.agreement_high, unit=False)
    if r.agreement is not None and r.samples and r.samples < whole:
        cell += f" n={r.samples}"
    return cell


def _agree_header(metric: str | None) -> str:
    """The agreement column's header: the task's metric, short, with its interval's level."""
    name = (metric or "agreement").removesuffix(" agreement").split(" ")[0]
    return f"{name} agree %" if name != "agreement" else "agree %"


def _chosen(a: Analysis) -> Text:
    text = Text("Chosen: ", style="bold")
    chosen = next((r for r in a.sweep if r.chosen), None)
    if chosen is None:
        text.append("not in the sweep")
    else:
        text.append(chosen.label)
        text.append(f" (cosine {num(chosen.cosine)}")
        if chosen.agreement is not None:
            agree = pct_interval(chosen.agreement, chosen.agreement_low, chosen.agreement_high)
            text.append(f", {chosen.metric or 'agreement'} {agree}")
            if chosen.samples:
                text.append(f" on {chosen.samples} samples")
        text.append(")")
        if chosen.note:
            text.append(f'  log: "{chosen.note}"', style="dim")
    if a.sweep:
        best = max(a.sweep, key=lambda r: r.cosine)
        gain = best.cosine - chosen.cosine if chosen is not None else 0.0
        if chosen is not None and best is not chosen and gain >= 0.00005:
            text.append("\nBest:   ", style="bold")
            text.append(f"{best.label} (cosine {num(best.cosine)}, {gain:+.4f})")
            # the noise of the difference of two rows measured apart (their spreads add)
            noise = math.hypot(best.noise or 0.0, chosen.noise or 0.0)
            if noise and gain <= noise:
                text.append("  within noise", style=WARN)
    text.append(
        "\n* = config's calibration_type  +- = spread over subsets"
        + ("  ( ) = 95 % interval" if any(r.agreement_low is not None for r in a.sweep) else "")
        + (
            "\nn = samples where a row stopped early: below the configured one beyond the noise"
            if _stopped(a)
            else ""
        ),
        style="dim",
    )
    return text


def _stopped(a: Analysis) -> bool:
    """Whether a sweep row's agreement was measured on fewer samples than the others'."""
    counts = [r.samples for r in a.sweep if r.agreement is not None and r.samples]
    return bool(counts) and min(counts) < max(counts)


def _curve(a: Analysis) -> Group:
    values = [p.cosine for p in a.curve]
    drops = sorted(
        ((a.curve[i - 1].cosine - a.curve[i].cosine, a.curve[i]) for i in range(1, len(a.curve))),
        key=lambda t: -t[0],
    )[:3]
    title = Text("Accumulated error: output cosine as nodes are quantized in order", style="bold")
    low = min(values)
    low -= max(1.0 - low, 1e-6) * 0.1
    digits = 4
    while digits < 8 and f"{low:.{digits}f}" == f"{1.0:.{digits}f}":
        digits += 1  # a curve that hardly moves still gets two different labels
    chart = ColumnChart(
        values, height=6, low=low, high=1.0, y_format=f"{{:.{digits}f}}",
        x_first=f"1 {a.curve[0].node}", x_last=f"{len(values)} {a.curve[-1].node}",
    )  # fmt: skip
    lines = [title, chart]
    if drops:
        text = Text("largest steps: ", style="dim")
        text.append(", ".join(f"{p.node} -{d:.4f}" for d, p in drops if d > 0))
        lines.append(text)
    return Group(*lines)
