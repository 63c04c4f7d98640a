"""Column charts drawn with block characters: legible in 256 colours and in NO_COLOR."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style

_EIGHTHS = " ▁▂▃▄▅▆▇█"


def _bucket(values: Sequence[float], width: int, how: str) -> list[float]:
    """Shrink `values` to at most `width` columns (min or sum of each run)."""
    if len(values) <= width:
        return list(values)
    out = []
    for i in range(width):
        lo = i * len(values) // width
        hi = max(lo + 1, (i + 1) * len(values) // width)
        part = [v for v in values[lo:hi] if not math.isnan(v)]
        if not part:
            out.append(math.nan)
        else:
            out.append(sum(part) if how == "sum" else min(part))
    return out


@dataclass
class ColumnChart:
    """Vertical columns for `values`, scaled from `low` to `high`, with a labelled y axis."""

    values: Sequence[float]
    height: int = 6
    low: float | None = None
    high: float | None = None
    bucket: str = "min"  # how to merge columns when there are more values than room
    y_format: str = "{:.4g}"
    x_first: str = ""
    x_last: str = ""
    style: str = "bold"
    y_labels: tuple[str, str] | None = None  # (top, bottom), instead of y_format

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        finite = [v for v in self.values if not math.isnan(v)]
        if not finite:
            yield Segment("(nothing measured)\n")
            return
        low = min(finite) if self.low is None else self.low
        high = max(finite) if self.high is None else self.high
        if high <= low:
            high = low + 1e-12
        labels = list(self.y_labels or (self.y_format.format(high), self.y_format.format(low)))
        axis = max(len(s) for s in labels) + 1
        room = max(4, options.max_width - axis - 1)
        cols = _bucket(self.values, room, self.bucket)
        col_width = max(1, min(4, room // max(1, len(cols))))
        gap = 1 if col_width >= 3 else 0
        bar = col_width - gap
        levels = [
            0
            if math.isnan(v)
            else round((min(max(v, low), high) - low) / (high - low) * self.height * 8)
            for v in cols
        ]
        levels = [
            max(1, lv) if not math.isnan(v) else 0 for lv, v in zip(levels, cols, strict=True)
        ]
        style = Style.parse(self.style)
        dim = Style(dim=True)
        for row in range(self.height - 1, -1, -1):
            label = labels[0] if row == self.height - 1 else labels[1] if row == 0 else ""
            yield Segment(label.rjust(axis - 1) + " ┤" if label else " " * axis + "│", dim)
            chunks = []
            for lv in levels:
                cell = lv - row * 8
                ch = "█" if cell >= 8 else _EIGHTHS[cell] if cell > 0 else " "
                chunks.append(ch * bar + " " * gap)
            yield Segment("".join(chunks).rstrip(), style)
            yield Segment.line()
        width = len(levels) * col_width
        yield Segment(" " * axis + "└" + "─" * width, dim)
        yield Segment.line()
        if self.x_first or self.x_last:
            pad = max(1, width - len(self.x_first) - len(self.x_last))
            yield Segment(" " * (axis + 1) + self.x_first + " " * pad + self.x_last, dim)
            yield Segment.line()
