"""PTQ305: no single culprit, the loss is spread along the graph."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ptqtui.analysis.results import AnalysisStage
from ptqtui.check.context import MissingFact
from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo

if TYPE_CHECKING:
    from ptqtui.analysis.results import Analysis
    from ptqtui.check.context import Context

MIN_LOSS = 0.005  # output cosine lost with every node int8: below this there is little to spread
MINOR_LOSS = 0.01  # above this the accumulation is worth acting on (whole-model settings, QAT)
FEW = 3  # the most sensitive nodes considered "single culprits"
EXPLAINED_SHARE = 0.5  # ... which must explain at least this share of the loss to be culprits

RULE = RuleInfo(
    code="PTQ305",
    name="error-accumulation",
    category="numerics",
    severity=Severity.INFO,
    title="The quantization error accumulates along the graph",
    why="No node is sensitive on its own; small errors compound layer after layer, so moving "
    "single nodes to int16 or the CPU helps little.",
    fix="Prefer whole-model settings (per_channel, calibration method and percentile); if still "
    "short, quantization-aware training.",
    needs=("analysis",),
    example="output cosine falls 0.9998 -> 0.9861 over 48 nodes; the 3 most sensitive nodes "
    "explain 18 % of the loss",
)


def check(ctx: Context) -> list[Finding]:
    analysis: Analysis = ctx.analysis
    if not analysis.complete(AnalysisStage.SENSITIVITY, AnalysisStage.CURVE):
        raise MissingFact("sensitivity or curve not measured in full (time budget)")
    curve = [p for p in analysis.curve if not math.isnan(p.cosine)]
    rows = [
        n
        for n in analysis.nodes
        if n.sensitivity_cosine is not None and not math.isnan(n.sensitivity_cosine)
    ]
    if len(curve) < 2 or not rows:
        return []
    total = 1.0 - curve[-1].cosine
    if total < MIN_LOSS:
        return []
    top = sorted(rows, key=lambda n: n.sensitivity_cosine or 1.0)[:FEW]
    explained = sum(1.0 - (n.sensitivity_cosine or 1.0) for n in top)
    share = explained / total
    if share >= EXPLAINED_SHARE:
        return []
    steps = [curve[i].cosine - curve[i + 1].cosine for i in range(len(curve) - 1)]
    biggest = max(steps) if steps else 0.0
    quarter = [curve[min(len(curve) - 1, k * (len(curve) - 1) // 4)] for k in range(5)]
    shape = ", ".join(f"#{p.index} {p.cosine:.4f}" for p in quarter)
    return [
        RULE.finding(
            f"output cosine falls to {curve[-1].cosine:.4f} over {len(curve)} nodes; the "
            f"{len(top)} most sensitive nodes explain {100 * share:.0f} % of the loss",
            Evidence("accumulated error curve (node index, output cosine)", shape),
            Evidence(
                "largest drop at one node",
                f"{biggest:.4f} of {total:.4f}",
                "one node carrying most of the loss, for a single culprit",
            ),
            Evidence(
                "most sensitive nodes alone",
                ", ".join(f"{n.name} {n.sensitivity_cosine:.4f}" for n in top),
            ),
            severity=Severity.MINOR if total >= MINOR_LOSS else Severity.INFO,
            measured=f"loss {total:.4f} cosine, {100 * share:.0f} % explained by single nodes",
        )
    ]
