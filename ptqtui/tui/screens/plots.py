"""Full-screen plots and sample thumbnails, opened from Nodes, Calibration and Findings.

Keyboard only: left/right step through the nodes the screen was opened with, h and w switch
between a node's activation histogram and its weight ranges, esc closes.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static

from ptqtui.report.pictures import PictureKind, picture_of, thumbnails_of
from ptqtui.tui.widgets.images import image_widget
from ptqtui.tui.widgets.plots import (
    ActivationHistogram,
    ErrorCurve,
    SensitivityRanking,
    WeightRanges,
    curve_legend,
    histogram_legend,
    sensitivity_legend,
    weights_legend,
)

if TYPE_CHECKING:
    from ptqtui.analysis.results import CurvePoint, NodeRow, SampleThumbnail
    from ptqtui.check.findings import Finding

THUMB_CELLS = (32, 16)  # a 32x32 thumbnail in half-blocks: 32 columns, 16 rows

_PLOT_CSS = """
PlotScreen, SamplesScreen { layout: vertical; }
.plot-title { height: 1; padding: 0 1; background: $panel; }
.plot-area { height: 1fr; }
.plot-legend { height: auto; max-height: 5; padding: 0 1; }
#samples-grid { grid-gutter: 0 2; height: auto; padding: 0 1; }
.sample { height: auto; width: 34; }
.sample-image { width: 32; height: 16; }
.sample-caption { height: 2; }
"""


class PlotKind(enum.Enum):
    """What a node plot shows."""

    HISTOGRAM = "histogram"  # the activation's |x| histogram with every method's threshold
    WEIGHTS = "weights"  # per-channel weight ranges with the per-tensor one


class PlotScreen(Screen[None]):
    """One plot over the whole terminal, its legend under it."""

    DEFAULT_CSS = _PLOT_CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close"),
    ]

    def __init__(self, title: str, plot: Widget, legend: Text) -> None:
        super().__init__()
        self.title_text = title
        self.plot = plot
        self.legend = legend

    def compose(self):
        yield Static(Text(self.title_text, style="bold"), classes="plot-title", id="plot-title")
        with Vertical(classes="plot-area", id="plot-area"):
            yield self.plot
        yield Static(self.legend, classes="plot-legend", id="plot-legend")
        yield Footer()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)


class NodePlotScreen(PlotScreen):
    """A node's histogram or weight ranges; left/right walk the nodes it was opened with."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close"),
        Binding("left,comma", "step(-1)", "Previous node"),
        Binding("right,full_stop", "step(1)", "Next node"),
        Binding("h", "show('histogram')", "Histogram"),
        Binding("w", "show('weights')", "Weights"),
    ]

    def __init__(
        self, nodes: Sequence[NodeRow], index: int = 0, kind: PlotKind = PlotKind.HISTOGRAM
    ) -> None:
        self.nodes = tuple(nodes)
        self.index = max(0, min(index, len(self.nodes) - 1))
        self.kind = kind
        super().__init__(*self._parts())

    def _parts(self) -> tuple[str, Widget, Text]:
        node = self.nodes[self.index]
        where = f"  [{self.index + 1}/{len(self.nodes)}]" if len(self.nodes) > 1 else ""
        if self.kind is PlotKind.WEIGHTS:
            title = f"Weight ranges: {node.name} ({node.op_type}){where}"
            return title, WeightRanges(node, id="node-plot"), weights_legend(node)
        title = f"Activation histogram: {node.name} ({node.op_type}){where}"
        return title, ActivationHistogram(node, id="node-plot"), histogram_legend(node)

    async def _redraw(self) -> None:
        self.title_text, self.plot, self.legend = self._parts()
        self.query_one("#plot-title", Static).update(Text(self.title_text, style="bold"))
        self.query_one("#plot-legend", Static).update(self.legend)
        area = self.query_one("#plot-area")
        await area.remove_children()
        await area.mount(self.plot)

    async def action_step(self, delta: int) -> None:
        if len(self.nodes) > 1:
            self.index = (self.index + delta) % len(self.nodes)
            await self._redraw()

    async def action_show(self, kind: str) -> None:
        wanted = PlotKind(kind)
        if wanted is not self.kind:
            self.kind = wanted
            await self._redraw()


