"""PTQ204: many CPU nodes, or CPU nodes in the middle of the graph (each splits the BPU graph)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptqtui.rules._remedies import edit, removal

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.remedy import ConfigEdit, Remedy

if TYPE_CHECKING:
    from ptqtui.check.context import Context
    from ptqtui.inputs.config import MapperConfig, NodeSetting
    from ptqtui.inputs.model import ModelGraph

RULE = RuleInfo(
    code="PTQ204",
    name="cpu-fallback-placement",
    category="config",
    severity=Severity.MINOR,
    title="More than two CPU nodes, or CPU nodes in the middle of the graph",
    why="Only the last one or two output operators are worth moving to the CPU: a CPU node in "
    "the middle splits the BPU graph, adds a re-quantization (more error, rarely less) and a "
    "CPU round trip; many CPU nodes cost speed for little accuracy.",
    fix="Keep at most the last 1-2 output operators on the CPU (node_info ON: CPU or "
    "run_on_cpu); for sensitive middle nodes use int16 (node_info InputType/OutputType int16).",
    needs=("config",),
    example="[major] PTQ204 CPU node /b3/add/Add sits in the middle of the graph: 4 quantized "
    "nodes follow it on the BPU (mapper.yaml line 12)",
)

MAX_CPU_NODES = 2  # reference §2: "only the last 1-2 output operators"
# A CPU node with this many quantized BPU nodes after it splits the graph for real (a second
# BPU subgraph with its own re-quantization); one or two after it is nearly the tail.
MIDDLE_MAJOR = 3


def check(ctx: Context) -> list[Finding]:
    config = ctx.config
    if config.generation != "makertbin":
        return []
    cpu = _cpu_nodes(config)
    if not cpu:
        return []
    graph = ctx.maybe("graph")
    findings = []
    if graph is not None:
        known = set(graph.node_names)
        cpu = {n: s for n, s in cpu.items() if n in known}  # unknown names are PTQ203's
        middle = _middle_nodes(graph, set(cpu))
        for node, after in middle:
            setting = cpu[node]
            where = _where(config, setting)
            downstream = len(after)
            remedy = None
            if downstream < MIDDLE_MAJOR:
                names = ", ".join(after)
                fix = (
                    f"Run the node(s) after it on the CPU too ({names}: check their names, "
                    f"PTQ203), or put {node} back on the BPU."
                )
            else:
                fix = (
                    f"Put {node} back on the BPU; if it is sensitive, set it to int16: "
                    f"node_info {{'{node}': {{'InputType': 'int16', 'OutputType': 'int16'}}}}."
                )
                remedy = Remedy(config=(_back_on_bpu(config, setting),))
            findings.append(
                RULE.finding(
                    f"CPU node {node} ({graph.node(node).op_type}) sits in the middle of the "
                    f"graph: {downstream} quantized node(s) follow it on the BPU ({where})",
                    Evidence(
                        "CPU node position",
                        f"{downstream} quantized nodes downstream",
                        "only output operators on the CPU",
                        where,
                    ),
                    severity=Severity.MAJOR if downstream >= MIDDLE_MAJOR else Severity.MINOR,
                    fix=fix,
                    related=("PTQ203",) if downstream < MIDDLE_MAJOR else (),
                    remedy=remedy,
                )
            )
    if len(cpu) > MAX_CPU_NODES:
        names = sorted(cpu)
        first = cpu[names[0]]
        findings.append(
            RULE.finding(
                f"{len(cpu)} nodes run on the CPU ({', '.join(names[:6])}"
                f"{', ...' if len(names) > 6 else ''}); more than {MAX_CPU_NODES} costs speed "
                "for little accuracy",
                Evidence(
                    "CPU nodes", str(len(cpu)), f"at most {MAX_CPU_NODES}", _where(config, first)
                ),
            )
        )
    return findings


def _back_on_bpu(config: MapperConfig, setting: NodeSetting) -> ConfigEdit:
    """The edit that puts a node back on the BPU where the config puts it on the CPU."""
    if setting.source == "node_info":
        key = "model_parameters.node_info"
        return ConfigEdit(key, node=setting.node, fields=(("ON", "BPU"),), line=setting.line)
    key = f"calibration_parameters.{setting.source}"
    listed = tuple(s.node for s in config.node_settings if s.source == setting.source)
    rest = tuple(n for n in listed if n != setting.node)
    return edit(config, key, listed, rest) if rest else removal(config, key, listed)


def _cpu_nodes(config: MapperConfig) -> dict[str, NodeSetting]:
    """Effective CPU placement: node_info wins over run_on_cpu / run_on_bpu."""
    place: dict[str, tuple[str, NodeSetting]] = {}
    for s in config.node_settings:
        if s.source != "node_info" and s.on:
            place[s.node] = (s.on, s)
    for s in config.node_settings:
        if s.source == "node_info" and s.on:
            place[s.node] = (s.on, s)
    return {node: s for node, (on, s) in place.items() if on == "CPU"}


def _where(config: MapperConfig, setting: NodeSetting) -> str:
    return f"{config.path.name} line {setting.line}" if setting.line else config.path.name


def _middle_nodes(graph: ModelGraph, cpu: set[str]) -> list[tuple[str, list[str]]]:
    """CPU nodes with quantized BPU nodes both upstream and downstream (those downstream
    listed in graph order)."""
    by_name = {n.name: n for n in graph.nodes}
    out = []
    for node in graph.nodes:
        if node.name not in cpu:
            continue
        down = _reach(node.name, by_name, graph, forward=True)
        up = _reach(node.name, by_name, graph, forward=False)
        bpu_down = [n for n in down if by_name[n].quantized and n not in cpu]
        bpu_up = [n for n in up if by_name[n].quantized and n not in cpu]
        if bpu_down and bpu_up:
            order = {n.name: n.index for n in graph.nodes}
            out.append((node.name, sorted(bpu_down, key=order.__getitem__)))
    return out


def _reach(start: str, by_name: dict, graph: ModelGraph, *, forward: bool) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        node = by_name[stack.pop()]
        if forward:
            nxt = [c for t in node.outputs for c in graph.consumers.get(t, ())]
        else:
            nxt = [graph.producer[t] for t in node.inputs if t in graph.producer]
        for n in nxt:
            if n not in seen:
                seen.add(n)
                stack.append(n)
    return seen
