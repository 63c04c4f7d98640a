"""One self-contained HTML file: inline CSS, charts as inline SVG, readable offline."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import TextIO

from ptqtui.diagnosis import Diagnosis
from ptqtui.report.document import (
    Block,
    ChannelBars,
    Chart,
    Code,
    Heading,
    Histogram,
    KeyValues,
    Para,
    Table,
    Thumbnails,
    build,
)

CSS = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1000px; margin: 2em auto;
       padding: 0 1em; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.6em; border-bottom: 2px solid #333; padding-bottom: .2em; }
h2 { font-size: 1.3em; margin-top: 1.8em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.02em; margin: 1.2em 0 .3em; }
.sev-critical { color: #b00020; } .sev-major { color: #a15c00; }
.sev-minor { color: #00659e; } .sev-info { color: #666; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .15em 1em; margin: .3em 0; }
dt { color: #555; } dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: .5em 0; font-size: .93em; }
th, td { padding: .2em .6em; border-bottom: 1px solid #e3e3e3; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f5f5f7; padding: .6em .8em; overflow-x: auto; font-size: .9em; }
.add { color: #116329; } .del { color: #b00020; }
.muted { color: #666; } .strong { font-weight: 600; }
.note { color: #666; font-size: .88em; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
.thumbs { display: flex; flex-wrap: wrap; gap: 1em; margin: .5em 0; }
.thumbs figure { margin: 0; text-align: center; font-size: .85em; }
.thumbs img { width: 128px; height: auto; image-rendering: pixelated; border: 1px solid #ccc; }
"""


def write_html(diagnosis: Diagnosis, out: TextIO) -> None:
    render_html(build(diagnosis), f"ptqtui: {diagnosis.title or 'ptqtui diagnosis'}", out)


def render_html(blocks: Iterable[Block], title: str, out: TextIO) -> None:
    """The blocks as one self-contained HTML page."""
    out.write(
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
    )
    for block in blocks:
        out.write(_render(block) + "\n")
    out.write("</body>\n</html>\n")


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _render(block: object) -> str:
    if isinstance(block, Heading):
        cls = f' class="sev-{block.severity.value}"' if block.severity else ""
        return f"<h{block.level}{cls}>{_e(block.text)}</h{block.level}>"
    if isinstance(block, Para):
        cls = f' class="{block.style}"' if block.style else ""
        return f"<p{cls}>{_e(block.text)}</p>"
    if isinstance(block, KeyValues):
        items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in block.rows)
        return f"<dl>{items}</dl>"
    if isinstance(block, Table):

        def cell(tag: str, text: str, numeric: bool) -> str:
            cls = ' class="num"' if numeric else ""
            return f"<{tag}{cls}>{_e(text)}</{tag}>"

        head = "".join(cell("th", c, n) for c, n in zip(block.columns, block.numeric, strict=True))
        rows = "".join(
            "<tr>"
            + "".join(cell("td", c, n) for c, n in zip(r, block.numeric, strict=True))
            + "</tr>"
            for r in block.rows
        )
        note = f'<p class="note">{_e(block.note)}</p>' if block.note else ""
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{note}"
    if isinstance(block, Code):
        if block.lang == "diff":
            lines = []
            for line in block.text.splitlines():
                cls = "add" if line.startswith("+") else "del" if line.startswith("-") else ""
                lines.append(f'<span class="{cls}">{_e(line)}</span>' if cls else _e(line))
            return "<pre>" + "\n".join(lines) + "</pre>"
        return f"<pre>{_e(block.text)}</pre>"
    if isinstance(block, Chart):
        return _bars_svg(block) if block.kind == "bars" else _line_svg(block)
    if isinstance(block, Histogram):
        return _histogram_svg(block)
    if isinstance(block, ChannelBars):
        return _channels_svg(block)
    if isinstance(block, Thumbnails):
        return _thumbnails(block)
    raise TypeError(f"unknown block {block!r}")


def _range(chart: Chart) -> tuple[float, float]:
    values = [v for _, v in chart.points if v == v]
    low = min([*values, chart.reference if chart.reference is not None else 1.0, 1.0])
    high = 1.0
    if high - low < 1e-6:
        low = high - 1e-3
    return low, high


