"""PTQ405: where the converter's per-node cosine drops."""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import TYPE_CHECKING

from ptqtui.rules._converter import is_model_node, op_label

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.remedy import DType, NodeChange, Remedy, SettingsDelta

if TYPE_CHECKING:
    from ptqtui.check.context import Context
    from ptqtui.inputs.mapper_log import LogNode

RULE = RuleInfo(
    code="PTQ405",
    name="converter-cosine-drop",
    category="converter",
    severity=Severity.MINOR,
    title="The converter's per-node cosine drops sharply at a few nodes",
    why="A node whose output cosine falls well below the node before it loses precision "
    "itself (a wide range, a long tail, an op int8 handles badly); the loss then carries "
    "to every node after it.",
    fix="Try the node in int16 (node_info InputType/OutputType int16), or a calibration method "
    "that keeps its range (max_percentile, kl); ptqtui MODEL -c CONFIG measures both.",
    needs=("mapper_log",),
    example="[minor] PTQ405 the converter's cosine drops by 0.036 at /b4/pw/conv/Conv "
    "(Conv, 0.9544 after 0.9902) (hb_mapper_makertbin.log line 45)",
)

DROP = 0.01  # a fall of a point of cosine from one node to the next is far above the
# per-node noise of the public logs (consecutive rows differ by ~0.001-0.005)
BIG_DROP = 0.05  # five points at one node: that node, not accumulation, loses the precision
SHOWN = 3  # the sharpest drops reported


def drops(nodes: tuple[LogNode, ...]) -> list[tuple[float, LogNode, LogNode]]:
    """(fall, row before, row) where the cosine falls from the row before; sharpest first."""
    rows = [n for n in nodes if n.cosine is not None and not math.isnan(n.cosine)]
    falls = [
        (before.cosine - node.cosine, before, node)  # type: ignore[operator]
        for before, node in itertools.pairwise(rows)
    ]
    return sorted((f for f in falls if f[0] > 0), key=lambda f: -f[0])


def check(ctx: Context) -> list[Finding]:
    log = ctx.mapper_log
    simulated = ctx.maybe("analysis") is not None
    findings = []
    for fall, before, node in drops(log.nodes):
        if fall < DROP or len(findings) >= SHOWN:
            break
        where = log.where(node.line)
        finding = RULE.finding(
            f"the converter's cosine drops by {fall:.3f} at {node.name} ({op_label(node.type)}, "
            f"{node.cosine:.4f} after {before.cosine:.4f}) ({where})",
            Evidence(
                f"converter cosine of {node.name}",
                f"{node.cosine:.4f}",
                f"about {before.cosine:.4f} (as {before.name})",
                where,
            ),
            # in a full run the simulator's own node analysis ranks the nodes: context then
            severity=Severity.MINOR if fall >= BIG_DROP and not simulated else Severity.INFO,
        )
        if is_model_node(node.name) and node.on == "BPU":
            delta = SettingsDelta(nodes=(NodeChange(node.name, dtype=DType.INT16),))
            finding = dataclasses.replace(finding, remedy=Remedy(settings=delta))
        findings.append(finding)
    return findings
