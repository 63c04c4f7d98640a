"""Text report through Rich: fits the terminal width, plain when piped or NO_COLOR is set."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from typing import TextIO

from rich import box
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from ptqtui.check.findings import Severity
from ptqtui.diagnosis import Diagnosis
from ptqtui.report.document import (
    Block,
    Chart,
    Code,
    Heading,
    KeyValues,
    Para,
    Table,
    build,
    text_pictures,
)

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.MAJOR: "bold yellow",
    Severity.MINOR: "cyan",
    Severity.INFO: "dim",
}
BAR_WIDTH = 30
MIN_LAST_CELL = 8  # a table's last text column (notes, placement) keeps this much room


def write_text(diagnosis: Diagnosis, out: TextIO, *, width: int = 100) -> None:
    render_text(build(diagnosis), out, width=width)


def render_text(blocks: Iterable[Block], out: TextIO, *, width: int = 100) -> None:
    """The blocks as terminal text (colour only on a terminal without NO_COLOR)."""
    colour = _wants_colour(out)
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=max(width, 60),
        color_system="auto" if colour else None,
        force_terminal=colour,
        no_color=not colour,
        highlight=False,
        emoji=False,
        soft_wrap=False,
    )
    for block in blocks:
        _render(console, block)
    text = buffer.getvalue()
    if not colour:  # Rich pads grids to the width; a pipe or a file does not want that
        text = "\n".join(line.rstrip() for line in text.split("\n"))
    out.write(text)


def _wants_colour(out: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


def _render(console: Console, block: object) -> None:
    if isinstance(block, Heading):
        style = SEVERITY_STYLE.get(block.severity, "bold") if block.severity else "bold"
        if block.level == 1:
            console.print(Text(block.text, style="bold"))
            console.print("=" * min(len(block.text), console.width))
        elif block.level == 2:
            console.print()
            console.print(Text(block.text, style="bold underline"))
        else:
            console.print()
            console.print(Text(block.text, style=style))
    elif isinstance(block, Para):
        style = {"muted": "dim", "strong": "bold"}.get(block.style, "")
        console.print(Text(block.text, style=style))
    elif isinstance(block, KeyValues):
        grid = RichTable.grid(padding=(0, 2))
        grid.add_column(style="dim", overflow="fold", max_width=26)
        grid.add_column(overflow="fold")
        for key, value in block.rows:
            grid.add_row(Text(key), Text(value))
        console.print(grid)
    elif isinstance(block, Table):
        table = RichTable(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
                          collapse_padding=True)  # fmt: skip
        first = max((len(r[0]) for r in block.rows), default=8)
        for i, (name, numeric) in enumerate(zip(block.columns, block.numeric, strict=True)):
            if i == 0:  # names (nodes, methods) matter most: keep them whole where possible
                table.add_column(name, overflow="fold", min_width=min(first, 24))
            elif numeric:
                table.add_column(name, justify="right", no_wrap=True)
            elif i == len(block.columns) - 1:  # a trailing note wraps, it is read whole
                table.add_column(name, overflow="fold", min_width=MIN_LAST_CELL)
            else:
                table.add_column(name, overflow="ellipsis", no_wrap=True, max_width=12)
        for row in block.rows:
            table.add_row(*(Text(cell) for cell in row))
        console.print(table)
        if block.note:
            console.print(Text(block.note, style="dim"))
    elif isinstance(block, Code):
        for line in block.text.splitlines():
            style = ""
            if block.lang == "diff":
                style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
            console.print(Text("    " + line, style=style), overflow="fold")
    elif isinstance(block, Chart):
        _chart(console, block)
    elif (lines := text_pictures(block)) is not None:
        console.print(Text(getattr(block, "title", ""), style="bold"))
        for line in lines:
            console.print(Text("  " + line), overflow="ellipsis", no_wrap=True)


def _chart(console: Console, chart: Chart) -> None:
    """A horizontal bar per point, scaled between the lowest value and 1."""
    console.print(Text(chart.title, style="bold"))
    values = [v for _, v in chart.points]
    low = min([*values, chart.reference or 1.0])
    span = max(1.0 - low, 1e-9)
    label_width = min(max(len(label) for label, _ in chart.points), 28)
    for label, value in chart.points:
        if value != value:  # NaN: could not be measured
            filled = 0
        elif chart.kind == "bars":  # the loss: the longer, the worse
            filled = round(BAR_WIDTH * (1.0 - value) / span)
        else:  # a curve: the level
            filled = round(BAR_WIDTH * (value - low) / span)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        short = label if len(label) <= label_width else "..." + label[-(label_width - 3) :]
        console.print(Text(f"  {short:<{label_width}} {bar} {value:.4f}"), overflow="ellipsis")
    lost = "bar: 1 - value, the longer the worse; " if chart.kind == "bars" else ""
    ref = f"; threshold {chart.reference:g}" if chart.reference is not None else ""
    console.print(Text(f"  {lost}scale {low:.4f} .. 1.0000{ref}", style="dim"))