def _bars_svg(chart: Chart) -> str:
    low, high = _range(chart)
    label_w, bar_w, row_h = 220, 520, 20
    height = row_h * len(chart.points) + 40
    parts = [f'<figure><figcaption class="strong">{_e(chart.title)}</figcaption>'
             f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 70}" '
             f'height="{height}" role="img" aria-label="{_e(chart.title)}">']  # fmt: skip
    for i, (label, value) in enumerate(chart.points):
        y = 10 + i * row_h
        w = 0.0 if value != value else bar_w * (high - value) / (high - low)  # loss: longer = worse
        colour = "#b00020" if chart.reference is not None and value < chart.reference else "#4a7bd0"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{_e(label[-34:])}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{max(w, 1):.1f}" height="{row_h - 6}" '
            f'fill="{colour}"><title>{_e(label)}: {value:.5f}</title></rect>'
            f'<text x="{label_w + max(w, 1) + 4:.1f}" y="{y + 13}">{value:.4f}</text>'
        )
    end_label = f"{low:.4f}"
    if chart.reference is not None:
        x = label_w + bar_w * (high - chart.reference) / (high - low)
        if label_w + bar_w - x < 60:  # the threshold's label would cover the scale's end
            end_label = ""
        parts.append(
            f'<line x1="{x:.1f}" y1="6" x2="{x:.1f}" y2="{height - 24}" stroke="#333" '
            f'stroke-dasharray="4 3"/><text x="{x:.1f}" y="{height - 8}" text-anchor="middle">'
            f"{chart.reference:g}</text>"
        )
    parts.append(
        f'<text x="{label_w}" y="{height - 8}">1.0</text><text x="{label_w + bar_w}" '
        f'y="{height - 8}" text-anchor="end">{end_label}</text></svg>'
        f'<figcaption class="note">bar length: {_e(chart.y_label)} lost (1 - value); the dashed '
        f"line is the threshold</figcaption></figure>"
    )
    return "".join(parts)


def _line_svg(chart: Chart) -> str:
    low, high = _range(chart)
    left, width, top, height = 60, 640, 16, 220
    n = max(len(chart.points) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + width * i / n, top + height * (high - v) / (high - low)

    coords = [xy(i, v) for i, (_, v) in enumerate(chart.points) if v == v]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    parts = [f'<figure><figcaption class="strong">{_e(chart.title)}</figcaption>'
             f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 30}" '
             f'height="{top + height + 60}" role="img" aria-label="{_e(chart.title)}">'
             f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="#fafafa" '
             f'stroke="#ccc"/>']  # fmt: skip
    for frac in (0.0, 0.5, 1.0):
        v = high - frac * (high - low)
        y = top + frac * height
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.4f}</text>')
    if chart.reference is not None and low <= chart.reference <= high:
        _, y = xy(0, chart.reference)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + width}" y2="{y:.1f}" stroke="#b00020" '
            f'stroke-dasharray="4 3"/><text x="{left + width - 4}" y="{y - 4:.1f}" '
            f'text-anchor="end">{chart.reference:g}</text>'
        )
    parts.append(f'<polyline points="{path}" fill="none" stroke="#4a7bd0" stroke-width="2"/>')
    for (label, value), (x, y) in zip(chart.points, coords, strict=False):
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#4a7bd0">'
            f"<title>{_e(label)}: {value:.5f}</title></circle>"
        )
    first, last = chart.points[0][0], chart.points[-1][0]
    parts.append(
        f'<text x="{left}" y="{top + height + 16}">{_e(first[-30:])}</text>'
        f'<text x="{left + width}" y="{top + height + 16}" text-anchor="end">{_e(last[-30:])}'
        f'</text><text x="{left + width / 2}" y="{top + height + 40}" text-anchor="middle">'
        f"nodes in topological order; y: {_e(chart.y_label)}</text></svg></figure>"
    )
    return "".join(parts)


