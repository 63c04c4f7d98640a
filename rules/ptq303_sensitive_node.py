"""PTQ303: nodes whose quantization alone drops the output cosine below the threshold."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.policy import MAJOR_COSINE_GAIN, MIN_GAIN, NO_INT16_MARCH, SENSITIVE_COSINE
from ptqtui.remedy import DType, NodeChange, Remedy, SettingsDelta

if TYPE_CHECKING:
    from ptqtui.analysis.results import Analysis
    from ptqtui.check.context import Context

MAJOR_LOSS = MAJOR_COSINE_GAIN  # one node alone costing this much output cosine
MAX_FINDINGS = 5

RULE = RuleInfo(
    code="PTQ303",
    name="sensitive-node",
    category="numerics",
    severity=Severity.MINOR,
    title="A node whose quantization alone costs output accuracy",
    why="Quantizing this node alone (everything else float) already drops the output cosine "
    "below the converter's 0.999; int8 loses what the node's computation needs.",
    fix="Run the node in int16: model_parameters.node_info {node: {'InputType': 'int16', "
    "'OutputType': 'int16'}} (or on the CPU if it is one of the last operators).",
    needs=("analysis",),
    example="head/Gemm alone: output cosine 0.9937 (< 0.999); int16 gains 0.0051",
)


def check(ctx: Context) -> list[Finding]:
    analysis: Analysis = ctx.analysis
    sensitive = sorted(
        (
            n
            for n in analysis.nodes
            if n.sensitivity_cosine is not None
            and not math.isnan(n.sensitivity_cosine)
            and n.sensitivity_cosine < SENSITIVE_COSINE
        ),
        key=lambda n: n.sensitivity_cosine or 1.0,
    )
    config = ctx.maybe("config")
    no_int16 = config is not None and config.march in NO_INT16_MARCH
    sim = None if no_int16 else ctx.maybe("sim")
    base = _measure(sim, None)
    out = []
    for n in sensitive[:MAX_FINDINGS]:
        sens = n.sensitivity_cosine or 1.0
        loss = 1.0 - sens
        gain = n.int16_gain
        if (gain is None or math.isnan(gain)) and base is not None:
            widened = _measure(sim, n.name)
            if widened is not None:
                gain = widened - base
        evidence = [
            Evidence(
                "model output cosine, only this node quantized",
                f"{sens:.5f}",
                f">= {SENSITIVE_COSINE}",
                where=f"node {n.name}",
            )
        ]
        for what, value in (
            ("... only its weights", n.sensitivity_weights),
            ("... only its activation inputs", n.sensitivity_activations),
        ):
            if value is not None and not math.isnan(value):
                evidence.append(Evidence(what, f"{value:.5f}", where=f"node {n.name}"))
        # int16 is the cure, unless the march has no int16 or it measurably does not help
        remedy: Remedy | None = Remedy(
            settings=SettingsDelta(nodes=(NodeChange(n.name, dtype=DType.INT16),))
        )
        if no_int16:
            measured = f"int16 node types are not available on march {config.march}"
            remedy = None
        elif gain is not None and not math.isnan(gain):
            measured = f"int16 on {n.name} gains {gain:.4f} output cosine"
            if gain <= MIN_GAIN:
                measured += " (no measurable help: the loss is elsewhere or in its weights)"
                remedy = None
        else:
            measured = "int16 gain not measured"
        out.append(
            RULE.finding(
                f"{n.name} ({n.op_type}) alone drops the output cosine to {sens:.4f}; {measured}",
                *evidence,
                severity=Severity.MAJOR if loss >= MAJOR_LOSS else Severity.MINOR,
                fix=f"Run {n.name} in int16: node_info {{\"{n.name}\": {{'InputType': 'int16', "
                "'OutputType': 'int16'}}",
                measured=measured,
                related=(n.name,),
                remedy=remedy,
            )
        )
    return out


def _measure(sim: Any, int16_node: str | None) -> float | None:
    """Output cosine of the configured scheme (with `int16_node` widened to int16)."""
    if sim is None or not hasattr(sim, "measure") or not hasattr(sim, "settings"):
        return None
    from ptqtui.quant.scheme import NodeOverride

    settings = sim.settings
    if int16_node is not None:
        overrides = {o.node: o for o in settings.node_overrides}
        prev = overrides.get(int16_node) or NodeOverride(int16_node)
        overrides[int16_node] = dataclasses.replace(prev, input_dtype="int16", output_dtype="int16")
        settings = dataclasses.replace(settings, node_overrides=tuple(overrides.values()))
    # the output cosine on the analysis samples only: no task agreement, no labels
    return float(sim.measure(settings, eval_limit=0, similarity_only=True).similarity.cosine)
