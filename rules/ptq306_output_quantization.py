"""PTQ306: int8 model outputs (set_model_output_int8, int8 Softmax) costing accuracy."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ptqtui.check.context import MissingFact
from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.policy import MAJOR_COSINE_GAIN, MIN_GAIN
from ptqtui.remedy import Remedy, SettingsDelta

if TYPE_CHECKING:
    from ptqtui.check.context import Context

OPTIONS = {  # optimization item -> QuantSettings (and SettingsDelta) field
    "set_model_output_int8": "set_model_output_int8",
    "set_Softmax_input_int8": "softmax_input_int8",
    "set_Softmax_output_int8": "softmax_output_int8",
}

RULE = RuleInfo(
    code="PTQ306",
    name="output-quantization",
    category="numerics",
    severity=Severity.MINOR,
    title="int8 model outputs cost accuracy",
    why="With set_model_output_int8 (or int8 Softmax) the outputs keep 256 levels; small "
    "differences between scores that decide the result are rounded away.",
    fix="Remove set_model_output_int8 (and set_Softmax_*_int8) from "
    "calibration_parameters.optimization: the last BPU node then writes high-precision output.",
    needs=("config", "sim"),
    example="set_model_output_int8 costs 0.0042 output cosine (0.9951 without it)",
)


def check(ctx: Context) -> list[Finding]:
    config = ctx.config
    items = [i for i in config.optimization if i in OPTIONS]
    if not items:
        return []
    sim = ctx.sim
    if not hasattr(sim, "measure") or not hasattr(sim, "settings"):
        raise MissingFact("no simulator to measure the outputs in float")
    settings = sim.settings
    without = dataclasses.replace(settings, **{OPTIONS[i]: False for i in items})
    base = sim.measure(settings)
    free = sim.measure(without)
    delta = free.similarity.cosine - base.similarity.cosine
    noise = max(MIN_GAIN, base.noise or 0.0, free.noise or 0.0)
    if delta <= noise:
        return []
    old = ",".join(config.optimization)
    measured = (
        f"output cosine {base.similarity.cosine:.4f} -> {free.similarity.cosine:.4f} "
        f"without {', '.join(items)}"
    )
    if base.top1 is not None and free.top1 is not None:
        measured += f", top-1 {100 * base.top1:.1f} % -> {100 * free.top1:.1f} %"
    return [
        RULE.finding(
            f"{', '.join(items)} costs {delta:.4f} output cosine: {measured}",
            Evidence(
                "optimization", old, where=config.where("calibration_parameters.optimization")
            ),
            Evidence("noise of the measurement (cosine)", f"{noise:.5f}"),
            severity=Severity.MAJOR if delta >= MAJOR_COSINE_GAIN else Severity.MINOR,
            remedy=Remedy(settings=SettingsDelta(**{OPTIONS[i]: False for i in items})),
            measured=measured,
        )
    ]
