"""Nodes: the node table, sortable by any column, filtered, searched; a node's detail."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Select, Static

from ptqtui.advise.properties import cosine_noise
from ptqtui.quant.noise import within_noise
from ptqtui.tui.screens.plots import NodePlotScreen, PlotKind, sensitivity_screen
from ptqtui.tui.widgets.chart import ColumnChart
from ptqtui.tui.widgets.text import MISSING, clip, clip_middle, gen, num, signed

if TYPE_CHECKING:
    from ptqtui.analysis.results import NodeRow
    from ptqtui.diagnosis import Diagnosis

WIDE = 110  # terminal columns from which the table shows every metric


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    value: Callable[[NodeRow], float | str | None]
    show: Callable[[NodeRow], str]
    wide_only: bool = False
    numeric: bool = True


def _int16_cell(n: NodeRow, noise: float | None) -> str:
    if n.int16_gain is None or math.isnan(n.int16_gain):
        return MISSING
    text = signed(n.int16_gain)
    # a negative figure within the noise is no loss: it says so (positive ones read as gains
    # only in the plan, which asks for more than the noise)
    return f"{text} (noise)" if n.int16_gain < 0 and within_noise(n.int16_gain, noise) else text


def _kind(n: NodeRow) -> str:
    return n.dtype if n.placement == "BPU" else f"{n.dtype} {n.placement}"


COLUMNS = (
    Column("order", "#", lambda n: n.topo_index, lambda n: str(n.topo_index)),
    Column("name", "node", lambda n: n.name, lambda n: n.name, numeric=False),
    Column("op", "op", lambda n: n.op_type, lambda n: n.op_type, numeric=False),
    Column("dtype", "type", _kind, _kind, numeric=False),
    Column("cosine", "cosine", lambda n: n.similarity.cosine, lambda n: num(n.similarity.cosine)),
    Column("sqnr", "SQNR dB", lambda n: n.similarity.sqnr_db,
           lambda n: num(n.similarity.sqnr_db, 1)),
    Column("mse", "MSE", lambda n: n.similarity.mse, lambda n: gen(n.similarity.mse), True),
    Column("mre", "MRE", lambda n: n.similarity.mre, lambda n: num(n.similarity.mre), True),
    Column("sens", "sens.", lambda n: n.sensitivity_cosine, lambda n: num(n.sensitivity_cosine)),
    Column("int16", "int16 +", lambda n: n.int16_gain, lambda n: signed(n.int16_gain), True),
    Column("range", "w range", lambda n: n.weight_range_ratio,
           lambda n: gen(n.weight_range_ratio), True),
)  # fmt: skip
COLUMN_KEYS = tuple(c.key for c in COLUMNS)


def _sort_key(column: Column, reverse: bool) -> Callable[[NodeRow], tuple]:
    def key(n: NodeRow) -> tuple:
        v = column.value(n)
        missing = v is None or (isinstance(v, float) and math.isnan(v))
        # missing values last whichever the direction
        return (missing != reverse, v if not missing else 0)

    return key


class NodesView(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "next_sort", "Sort"),
        Binding("r", "reverse_sort", "Reverse"),
        Binding("slash", "search", "Search"),
        Binding("escape", "clear_filters", "Clear filters"),
        Binding("enter", "details", "Details", show=False),
        Binding("h", "plot('histogram')", "Plot"),
        Binding("w", "plot('weights')", "Weight ranges", show=False),
        Binding("g", "sensitivity_plot", "Sensitivity plot", show=False),
    ]

    def __init__(self, diagnosis: Diagnosis, wide: bool = False, width: int = 80, **kwargs) -> None:
        super().__init__(**kwargs)
        # what the other columns leave the names (numbers stay on screen at 80 columns)
        self.name_room = 28 if wide else max(16, width - 57)
        self.op_room = 18 if wide else 10
        self.nodes: tuple[NodeRow, ...] = diagnosis.analysis.nodes if diagnosis.analysis else ()
        columns = [c for c in COLUMNS if wide or not c.wide_only]
        # an int16 figure within the measured noise says so (a small negative is no loss)
        noise = cosine_noise(diagnosis)
        columns = [
            replace(c, show=lambda n: _int16_cell(n, noise)) if c.key == "int16" else c
            for c in columns
        ]
        # the converter's own per-node cosine (its log), beside ours
        conv = {r.node: r.converter_cosine for r in diagnosis.converter.rows} if getattr(
            diagnosis, "converter", None
        ) else {}  # fmt: skip
        if conv:
            columns.insert(
                [c.key for c in columns].index("cosine") + 1,
                Column("converter", "conv.", lambda n: conv.get(n.name),
                       lambda n: num(conv.get(n.name))),
            )  # fmt: skip
            self.name_room = max(16, self.name_room - 8)
        self.columns = tuple(columns)
        self.sort_column = "order"
        self.reverse = False
        self.only: tuple[str, ...] = ()  # names picked by a jump from another screen

    def compose(self):
        ops = sorted({n.op_type for n in self.nodes})
        kinds = sorted({_kind(n) for n in self.nodes})
        with Horizontal(id="node-filters"):
            yield Input(placeholder="name contains", id="node-search")
            yield Select([(o, o) for o in ops], prompt="any op", id="node-op")
            yield Select([(k, k) for k in kinds], prompt="any type", id="node-dtype")
            yield Input(placeholder="cosine below", id="node-below", type="number")
        table: DataTable = DataTable(id="nodes-table", cursor_type="row", zebra_stripes=True)
        for c in self.columns:
            table.add_column(c.label, key=c.key)
        yield table
        yield Static(id="nodes-status")

    def on_mount(self) -> None:
        self.refresh_rows()

    def _column(self, key: str) -> Column:
        return next(c for c in (*self.columns, *COLUMNS) if c.key == key)

    # ------------------------------------------------------------------ filtering

    def visible(self) -> list[NodeRow]:
        search = self.query_one("#node-search", Input).value.strip().lower()
        op = self.query_one("#node-op", Select).value
        kind = self.query_one("#node-dtype", Select).value
        below_text = self.query_one("#node-below", Input).value.strip()
        try:
            below = float(below_text) if below_text else None
        except ValueError:
            below = None
        rows = []
        for n in self.nodes:
            if self.only and n.name not in self.only:
                continue
            if search and search not in n.name.lower():
                continue
            if op != Select.NULL and n.op_type != op:
                continue
            if kind != Select.NULL and _kind(n) != kind:
                continue
            if below is not None and not n.similarity.cosine < below:
                continue
            rows.append(n)
        column = self._column(self.sort_column)
        rows.sort(key=_sort_key(column, self.reverse), reverse=self.reverse)
        return rows

    def refresh_rows(self, keep_cursor: bool = True) -> None:
        """Rebuild the rows; the cursor stays on its node (filters) or goes to the top (sort)."""
        table = self.query_one("#nodes-table", DataTable)
        current = self.current() if keep_cursor else None
        table.clear()
        rows = self.visible()
        for n in rows:
            cells = [
                Text(c.show(n), justify="right")
                if c.numeric
                else clip_middle(c.show(n), self.name_room)
                if c.key == "name"
                else clip(c.show(n), self.op_room)
                for c in self.columns
            ]
            table.add_row(*cells, key=n.name)
        if current is not None and current.name in {n.name for n in rows}:
            table.move_cursor(row=table.get_row_index(current.name), animate=False)
        self._status(len(rows))

    def _status(self, shown: int) -> None:
        label = self._column(self.sort_column).label
        text = Text(f"{shown} of {len(self.nodes)} nodes", style="bold")
        if self.only:
            text.append(f" (only {', '.join(self.only)})")
        text.append(f"  sorted by {label} {'desc' if self.reverse else 'asc'}", style="dim")
        if not self.nodes:
            text = Text("No node table in this diagnosis (the simulator did not run).")
        self.query_one("#nodes-status", Static).update(text)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.refresh_rows()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#nodes-table").focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.refresh_rows()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = str(event.column_key.value)
        self.sort_by(key, not self.reverse if key == self.sort_column else False)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_details()

    # ------------------------------------------------------------------ actions

    def sort_by(self, key: str, reverse: bool = False) -> None:
        self.sort_column = key
        self.reverse = reverse
        self.refresh_rows(keep_cursor=False)

    def show_only(self, names: tuple[str, ...]) -> None:
        self.only = names
        self.refresh_rows()
        self.query_one("#nodes-table").focus()

    def action_next_sort(self) -> None:
        keys = [c.key for c in self.columns]
        nxt = (
            keys[(keys.index(self.sort_column) + 1) % len(keys)]
            if self.sort_column in keys
            else keys[0]
        )
        # numbers where lower is worse read best ascending; order and names too
        self.sort_by(nxt, reverse=nxt in ("mse", "mre", "int16", "range"))

    def action_reverse_sort(self) -> None:
        self.sort_by(self.sort_column, not self.reverse)

    def action_search(self) -> None:
        self.query_one("#node-search", Input).focus()

    def action_clear_filters(self) -> None:
        self.only = ()
        self.query_one("#node-search", Input).value = ""
        self.query_one("#node-below", Input).value = ""
        self.query_one("#node-op", Select).clear()
        self.query_one("#node-dtype", Select).clear()
        self.refresh_rows()
        self.query_one("#nodes-table").focus()

    def current(self) -> NodeRow | None:
        table = self.query_one("#nodes-table", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((n for n in self.nodes if n.name == key), None)

    def action_details(self) -> None:
        node = self.current()
        if node is not None:
            self.app.push_screen(NodeDetailScreen(node))

    def action_plot(self, kind: str) -> None:
        """The current node's histogram or weight ranges; left/right walk the listed nodes."""
        node = self.current()
        if node is None:
            return
        rows = self.visible()
        index = next((i for i, n in enumerate(rows) if n.name == node.name), 0)
        self.app.push_screen(NodePlotScreen(rows, index, PlotKind(kind)))

    def action_sensitivity_plot(self) -> None:
        if self.nodes:
            self.app.push_screen(sensitivity_screen(self.nodes))


