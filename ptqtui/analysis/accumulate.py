"""Accumulated error curve: model output similarity as nodes are quantized in topological order.

Point k quantizes the points of the first k + 1 NPU nodes (weights and activation inputs), the
rest float: where the curve drops is where error enters; a slow slide is accumulation.
Each point keeps its crossing tensors at the graph's cuts: a later point whose prefix matches
runs only the segments after it.
On large graphs a coarse grid is measured and refined by bisection wherever the curve moves
(every drop located to its node, the flat stretches skipped): a 330-node detector's curve
cost 2,336 passes at every point.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ptqtui.analysis.measure import (
    UNLIMITED,
    Allowance,
    Outcome,
    affordable,
    cost_note,
    output_similarity,
    prefix_note,
)
from ptqtui.analysis.results import CurvePoint
from ptqtui.progress import check_cancel, report
from ptqtui.quant.scheme import node_points

if TYPE_CHECKING:
    from ptqtui.analysis.context import SimContext

CURVE_FULL = 64  # up to this many points every one is measured; beyond, coarse then refined
CURVE_COARSE = 32  # points of the coarse grid
CURVE_TOLERANCE = 1e-3  # cosine: a gap whose ends differ by more is bisected ...
CURVE_SHARE = 0.02  # ... or by more than this share of the whole drop, if larger
# Samples of the curve where they run one at a time (a 640 detector: a point is a pass a
# sample from its prefix; 107 points of 294 on 8 samples cost PP-OCRv4 det 168 s of CPU).
CURVE_SINGLE_SAMPLES = 4


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
    if sim.batchable is False and n_s > CURVE_SINGLE_SAMPLES:
        # one sample a run (a 640 detector): the curve's shape from fewer of them
        n_s = CURVE_SINGLE_SAMPLES
        notes.append(
            f"accumulated error: {n_s} of {len(samples)} samples (samples run one at a time)"
        )
    wanted = len(nodes) * n_s
    report(progress, "accumulated error", 0, len(nodes), cost_note("curve", wanted, pass_seconds))
    fit = affordable(budget_seconds, pass_seconds, wanted)
    indices = list(range(len(nodes)))
    trimmed = fit < wanted and bool(nodes)  # the time budget left samples or points out
    if trimmed:
        cut = max(1, min(n_s, fit // len(nodes)))
        if cut < n_s:
            n_s = cut
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
    measured: dict[int, float] = {}
    note = prefix_note("accumulated error", sim, len(samp))
    if note:
        notes.append(note)

    def point(i: int) -> float:
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
        s, _ = output_similarity(sim, samp, scheme.only(keys), cal, rf, keep=True)
        measured[i] = s.cosine
        report(progress, "accumulated error", len(measured), len(indices), nodes[i].name)
        return s.cosine

    if len(indices) > CURVE_FULL:
        _refine(indices, point, notes)
    else:
        for i in indices:
            point(i)
    if indices and nodes:
        report(progress, "accumulated error", len(indices), len(indices))
    curve = [CurvePoint(i, nodes[i].name, measured[i]) for i in sorted(measured)]
    passes = len(measured) * len(samp)
    complete = not trimmed
    return Outcome(tuple(curve), tuple(notes), passes, time.perf_counter() - start, complete)


def _refine(indices: list[int], point: Callable[[int], float], notes: list[str]) -> None:
    """Measure a coarse grid of ``indices``, then bisect every gap whose two ends differ by
    more than the tolerance (``CURVE_TOLERANCE`` or ``CURVE_SHARE`` of the whole drop)."""
    step = max(1, len(indices) // CURVE_COARSE)
    grid = sorted({*indices[::step], indices[-1]})
    pos = {i: k for k, i in enumerate(indices)}
    cos = {i: point(i) for i in grid}
    values = [c for c in cos.values() if not math.isnan(c)]
    whole = max(values) - min(values) if values else 0.0
    tol = max(CURVE_TOLERANCE, CURVE_SHARE * whole)
    gaps = list(itertools.pairwise(grid))
    while gaps:
        a, b = gaps.pop()
        ka, kb = pos[a], pos[b]
        if kb - ka < 2:
            continue
        ca, cb = cos[a], cos[b]
        if not (math.isnan(ca) or math.isnan(cb)) and abs(ca - cb) <= tol:
            continue
        m = indices[(ka + kb) // 2]
        cos[m] = point(m)
        gaps += [(a, m), (m, b)]
    if len(cos) < len(indices):
        notes.append(
            f"accumulated error: {len(cos)} of {len(indices)} points, refined where the curve "
            f"moves by more than {tol:.4f} between two measured points"
        )
