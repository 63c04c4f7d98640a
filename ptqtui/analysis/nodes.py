"""Node table: every quantized node's output under the full scheme vs float.

Cumulative error: everything upstream is quantized too (what the converter's node table and
``hb_verifier`` show). One fake-quant pass and one float pass per sample fetch every node
output at once; per-node isolated error is the sensitivity analysis, kept apart.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from ptqtui.analysis.measure import UNLIMITED, Allowance, Outcome, affordable, to_record
from ptqtui.analysis.results import NodeRow
from ptqtui.progress import check_cancel, report
from ptqtui.quant import metrics
from ptqtui.quant.calibrate import Calibration
from ptqtui.quant.graph import QNode
from ptqtui.quant.observe import NUM_BINS, Observation
from ptqtui.quant.scheme import Scheme
from ptqtui.quant.simulate import Simulator

if TYPE_CHECKING:
    from ptqtui.analysis.context import SimContext

HIST_BINS = 32  # the node table's |x| histogram: 2048 calibration bins merged 64 to one
_WIDTH = {"float": 0, "int8": 1, "int16": 2}


def node_dtype(node: QNode, scheme: Scheme) -> str:
    """The widest dtype of a node's activation inputs (its weights' dtype if it has none)."""
    if scheme.placement.get(node.name) != "BPU":
        return "float"
    dts = [scheme.dtype(k) for k in node.act_points]
    if not dts and node.weight_point is not None:
        dts = [scheme.dtype(node.weight_point)]
    dts = [d for d in dts if d in _WIDTH]
    return max(dts, key=_WIDTH.__getitem__) if dts else "float"


def node_table(
    ctx: SimContext,
    allowance: Allowance = UNLIMITED,
) -> Outcome[NodeRow]:
    """One row per quantized node, in topological order."""
    sim, cal, scheme, obs, samples = (
        ctx.sim,
        ctx.calibration,
        ctx.scheme,
        ctx.observation,
        ctx.samples,
    )
    pass_seconds = ctx.pass_seconds
    budget_seconds, progress, cancel = allowance.seconds, allowance.progress, allowance.cancel
    start = time.perf_counter()
    nodes = sim.graph.quantized_nodes()
    names = list(dict.fromkeys(n.outputs[0] for n in nodes if n.outputs[0] in sim.available))
    n_samples = max(1, affordable(budget_seconds, 2 * pass_seconds, len(samples)))
    notes: list[str] = []
    if n_samples < len(samples):
        notes.append(f"node table: {n_samples} of {len(samples)} samples (time budget)")
    per_node: dict[str, list[metrics.Similarity]] = {t: [] for t in names}
    for i, sample in enumerate(samples[:n_samples]):
        check_cancel(cancel)
        ref = sim.run_float(sample, outputs=names)
        out = sim.run(sample, scheme, calibration=cal, outputs=names)
        for t in names:
            per_node[t].append(metrics.compare(ref[t], out[t]))
        del ref, out
        report(progress, "node table", i + 1, n_samples)
    rows = []
    for node in nodes:
        t = node.outputs[0]
        if t not in per_node:
            continue
        rows.append(
            NodeRow(
                name=node.name,
                op_type=node.op_type,
                output=t,
                dtype=node_dtype(node, scheme),
                placement=scheme.placement.get(node.name, "BPU"),
                similarity=to_record(metrics.average(per_node[t])),
                topo_index=node.index,
                **_ranges(sim, cal, obs, node),
            )
        )
    return Outcome(tuple(rows), tuple(notes), 2 * n_samples, time.perf_counter() - start)


def _ranges(sim: Simulator, cal: Calibration, obs: Observation | None, node: QNode) -> dict:
    out: dict = {}
    if node.act_points:
        key = node.act_points[0]
        tensor = sim.graph.points[key].tensor
        stats = obs.stats.get(tensor) if obs is not None else None
        if stats is not None and stats.count:
            out["act_min"] = float(stats.min)
            out["act_max"] = float(stats.max)
            out["act_p9999"] = float(stats.abs_percentile(0.9999))
            if stats.hist_max > 0:
                merged = stats.hist.reshape(HIST_BINS, NUM_BINS // HIST_BINS).sum(axis=1)
                out["histogram"] = tuple(int(c) for c in merged)
        r = cal.activations.get(key)
        if r is not None:
            out["threshold"] = float(r.threshold)
    if node.weight_point is not None:
        p = sim.graph.points[node.weight_point]
        w = np.abs(sim.graph.initializers[p.tensor])
        axes = tuple(k for k in range(w.ndim) if k != p.axis)
        ch = w.max(axis=axes)
        med = float(np.median(ch))
        if med > 0:
            out["weight_range_ratio"] = float(ch.max() / med)
    return out
