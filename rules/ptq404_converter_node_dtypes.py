"""PTQ404: int16 and float nodes in the converter's table, and int16 requests it could not keep."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo

if TYPE_CHECKING:
    from ptqtui.check.context import Context

RULE = RuleInfo(
    code="PTQ404",
    name="converter-node-dtypes",
    category="converter",
    severity=Severity.INFO,
    title="Nodes the converter runs in int16 or float, and dtype requests it fell back on",
    why="int16 and float nodes cost speed and are where the config asked for precision; a "
    "requested int16 that the converter could not give falls back to int8, so the precision "
    "the config relies on is not there.",
    fix="For a fall-back, choose a neighbour the converter supports in int16 or run the node on "
    "the CPU (node_info ON: CPU); keep int16 and CPU nodes to the few that need them.",
    needs=("mapper_log",),
    example="[minor] PTQ404 the converter could not run input1 of /attn/MatMul_1 (MatMul) in "
    "int16 and fell back to int8 (hb_mapper_makertbin.log line 40)",
)


def check(ctx: Context) -> list[Finding]:
    log = ctx.mapper_log
    findings = []
    for f in log.fallbacks:
        where = log.where(f.line)
        findings.append(
            RULE.finding(
                f"the converter could not run {f.port} of {f.node} ({f.op_type}) in {f.dtype} "
                f"and fell back to int8 ({where})",
                Evidence(f"{f.port} dtype of {f.node}", "int8", f.dtype, where),
                severity=Severity.MINOR,
            )
        )
    wide = [n for n in log.nodes if n.on == "BPU" and n.dtype and "int16" in n.dtype]
    floats = [n for n in log.nodes if n.dtype and n.output_dtype == "float" and n.on == "BPU"]
    for kind, nodes in (("int16", wide), ("float", floats)):
        if not nodes:
            continue
        names = ", ".join(n.name for n in nodes[:5]) + (" ..." if len(nodes) > 5 else "")
        findings.append(
            RULE.finding(
                f"{len(nodes)} BPU node(s) in {kind}: {names} ({log.where(nodes[0].line)})",
                Evidence(
                    f"{kind} nodes on the BPU", str(len(nodes)), None, log.where(nodes[0].line)
                ),
            )
        )
    return findings