class NodeDetailScreen(ModalScreen[None]):
    """Everything measured about one node: metrics, sensitivity, range and histogram."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,enter", "dismiss", "Close")]

    def __init__(self, node: NodeRow) -> None:
        super().__init__()
        self.node = node

    def compose(self):
        n = self.node
        with Vertical(id="node-detail", classes="dialog"):
            yield Static(
                Text(f"{n.name}  ({n.op_type}, {_kind(n)})", style="bold"), id="node-title"
            )
            with VerticalScroll():
                yield Static(_node_body(n), id="node-body")
            yield Static(Text("esc close", style="dim"))


def _node_body(n: NodeRow) -> Group:
    s = n.similarity
    table = Table(box=None, pad_edge=False, show_header=False, padding=(0, 1))
    for _ in range(3):
        table.add_column(style="dim", no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
    table.add_row("cosine", num(s.cosine, 6), "SQNR dB", num(s.sqnr_db, 2), "MSE", gen(s.mse))
    table.add_row(
        "MRE", num(s.mre), "chebyshev", gen(s.chebyshev), "int16 gain", signed(n.int16_gain)
    )
    sens = Table(box=None, pad_edge=False, show_header=False, padding=(0, 1))
    for _ in range(3):
        sens.add_column(style="dim", no_wrap=True)
        sens.add_column(justify="right", no_wrap=True)
    sens.add_row(
        "all", num(n.sensitivity_cosine, 6), "weights", num(n.sensitivity_weights, 6),
        "activations", num(n.sensitivity_activations, 6),
    )  # fmt: skip
    rng = Text()
    rng.append("activations ", style="dim")
    rng.append(f"{gen(n.act_min)} .. {gen(n.act_max)}")
    rng.append("  99.99 % |x| ", style="dim")
    rng.append(gen(n.act_p9999))
    rng.append("  threshold ", style="dim")
    rng.append(gen(n.threshold))
    if n.weight_range_ratio is not None:
        rng.append("\nweights: widest / median channel |w| max ", style="dim")
        rng.append(gen(n.weight_range_ratio))
    parts: list = [
        Text("Similarity to float at ", style="bold").append(n.output, style="bold"),
        table,
        Text("Sensitivity: model output cosine with only this node quantized", style="bold"),
        sens,
        Text("Range", style="bold"),
        rng,
    ]
    if n.histogram:
        top = n.histogram_top or max(abs(n.act_min or 0.0), abs(n.act_max or 0.0))
        parts.append(Text("Histogram of |x| over calibration (log counts)", style="bold"))
        logs = [math.log10(1 + c) for c in n.histogram]
        parts.append(
            ColumnChart(
                logs, height=4, low=0.0, y_labels=(str(max(n.histogram)), "1"), x_first="0",
                x_last=f"{gen(top)}" if top else MISSING,
            )
        )  # fmt: skip
    return Group(*parts)
