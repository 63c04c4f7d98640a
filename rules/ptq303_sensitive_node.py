"""PTQ303: nodes whose quantization alone drops the output cosine below the threshold."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo

if TYPE_CHECKING:
    from ptqtui.analysis.results import Analysis
    from ptqtui.check.context import Context

SENSITIVE_COSINE = 0.999  # the converter's own threshold (mix calibration, debugger)
MAJOR_LOSS = 0.01  # one node alone costing this much output cosine is the 1.5-4 % kind
MIN_GAIN = 2e-4  # int16 gains below this do not help
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
    out = []
    for n in sensitive[:MAX_FINDINGS]:
        sens = n.sensitivity_cosine or 1.0
        loss = 1.0 - sens
        gain = n.int16_gain
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
        if gain is not None and not math.isnan(gain):
            measured = f"int16 on {n.name} gains {gain:.4f} output cosine"
            if gain <= MIN_GAIN:
                measured += " (no measurable help: the loss is elsewhere or in its weights)"
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
            )
        )
    return out
