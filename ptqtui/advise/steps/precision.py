"""Stage 4: precision. High-precision model outputs where int8 ones cost; then the fewest
nodes to int16 and at most the last two operators to the CPU that reach the target cosine,
chosen greedily by measured gain, each re-measured. When the target is met already, a
measured tail-to-CPU gain (a finding's CPU remedy) is a step if it wins accuracy points, and
an option otherwise."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ptqtui.advise.results import PlanStage
from ptqtui.advise.steps.common import (
    NUMERICS,
    Basis,
    Draft,
    Env,
    State,
    brief,
    edits_outputs,
    fmt,
    grade,
    moves_nodes,
    points,
    toward,
    try_settings,
    yaml_of,
)
from ptqtui.analysis.whatif import OPTIMIZATION_ITEMS
from ptqtui.check.findings import Severity
from ptqtui.policy import MIN_GAIN
from ptqtui.quant.scheme import QuantSettings
from ptqtui.remedy import DType, NodeChange, Placement, Remedy, SettingsDelta

if TYPE_CHECKING:
    from ptqtui.analysis.results import NodeRow

log = logging.getLogger(__name__)

MAX_TAIL_CPU = 2  # reference: only the last 1-2 output operators to the CPU
MAX_INT16 = 6  # more int16 nodes than this: the loss is not a few nodes' (QAT territory)
INT16_CANDIDATES = 5  # nodes measured per greedy round (the most sensitive first)
MIN_TAIL_POINTS = 1.0  # a tail-to-CPU gain of this many accuracy points is a step, not an
# option (the small band of the reference ends at 1.5 points; one point is already worth a
# CPU operator)
OUTPUT_FLAGS = {  # optimization items that make outputs int8 -> QuantSettings fields
    i: OPTIMIZATION_ITEMS[i]
    for i in ("set_model_output_int8", "set_Softmax_input_int8", "set_Softmax_output_int8")
}


def precision_steps(state: State, env: Env) -> tuple[list[Draft], State]:
    steps, state = _output_precision(state, env)
    nodes = env.analysis.nodes if env.analysis is not None else ()
    if not nodes:
        return steps, state
    if env.meter is None:
        more, state = _from_table(state, env, nodes)
        return steps + more, state
    if state.measure is None:
        return steps, state
    if env.done(state.measure):
        more, state = _optional_tail(state, env)
        return steps + more, state
    more, state = _node_precision(state, env, nodes)
    return steps + more, state


def to_cpu(s: QuantSettings, node: str, cpu_key: str) -> QuantSettings:
    """`s` with `node` on the CPU (run_on_cpu where the config says so, else node_info)."""
    if cpu_key == "run_on_cpu":
        return dataclasses.replace(
            s,
            run_on_cpu=(*s.run_on_cpu, node),
            run_on_bpu=tuple(n for n in s.run_on_bpu if n != node),
        )
    return SettingsDelta(nodes=(NodeChange(node, Placement.CPU),)).apply(s)


def to_int16(s: QuantSettings, node: str) -> QuantSettings:
    return SettingsDelta(nodes=(NodeChange(node, dtype=DType.INT16),)).apply(s)


def _cpu_nodes(env: Env) -> list[str]:
    """The nodes the numerics findings' remedies move to the CPU (the tail), in order."""
    names = [
        n.node
        for f in env.findings
        if env.category(f) == NUMERICS and f.remedy is not None and f.remedy.settings is not None
        for n in f.remedy.settings.nodes
        if n.placement is Placement.CPU
    ]
    return list(dict.fromkeys(names))


