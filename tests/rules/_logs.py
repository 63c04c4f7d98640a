"""Converter logs for the PTQ4xx rule tests: the fixtures, and small logs written inline."""

from __future__ import annotations

from pathlib import Path

from ptqtui.check.context import Context
from ptqtui.inputs.mapper_log import load_mapper_log, parse_mapper_log

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "logs"
PREFIX = "2025-01-01 10:00:00,000 file: x.py func: x line No: 1 "


def fixture_context(name: str, **kwargs: object) -> Context:
    return Context(mapper_log=load_mapper_log(LOGS / name), **kwargs)  # type: ignore[arg-type]


def node_table(*rows: tuple[str, ...]) -> list[str]:
    """A newer-generation node table (Node ON Subgraph Type Cosine Threshold DataType)."""
    cols = ("Node", "ON", "Subgraph", "Type", "Cosine Similarity", "Threshold", "DataType")
    widths = [max(len(c), *(len(r[i]) for r in rows)) + 2 for i, c in enumerate(cols)]

    def fmt(cells: tuple[str, ...]) -> str:
        return "".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))

    return [PREFIX + "The main quantized node information:", fmt(cols), "-" * 20] + [
        fmt(r) for r in rows
    ]


def output_table(*rows: tuple[str, float]) -> list[str]:
    lines = [PREFIX + "The quantized model output:", "=" * 20]
    lines.append("Output  Cosine Similarity  L1 Distance  L2 Distance  Chebyshev Distance")
    lines.append("-" * 20)
    lines += [f"{name}  {cos}  0.1  0.01  1.5" for name, cos in rows]
    return lines


def log_context(*lines: str, **kwargs: object) -> Context:
    text = "\n".join(lines) + "\n"
    return Context(mapper_log=parse_mapper_log(text, Path("hb_mapper_makertbin.log")), **kwargs)  # type: ignore[arg-type]