def curve_screen(curve: Sequence[CurvePoint]) -> PlotScreen:
    return PlotScreen(
        "Accumulated error curve", ErrorCurve(curve, id="curve-plot"), curve_legend(curve)
    )


def sensitivity_screen(nodes: Sequence[NodeRow]) -> PlotScreen:
    return PlotScreen(
        "Sensitivity ranking",
        SensitivityRanking(nodes, id="sensitivity-plot"),
        sensitivity_legend(nodes),
    )


def longest_tails(nodes: Sequence[NodeRow]) -> list[NodeRow]:
    """Nodes with a histogram, the longest tail (max |x| over its 99.99th percentile) first."""

    def tail(n: NodeRow) -> float:
        top = max(abs(n.act_min or 0.0), abs(n.act_max or 0.0))
        return top / n.act_p9999 if n.act_p9999 else 0.0

    return sorted((n for n in nodes if n.histogram), key=lambda n: -tail(n))


class SamplesScreen(Screen[None]):
    """Thumbnails of calibration samples: the terminal's graphics protocol where it has one,
    half-blocks (or characters) otherwise."""

    DEFAULT_CSS = _PLOT_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, title: str, thumbnails: Sequence[SampleThumbnail], note: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.thumbnails = tuple(thumbnails)
        self.note = note

    def compose(self):
        yield Static(Text(self.title_text, style="bold"), classes="plot-title", id="plot-title")
        with VerticalScroll(classes="plot-area", id="samples-scroll"):
            columns = max(1, (self.app.size.width - 2) // 36)
            grid = Grid(id="samples-grid")
            grid.styles.grid_size_columns = columns
            with grid:
                for t in self.thumbnails:
                    with Vertical(classes="sample"):
                        yield image_widget(t.png, classes="sample-image")
                        caption = Text(t.sample, style="bold").append(f"\n{t.view}", style="dim")
                        yield Static(caption, classes="sample-caption")
        legend = Text(self.note, style="dim") if self.note else Text()
        sizes = {(t.width, t.height) for t in self.thumbnails}
        if sizes:
            w, h = max(sizes)
            legend.append(f"{' ' if self.note else ''}({w}x{h} pixels each)", style="dim")
        yield Static(legend, classes="plot-legend", id="plot-legend")
        yield Footer()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)


def picture_for(
    finding: Finding, thumbnails: Sequence[SampleThumbnail], rows: Sequence[NodeRow]
) -> Screen[None] | None:
    """The screen that shows a finding's picture (see ptqtui.report.pictures), or None."""
    picture = picture_of(finding, thumbnails, rows)
    if picture is None:
        return None
    if picture.kind is PictureKind.SAMPLES:
        thumbs = picture.thumbnails
        fixes = sorted({t.view for t in thumbs if t.fix is not None})
        note = f"each sample as given and with the fix ({', '.join(fixes)})" if fixes else ""
        return SamplesScreen(f"{finding.code}: calibration samples", thumbs, note)
    if picture.kind is PictureKind.SENSITIVITY:
        return sensitivity_screen(rows)
    kind = PlotKind.WEIGHTS if picture.kind is PictureKind.WEIGHTS else PlotKind.HISTOGRAM
    return NodePlotScreen(picture.nodes, 0, kind)


__all__ = [
    "NodePlotScreen",
    "PlotKind",
    "PlotScreen",
    "SamplesScreen",
    "curve_screen",
    "longest_tails",
    "picture_for",
    "sensitivity_screen",
    "thumbnails_of",
]