def _optional_tail(state: State, env: Env) -> tuple[list[Draft], State]:
    """The cosine target is met, but a finding moves an output operator to the CPU: measure
    it. A gain in accuracy points (labels) makes it a step like any other; a gain in cosine
    alone is offered, outside the written config (a CPU node costs)."""
    names = _cpu_nodes(env)
    meter = env.meter
    if not names or meter is None or state.measure is None:
        return [], state
    name = names[0]
    s = to_cpu(state.settings, name, env.cpu_key)
    r, m = try_settings(state, env, s, against=state)
    if m is None:
        return [], state
    gain = env.judge(state.remedy, state.measure, r, m)
    if not gain.ok:
        return [], state
    remedy = Remedy(settings=SettingsDelta(nodes=(NodeChange(name, Placement.CPU),)))
    changes = yaml_of(env, remedy, state.settings)
    described = "; ".join(c.describe() for c in changes)
    gained = points(state.measure, m)
    evidence = (
        f"measured: {fmt(state.measure)} -> {fmt(m)} ({gain.describe()})",
        "cost: 1 operator on the CPU; it splits the BPU graph and runs slower",
    )
    codes = env.answered(_moves(name))
    if gained is not None and gained >= MIN_TAIL_POINTS:
        step = Draft(
            stage=PlanStage.PRECISION,
            title=f"Run {name} on the CPU (float)",
            action=f"Set {described}.",
            why=f"The output operator costs {gained:.1f} accuracy points in int8 though the "
            f"target ({env.aim.describe()}) is met; on the CPU it runs in float.",
            severity=grade(state.measure, m, env.cap),
            evidence=evidence,
            before=state.measure,
            after=m,
            remedy=remedy,
            changes=changes,
            codes=codes,
            tried=True,
        )
        return [step], state.moved(r, s, m)
    option = Draft(
        stage=PlanStage.PRECISION,
        title=f"Optional: run {name} on the CPU (float)",
        action=f"Set {described} if the gain is worth a CPU operator (not in the "
        "written config: the target is already met).",
        why="The output operator loses the most; on the CPU it runs in float.",
        severity=Severity.MINOR,
        evidence=evidence,
        before=state.measure,
        after=m,
        remedy=remedy,
        changes=changes,
        codes=codes,
        tried=True,
        written=False,
    )
    return [option], state


def _moves(node: str) -> Callable[[Remedy], bool]:
    """A predicate: the remedy changes `node`."""

    def accepts(r: Remedy) -> bool:
        return r.settings is not None and any(n.node == node for n in r.settings.nodes)

    return accepts


def _output_precision(state: State, env: Env) -> tuple[list[Draft], State]:
    """int8 model outputs (set_model_output_int8, int8 Softmax): dropped when that
    measurably helps."""
    on = [item for item, name in OUTPUT_FLAGS.items() if getattr(state.settings, name)]
    meter = env.meter
    if not on or env.config is None or meter is None or state.measure is None:
        return [], state
    delta = SettingsDelta(**{OUTPUT_FLAGS[i]: False for i in on})
    remedy = Remedy(settings=delta)
    s = delta.apply(state.settings)
    applied = state.remedy.then(remedy)
    m = meter.measure(applied, s.describe(), against=state.remedy)
    if m is None:
        return [], state
    gain = env.judge(state.remedy, state.measure, applied, m)
    if not gain.ok:
        return [], state
    step = Draft(
        stage=PlanStage.PRECISION,
        title="Keep the model outputs in high precision",
        action=f"Remove {', '.join(on)} from calibration_parameters.optimization.",
        why="int8 outputs round away the small score differences that decide the result; "
        "without the option the last BPU node writes high-precision output.",
        severity=grade(state.measure, m, env.cap),
        evidence=(f"measured: {fmt(state.measure)} -> {fmt(m)} ({gain.describe()})",),
        before=state.measure,
        after=m,
        remedy=remedy,
        changes=yaml_of(env, remedy, state.settings),
        codes=env.answered(edits_outputs),
        tried=True,
    )
    return [step], state.moved(applied, s, m)


def _tail(nodes: Sequence[NodeRow]) -> list[NodeRow]:
    """Quantized nodes from the model output backwards (topological order reversed)."""
    return sorted(nodes, key=lambda n: -n.topo_index)


