"""Accumulated error curve: model output similarity as nodes are quantized in topological order.

Point k quantizes the points of the first k + 1 NPU nodes (weights and activation inputs), the
rest float: where the curve drops is where error enters; a slow slide is accumulation.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ptqtui.analysis.measure import (
    UNLIMITED,
    Allowance,
    Outcome,
    affordable,
    cost_note,
    output_similarity,
)
from ptqtui.analysis.results import CurvePoint
from ptqtui.progress import check_cancel, report
from ptqtui.quant.scheme import node_points

if TYPE_CHECKING:
    from ptqtui.analysis.context import SimContext


def accumulated_error(
    ctx: SimContext,
    allowance: Allowance = UNLIMITED,
) -> Outcome[CurvePoint]:
    """Output similarity as the nodes are quantized one after another, in topological order."""
    start = time.perf_counter()
    sim, cal, scheme, samples, refs = ctx.sim, ctx.calibration, ctx.scheme, ctx.samples, ctx.refs
    pass_seconds = ctx.pass_seconds
    budget_seconds, progress, cancel = allowance.seconds, allowance.progress, allowance.cancel
    active = set(scheme.active())
    nodes = [
        n
        for n in sim.graph.quantized_nodes()
        if scheme.placement.get(n.name) == "BPU"
        and any(k in active for k in node_points(sim.graph, scheme, n.name))
    ]
    notes: list[str] = []
    n_s = len(samples)
    wanted = len(nodes) * n_s
    report(progress, "accumulated error", 0, len(nodes), cost_note("curve", wanted, pass_seconds))
    fit = affordable(budget_seconds, pass_seconds, wanted)
    indices = list(range(len(nodes)))
    if fit < wanted and nodes:
        n_s = max(1, min(n_s, fit // len(nodes)))
        if n_s < len(samples):
            notes.append(f"accumulated error: {n_s} of {len(samples)} samples (time budget)")
        points = max(2, fit // n_s)
        if points < len(nodes):
            step = len(nodes) / points
            indices = sorted({min(len(nodes) - 1, round(i * step)) for i in range(points)})
            indices = sorted({*indices, len(nodes) - 1})
            notes.append(
                f"accumulated error: {len(indices)} of {len(nodes)} points, evenly spaced "
                "(time budget)"
            )
    samp, rf = samples[:n_s], refs[:n_s]
    curve = []
    for done, i in enumerate(indices, 1):
        check_cancel(cancel)
        names = {n.name for n in nodes[: i + 1]}
        keys = [
            k for n in nodes[: i + 1] for k in node_points(sim.graph, scheme, n.name) if k in active
        ]
        keys += [
            p.key
            for p in sim.points
            if p.kind == "output" and p.nodes[0] in names and p.key in active
        ]
        s, _ = output_similarity(sim, samp, scheme.only(keys), cal, rf)
        curve.append(CurvePoint(i, nodes[i].name, s.cosine))
        report(progress, "accumulated error", done, len(indices), nodes[i].name)
    passes = len(indices) * len(samp)
    return Outcome(tuple(curve), tuple(notes), passes, time.perf_counter() - start)
