"""`ptqtui diff A.json B.json`: what changed between two saved diagnoses."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import TextIO

from ptqtui.check.findings import Finding
from ptqtui.diagnosis import Diagnosis
from ptqtui.report.document import fmt, pct

MOVED = 0.001  # a node's cosine must change by more than this to count as moved


@dataclass(frozen=True, slots=True)
class MetricChange:
    name: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class NodeMove:
    node: str
    before: float | None
    after: float | None


@dataclass(frozen=True, slots=True)
class DiagnosisDiff:
    fixed: tuple[str, ...]  # "[critical] PTQ001: ..."
    new: tuple[str, ...]
    kept: int
    metrics: tuple[MetricChange, ...]
    nodes: tuple[NodeMove, ...]  # by size of the move, largest first
    inputs: tuple[MetricChange, ...]  # files whose hash changed


def _key(f: Finding) -> tuple[str, str]:
    where = f.evidence[0].where if f.evidence and f.evidence[0].where else ""
    return f.code, where or (f.related[0] if f.related else "")


def _line(f: Finding) -> str:
    return f"[{f.severity.value}] {f.code}: {f.message}"


def compare(a: Diagnosis, b: Diagnosis) -> DiagnosisDiff:
    before = {_key(f): f for f in a.findings}
    after = {_key(f): f for f in b.findings}
    fixed = tuple(_line(f) for k, f in before.items() if k not in after)
    new = tuple(_line(f) for k, f in after.items() if k not in before)
    kept = sum(1 for k in after if k in before)
    metrics = []
    qa = a.analysis.quality if a.analysis else None
    qb = b.analysis.quality if b.analysis else None
    for name, get, show in (
        ("output cosine", lambda q: q.output_cosine, fmt),
        ("top-1 float", lambda q: q.top1_float, pct),
        ("top-1 quantized", lambda q: q.top1_quant, pct),
        ("top-1 agreement", lambda q: q.top1_agreement, pct),
        ("loss band", lambda q: q.band.value, str),
    ):
        va = get(qa) if qa else None
        vb = get(qb) if qb else None
        if va is not None or vb is not None:
            metrics.append(MetricChange(name, show(va) if va is not None else "-",
                                        show(vb) if vb is not None else "-"))  # fmt: skip
    na = {n.name: n.similarity.cosine for n in (a.analysis.nodes if a.analysis else ())}
    nb = {n.name: n.similarity.cosine for n in (b.analysis.nodes if b.analysis else ())}
    moves = []
    for name in sorted(set(na) | set(nb)):
        ca, cb = na.get(name), nb.get(name)
        missing = ca is None or cb is None
        if missing or (not (math.isnan(ca) and math.isnan(cb)) and abs(cb - ca) > MOVED):
            moves.append(NodeMove(name, ca, cb))
    moves.sort(key=lambda m: -abs((m.after or 0.0) - (m.before or 0.0)))
    files_a = {f.role + " " + f.path: f.sha256 for f in a.files}
    inputs = tuple(
        MetricChange(
            f"{f.role} {f.path}",
            (files_a.get(f.role + " " + f.path) or "-")[:12],
            (f.sha256 or "-")[:12],
        )
        for f in b.files
        if files_a.get(f.role + " " + f.path) != f.sha256
    )
    return DiagnosisDiff(fixed, new, kept, tuple(metrics), tuple(moves), inputs)


def write_diff(diff: DiagnosisDiff, fmt_name: str, out: TextIO, *, names: tuple[str, str]) -> None:
    if fmt_name == "json":
        json.dump({"schema": "ptqtui.diff/1", **asdict(diff)}, out, indent=2)
        out.write("\n")
        return
    md = fmt_name == "md"
    h = "## " if md else ""
    item = "- " if md else "  "
    lines = [f"{'# ' if md else ''}ptqtui diff: {names[0]} -> {names[1]}", ""]
    lines.append(f"{h}Findings: {len(diff.fixed)} fixed, {len(diff.new)} new, {diff.kept} kept")
    lines += [f"{item}fixed {t}" for t in diff.fixed]
    lines += [f"{item}new   {t}" for t in diff.new]
    lines += ["", f"{h}Metrics (before -> after)"]
    lines += [f"{item}{m.name}: {m.before} -> {m.after}" for m in diff.metrics] or [
        f"{item}no simulation in either run"
    ]
    lines += ["", f"{h}Nodes that moved (output cosine change > {MOVED})"]
    lines += [f"{item}{m.node}: {fmt(m.before)} -> {fmt(m.after)}" for m in diff.nodes[:20]] or [
        f"{item}none"
    ]
    if diff.inputs:
        lines += ["", f"{h}Inputs that changed (sha256)"]
        lines += [f"{item}{m.name}: {m.before} -> {m.after}" for m in diff.inputs]
    out.write("\n".join(lines) + "\n")
