"""PTQ304: output operators whose fall-back to the CPU (float) or int16 measurably helps."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.policy import MAJOR_COSINE_GAIN, MIN_GAIN, NO_INT16_MARCH
from ptqtui.quant.noise import within_noise
from ptqtui.remedy import DType, NodeChange, Placement, Remedy, SettingsDelta

if TYPE_CHECKING:
    from ptqtui.analysis.results import Analysis, NodeRow
    from ptqtui.check.context import Context

TAIL = 2  # reference: only the last 1-2 output operators go to the CPU

RULE = RuleInfo(
    code="PTQ304",
    name="sensitive-tail",
    category="numerics",
    severity=Severity.MINOR,
    title="An output operator loses accuracy in int8",
    why="The last operators decide the result directly; their int8 error is not averaged out "
    "by later layers. Running them in float (CPU) or int16 measurably helps.",
    fix="Move the last 1-2 operators to the CPU (calibration_parameters.run_on_cpu, or "
    "node_info ON: CPU) or run them in int16 (node_info InputType/OutputType int16).",
    needs=("analysis",),
    example="head/Gemm on the CPU: output cosine 0.9871 -> 0.9963; int16 gains 0.0051",
)


def tail_nodes(analysis: Analysis) -> list[NodeRow]:
    """The last TAIL quantized nodes still on the BPU, output first."""
    ordered = sorted(analysis.nodes, key=lambda n: -n.topo_index)
    return [n for n in ordered[:TAIL] if n.placement == "BPU"]


def check(ctx: Context) -> list[Finding]:
    analysis: Analysis = ctx.analysis
    tail = tail_nodes(analysis)
    if not tail:
        return []
    sim = ctx.maybe("sim")
    base = _measure(sim, None)
    config = ctx.maybe("config")
    int16_ok = config is None or config.march not in NO_INT16_MARCH
    out = []
    for n in tail:
        gains: list[tuple[str, float, str, NodeChange]] = []
        cpu = _measure(sim, n.name)
        noise = MIN_GAIN
        if base is not None and cpu is not None:
            noise = max(noise, base.noise or 0.0, cpu.noise or 0.0)
        if int16_ok and n.int16_gain is not None and not math.isnan(n.int16_gain):
            gains.append(
                (
                    "int16",
                    n.int16_gain,
                    # a small negative gain is labelled: within the noise it is no loss
                    f"int16 gains {n.int16_gain:.4f} output cosine"
                    + (" (within noise)" if within_noise(n.int16_gain, noise) else ""),
                    NodeChange(n.name, dtype=DType.INT16),
                )
            )
        if base is not None and cpu is not None:
            delta = cpu.similarity.cosine - base.similarity.cosine
            gains.append(
                (
                    "CPU",
                    delta,
                    f"on the CPU: output cosine {base.similarity.cosine:.4f} -> "
                    f"{cpu.similarity.cosine:.4f}",
                    NodeChange(n.name, placement=Placement.CPU),
                )
            )
        helpful = [g for g in gains if g[1] > noise]
        if not helpful:
            continue
        best = max(helpful, key=lambda g: g[1])
        measured = "; ".join(g[2] for g in gains)
        out.append(
            RULE.finding(
                f"output operator {n.name} ({n.op_type}) gains from {best[0]}: {measured}",
                Evidence(
                    "model output cosine, only this node quantized",
                    f"{n.sensitivity_cosine:.5f}" if n.sensitivity_cosine is not None else "n/a",
                    where=f"node {n.name}",
                ),
                Evidence("noise of the measurement (cosine)", f"{noise:.5f}"),
                severity=Severity.MAJOR if best[1] >= MAJOR_COSINE_GAIN else Severity.MINOR,
                measured=measured,
                related=(n.name,),
                remedy=Remedy(settings=SettingsDelta(nodes=(best[3],))),  # the larger gain
            )
        )
    return out


def _measure(sim: Any, cpu_node: str | None) -> Any:
    """The simulator's measure of the configured scheme (with `cpu_node` on the CPU)."""
    if sim is None or not hasattr(sim, "measure") or not hasattr(sim, "settings"):
        return None
    settings = sim.settings
    if cpu_node is not None:
        settings = dataclasses.replace(
            settings,
            run_on_cpu=(*settings.run_on_cpu, cpu_node),
            run_on_bpu=tuple(x for x in settings.run_on_bpu if x != cpu_node),
        )
    # the output cosine on the analysis samples only: no task agreement, no labels
    return sim.measure(settings, eval_limit=0, similarity_only=True)
