"""PTQ407: an output the converter's int8 model no longer produces at all (cosine near 0)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ptqtui.rules._converter import is_model_node, op_label, output_producer

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.policy import COLLAPSED_COSINE
from ptqtui.remedy import NodeChange, Placement, Remedy, SettingsDelta

if TYPE_CHECKING:
    from ptqtui.check.context import Context

RULE = RuleInfo(
    code="PTQ407",
    name="converter-collapsed-output",
    category="converter",
    severity=Severity.CRITICAL,
    title="An output collapsed in the converted model (cosine near 0)",
    why="A cosine near 0 means the quantized output has nothing of the float one: typically a "
    "Sigmoid or Softmax at the end whose 0..1 output, or whose wide input, int8 cannot hold "
    "at the scale chosen. The model's answers on that output are noise.",
    fix="Run the output operator on the CPU (node_info {'NODE': {'ON': 'CPU'}}: 1-2 tail "
    "operators at most), or in int16 (InputType/OutputType int16), or remove it from the "
    "model and apply it in post-processing.",
    needs=("mapper_log",),
    example="[critical] PTQ407 output probs collapsed: the converter measured cosine 0.000021 "
    "(Softmax /head/softmax/Softmax) (hb_mapper_makertbin.log line 63)",
)

SQUASHING_OPS = ("Sigmoid", "Softmax", "Lut")  # Sigmoid becomes a look-up table (HzLut)


def check(ctx: Context) -> list[Finding]:
    log = ctx.mapper_log
    findings = []
    for out in log.outputs:
        if out.cosine >= COLLAPSED_COSINE:
            continue
        node, op_type = output_producer(ctx, log, out)
        label = op_label(op_type)
        what = f" ({label} {node})" if node else ""
        where = log.where(out.line)
        finding = RULE.finding(
            f"output {out.name} collapsed: the converter measured cosine {out.cosine:.6f}{what} "
            f"({where})",
            Evidence(
                f"converter cosine of output {out.name}",
                f"{out.cosine:.6f}",
                "close to 1 (>= 0.99 normal)",
                where,
            ),
        )
        if node is not None and is_model_node(node):
            fix = f"Run {node} on the CPU: node_info {{'{node}': {{'ON': 'CPU'}}}}" + (
                " (a squashing op: or drop it and apply it in post-processing)"
                if label in SQUASHING_OPS
                else ""
            )
            delta = SettingsDelta(nodes=(NodeChange(node, placement=Placement.CPU),))
            finding = dataclasses.replace(finding, fix=fix, remedy=Remedy(settings=delta))
        findings.append(finding)
    return findings