def _node_precision(state: State, env: Env, nodes: Sequence[NodeRow]) -> tuple[list[Draft], State]:
    meter = env.meter
    assert meter is not None
    ranked = sorted(
        (n for n in nodes if n.placement == "BPU" and n.dtype == "int8"),
        key=lambda n: (
            -(n.int16_gain or 0.0),
            n.sensitivity_cosine if n.sensitivity_cosine is not None else 1.0,
        ),
    )
    tail = _tail(nodes)[:MAX_TAIL_CPU]
    steps: list[Draft] = []
    int16_nodes: list[str] = []
    cpu_nodes = [n.name for n in tail if n.placement == "CPU"]
    aim = env.aim
    while not env.done(state.measure) and len(int16_nodes) < MAX_INT16:
        options: list[tuple[str, str, QuantSettings]] = []
        nxt = next((n for n in tail if n.name not in cpu_nodes), None)
        if (
            nxt is not None
            and len(cpu_nodes) < MAX_TAIL_CPU
            and all(t.name in cpu_nodes for t in tail if t.topo_index > nxt.topo_index)
        ):
            options.append(("cpu", nxt.name, to_cpu(state.settings, nxt.name, env.cpu_key)))
        if env.int16_ok:
            picks = [n for n in ranked if n.name not in int16_nodes and n.name not in cpu_nodes]
            for n in picks[:INT16_CANDIDATES]:
                options.append(("int16", n.name, to_int16(state.settings, n.name)))
        if not options:
            break
        remedies = [toward(state, s) for _, _, s in options]
        measured = meter.race(
            [(r, s.describe()) for r, (_, _, s) in zip(remedies, options, strict=True)],
            state.remedy,
        )
        results = [
            (kind, name, s, r, m)
            for (kind, name, s), r, m in zip(options, remedies, measured, strict=True)
            if m is not None
        ]
        if not results:
            break
        results.sort(key=lambda x: aim.rank(x[4]), reverse=True)
        kind, name, s, r, m = results[0]
        if aim.basis is not Basis.COSINE:  # the best that gains, not the best within the noise
            kind, name, s, r, m = next(
                (x for x in results if env.judge(state.remedy, state.measure, x[3], x[4]).ok),
                results[0],
            )
        gain = env.judge(state.remedy, state.measure, r, m)
        if not gain.ok:
            break
        others = ", ".join(
            f"{k} {n} {brief(env, mm)}" for k, n, _, _, mm in results if n != name or k != kind
        )
        change = NodeChange(name, Placement.CPU if kind == "cpu" else None)
        if kind == "int16":
            change = NodeChange(name, dtype=DType.INT16)
        remedy = Remedy(settings=SettingsDelta(nodes=(change,)))
        changes = yaml_of(env, remedy, state.settings)
        if kind == "cpu":
            cpu_nodes.append(name)
            title = f"Run {name} on the CPU (float)"
            why = (
                "An output operator: the reference moves only the last 1-2 operators to "
                "the CPU, where they run in float."
            )
            cost = (
                f"cost: {len(cpu_nodes)} operator(s) on the CPU; each CPU node splits "
                "the BPU graph and runs slower"
            )
        else:
            int16_nodes.append(name)
            title = f"Run {name} in int16"
            why = "Its int8 computation loses the most of the nodes measured."
            cost = f"cost: {len(int16_nodes)} node(s) in int16 (twice the data width, slower)"
        steps.append(
            Draft(
                stage=PlanStage.PRECISION,
                title=title,
                action="Set " + "; ".join(c.describe() for c in changes) + ".",
                why=why,
                severity=grade(state.measure, m, env.cap),
                evidence=(
                    f"measured: {fmt(state.measure)} -> {fmt(m)} ({gain.describe()})",
                    cost,
                )
                + ((f"other candidates this round: {others}",) if others else ()),
                before=state.measure,
                after=m,
                remedy=remedy,
                changes=changes,
                codes=env.answered(lambda r: moves_nodes(r) or edits_outputs(r)),
                tried=True,
            )
        )
        state = state.moved(r, s, m)
    if not env.int16_ok and not steps and not env.done(state.measure):
        log.info("int16 not tried: the march has no int16 node types")
    return steps, state


def _from_table(state: State, env: Env, nodes: Sequence[NodeRow]) -> tuple[list[Draft], State]:
    """No simulator: the nodes whose int16 gain, measured alone, was largest (not combined)."""
    if state.measure is None or env.done(state.measure):
        return [], state
    best = sorted(
        (n for n in nodes if (n.int16_gain or 0.0) > MIN_GAIN),
        key=lambda n: -(n.int16_gain or 0.0),
    )
    out = []
    for n in best[:3]:
        remedy = Remedy(settings=SettingsDelta(nodes=(NodeChange(n.name, dtype=DType.INT16),)))
        changes = yaml_of(env, remedy, state.settings)
        out.append(
            Draft(
                PlanStage.PRECISION,
                f"Run {n.name} in int16",
                "Set " + "; ".join(c.describe() for c in changes) + ".",
                "Alone, int16 on this node raised the output cosine the most.",
                Severity.MINOR,
                (
                    f"int16 gain measured alone: {n.int16_gain:.4f} cosine",
                    "combined effect not measured",
                ),
                remedy=remedy,
                changes=changes,
                codes=env.answered(moves_nodes),
            )
        )
    return out, state
