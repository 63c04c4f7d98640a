"""Markdown report: renders on code-hosting sites (GitHub-flavoured tables and fences)."""

from __future__ import annotations

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
    text_pictures,
)


def write_markdown(diagnosis: Diagnosis, out: TextIO) -> None:
    render_markdown(build(diagnosis), out)


def render_markdown(blocks: Iterable[Block], out: TextIO) -> None:
    for block in blocks:
        out.write(_render(block) + "\n")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _render(block: object) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}\n"
    if isinstance(block, Para):
        return {"muted": f"_{block.text}_", "strong": f"**{block.text}**"}.get(
            block.style, block.text
        ) + "\n"
    if isinstance(block, KeyValues):
        return "\n".join(f"- **{_cell(k)}**: {_cell(v)}" for k, v in block.rows) + "\n"
    if isinstance(block, Table):
        head = "| " + " | ".join(block.columns) + " |"
        rule = "|" + "|".join("---:" if n else "---" for n in block.numeric) + "|"
        rows = ["| " + " | ".join(_cell(c) for c in row) + " |" for row in block.rows]
        note = f"\n_{block.note}_\n" if block.note else ""
        return "\n".join([head, rule, *rows]) + "\n" + note
    if isinstance(block, Code):
        return f"```{block.lang}\n{block.text.rstrip()}\n```\n"
    if isinstance(block, Chart):
        lines = [f"**{block.title}**", "", "| | " + block.y_label + " |", "|---|---:|"]
        lines += [f"| {_cell(label)} | {value:.4f} |" for label, value in block.points]
        return "\n".join(lines) + "\n"
    if isinstance(block, Histogram):
        rows = [f"| {_cell(m.label)} | {m.value:.5g} | {'in use' if m.chosen else ''} |"
                for m in block.marks]  # fmt: skip
        table = ["| method | threshold | |", "|---|---:|---|", *rows]
        fence = "\n".join(text_pictures(block) or [])
        return f"**{block.title}**\n\n" + "\n".join(table) + f"\n\n```text\n{fence}\n```\n"
    if isinstance(block, ChannelBars):
        fence = "\n".join(text_pictures(block) or [])
        return f"**{block.title}**\n\n```text\n{fence}\n```\n"
    if isinstance(block, Thumbnails):
        rows = [f"| {_cell(i.caption)} | {i.width}x{i.height} |" for i in block.items]
        note = f"\n_{block.note}; the pictures are in the HTML report_\n"
        return (
            f"**{block.title}**\n\n| sample | pixels |\n|---|---:|\n"
            + "\n".join(rows)
            + "\n"
            + note
        )
    raise TypeError(f"unknown block {block!r}")
