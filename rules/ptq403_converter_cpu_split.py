"""PTQ403: nodes the converter put on the CPU, and the BPU subgraphs they split the model into."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo

if TYPE_CHECKING:
    from ptqtui.check.context import Context

RULE = RuleInfo(
    code="PTQ403",
    name="converter-cpu-split",
    category="converter",
    severity=Severity.MINOR,
    title="Nodes on the CPU split the BPU part of the model into several subgraphs",
    why="Each CPU node in the middle of the model costs a dequantize/quantize round trip and a "
    "BPU-CPU hand-over per frame; the int8 boundaries add error. CPU nodes only at the "
    "outputs cost little.",
    fix="Check why each node is on the CPU (hb_mapper checker): an unsupported op or shape can "
    "often be rewritten; a node_info ON: BPU entry moves a supported one back.",
    needs=("mapper_log",),
    example="[minor] PTQ403 1 node on the CPU (/mix/concat/Concat) splits the BPU part into 2 "
    "subgraphs (hb_mapper_makertbin.log line 49)",
)


def check(ctx: Context) -> list[Finding]:
    log = ctx.mapper_log
    cpu = log.cpu_nodes
    if not cpu:
        return []
    names = ", ".join(n.name for n in cpu[:5]) + (" ..." if len(cpu) > 5 else "")
    subgraphs = len(log.subgraphs)
    where = log.where(cpu[0].line)
    evidence = (
        Evidence("nodes on the CPU", f"{len(cpu)}: {names}", None, where),
        Evidence("BPU subgraphs", str(subgraphs), "1", log.where(log.node_table_line)),
    )
    if subgraphs > 1:
        return [
            RULE.finding(
                f"{len(cpu)} node(s) on the CPU ({names}) split the BPU part into {subgraphs} "
                f"subgraphs ({where})",
                *evidence,
            )
        ]
    return [
        RULE.finding(
            f"{len(cpu)} node(s) on the CPU ({names}), outside the single BPU subgraph ({where})",
            *evidence,
            severity=Severity.INFO,
            fix="Nothing to do for accuracy: CPU nodes at the ends run in float.",
        )
    ]
