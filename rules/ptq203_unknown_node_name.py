"""PTQ203: node names in node_info, run_on_cpu or run_on_bpu that the model does not have."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.remedy import ConfigEdit, Remedy

if TYPE_CHECKING:
    from ptqtui.check.context import Context

RULE = RuleInfo(
    code="PTQ203",
    name="unknown-node-name",
    category="config",
    severity=Severity.MAJOR,
    title="node_info, run_on_cpu or run_on_bpu name a node the model does not have",
    why="The setting applies to nothing: the node you meant to keep in int16 or on the CPU is "
    "quantized to int8 like the rest, and the accuracy you expected from it is not there.",
    fix="Use the node names of the ONNX model (as Netron or the converter's node table shows "
    "them); the closest real names are listed.",
    needs=("config", "graph"),
    example="[major] PTQ203 node_info names '/head/fc/Gem', which is not a node of model.onnx "
    "(closest: /head/fc/Gemm) (mapper.yaml line 9)",
)

CLOSE_CUTOFF = 0.6  # difflib ratio; names differing in a few characters of a path


def check(ctx: Context) -> list[Finding]:
    config = ctx.config
    graph = ctx.graph
    names = set(graph.node_names)
    name_list = list(graph.node_names)
    findings = []
    for setting in config.node_settings:
        if setting.node in names:
            continue
        close = difflib.get_close_matches(setting.node, name_list, n=3, cutoff=CLOSE_CUTOFF)
        where = f"{config.path.name} line {setting.line}" if setting.line else config.path.name
        hint = f" (closest: {', '.join(close)})" if close else ""
        key = (
            "model_parameters.node_info"
            if setting.source == "node_info"
            else f"calibration_parameters.{setting.source}"
        )
        findings.append(
            RULE.finding(
                f"{setting.source} names {setting.node!r}, which is not a node of "
                f"{graph.path.name}{hint} ({where})",
                Evidence(
                    f"node in {setting.source}",
                    setting.node,
                    ", ".join(close) if close else f"one of the {len(names)} node names",
                    where,
                ),
                remedy=Remedy(
                    config=(
                        ConfigEdit(
                            key, new=close[0], node=setting.node, line=setting.line, rename=True
                        ),
                    )
                )
                if close
                else None,
            )
        )
    return findings