def _histogram_svg(h: Histogram) -> str:
    """Log-count bars from 0 to `top`; each threshold a vertical line, the one in use red."""
    left, width, top, height = 50, 640, 30, 180
    logs = [math.log10(1 + c) for c in h.counts]
    ymax = max(max(logs, default=1.0), 1.0)
    n = max(len(h.counts), 1)
    bw = width / n

    def x_of(v: float) -> float:
        return left + width * min(max(v / h.top, 0.0), 1.0) if h.top > 0 else left

    parts = [f'<figure><figcaption class="strong">{_e(h.title)}</figcaption>'
             f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" '
             f'height="{top + height + 40}" role="img" aria-label="{_e(h.title)}">'
             f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="#fafafa" '
             f'stroke="#ccc"/>']  # fmt: skip
    for i, (count, v) in enumerate(zip(h.counts, logs, strict=True)):
        bh = height * v / ymax
        parts.append(
            f'<rect x="{left + i * bw:.1f}" y="{top + height - bh:.1f}" width="{bw:.1f}" '
            f'height="{bh:.1f}" fill="#7fa7e0"><title>{count}</title></rect>'
        )
    for d in range(int(ymax) + 1):
        y = top + height - height * d / ymax
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{10**d:g}</text>')
    for k, m in enumerate(sorted(h.marks, key=lambda m: m.value)):
        x = x_of(m.value)
        colour, dash = ("#b00020", "") if m.chosen else ("#555", ' stroke-dasharray="3 3"')
        y = top - 4 - 11 * (k % 2)  # labels alternate between two rows
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + height}" stroke="{colour}" '
            f'stroke-width="{2 if m.chosen else 1}"{dash}><title>{_e(m.label)}: {m.value:.5g}'
            f'</title></line><text x="{x:.1f}" y="{y}" text-anchor="middle" '
            f'style="fill:{colour}">{_e(m.label)}</text>'
        )
    parts.append(
        f'<text x="{left}" y="{top + height + 16}">0</text><text x="{left + width}" '
        f'y="{top + height + 16}" text-anchor="end">{h.top:.4g}</text>'
        f'<text x="{left + width / 2}" y="{top + height + 34}" text-anchor="middle">|x|; y: '
        f"count (log); red: the threshold in use</text></svg>"
    )
    rows = "".join(
        f'<tr><td>{_e(m.label)}</td><td class="num">{m.value:.5g}</td>'
        f"<td>{'in use' if m.chosen else ''}</td></tr>"
        for m in h.marks
    )
    parts.append(
        f'<table><thead><tr><th>method</th><th class="num">threshold</th><th></th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )
    if h.note:
        parts.append(f'<figcaption class="note">{_e(h.note)}</figcaption>')
    return "".join(parts) + "</figure>"


def _channels_svg(c: ChannelBars) -> str:
    left, width, top, height = 50, 640, 12, 180
    n = max(len(c.values), 1)
    bw = width / n
    finite = [v for v in (c.tensor_max, *c.values) if math.isfinite(v)]
    high = max(*finite, 1e-12) * 1.05  # a damaged report's NaN draws no bar, not a crash
    parts = [f'<figure><figcaption class="strong">{_e(c.title)}</figcaption>'
             f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" '
             f'height="{top + height + 40}" role="img" aria-label="{_e(c.title)}">'
             f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="#fafafa" '
             f'stroke="#ccc"/>']  # fmt: skip
    gap = 1.0 if bw >= 4 else 0.0
    for i, v in enumerate(c.values):
        bh = height * v / high if math.isfinite(v) else 0.0
        parts.append(
            f'<rect x="{left + i * bw:.1f}" y="{top + height - bh:.1f}" '
            f'width="{max(bw - gap, 0.5):.1f}" height="{bh:.1f}" fill="#7fa7e0">'
            f"<title>channel {i}: {v:.5g}</title></rect>"
        )
    y = top + height - height * (c.tensor_max if math.isfinite(c.tensor_max) else 0.0) / high
    parts.append(
        f'<line x1="{left}" y1="{y:.1f}" x2="{left + width}" y2="{y:.1f}" stroke="#b00020" '
        f'stroke-width="2"/><text x="{left + width - 4}" y="{y - 4:.1f}" text-anchor="end" '
        f'style="fill:#b00020">per-tensor max {c.tensor_max:.4g}</text>'
        f'<text x="{left - 6}" y="{top + height + 4}" text-anchor="end">0</text>'
        f'<text x="{left}" y="{top + height + 16}">0</text><text x="{left + width}" '
        f'y="{top + height + 16}" text-anchor="end">{len(c.values) - 1}</text>'
        f'<text x="{left + width / 2}" y="{top + height + 34}" text-anchor="middle">output '
        f"channel; y: max |w|</text></svg>"
    )
    if c.note:
        parts.append(f'<figcaption class="note">{_e(c.note)}</figcaption>')
    return "".join(parts) + "</figure>"


def _thumbnails(t: Thumbnails) -> str:
    figures = "".join(
        f'<figure><img src="data:image/png;base64,{item.png}" width="128" '
        f'alt="{_e(item.caption)}" title="{item.width}x{item.height} pixels">'
        f"<figcaption>{_e(item.caption)}</figcaption></figure>"
        for item in t.items
    )
    note = f'<p class="note">{_e(t.note)}</p>' if t.note else ""
    return f'<h3>{_e(t.title)}</h3><div class="thumbs">{figures}</div>{note}'
