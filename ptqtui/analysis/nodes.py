"""Node table: every quantized node's output under the full scheme vs float.

Cumulative error: everything upstream is quantized too (what the converter's node table and
``hb_verifier`` show). One fake-quant pass and one float pass per sample fetch every node
output at once; per-node isolated error is the sensitivity analysis, kept apart.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from ptqtui.analysis.measure import UNLIMITED, Allowance, Outcome, affordable
from ptqtui.analysis.results import MethodThreshold, NodeRow
from ptqtui.policy import PERCENTILES
from ptqtui.progress import check_cancel, report
from ptqtui.quant import metrics
from ptqtui.quant.calibrate import Calibration, _kl_range, activation_range
from ptqtui.quant.graph import QNode
from ptqtui.quant.observe import NUM_BINS, Observation, TensorStats
from ptqtui.quant.scheme import Scheme
from ptqtui.quant.simulate import Simulator

if TYPE_CHECKING:
    from ptqtui.analysis.context import SimContext

HIST_BINS = 64  # the node table's |x| histogram: the 2048 calibration bins up to max |x|, merged
MAX_CHANNELS = 512  # per-channel weight maxima stored per node (the JSON stays small)
# Node outputs fetched per run, at most (float and quantized runs each): exposing every
# activation of a 640x640 detector at once (597 MiB a sample, copied out by onnxruntime) held
# 2.4 GB; a few more passes keep the node table near the observation pass's peak.
GROUP_BYTES = 256 << 20
CHOSEN_TOLERANCE = 1e-6  # relative: a method's threshold equal to the one used is "chosen"
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
    per_node: dict[str, list[metrics.Similarity]] = {t: [] for t in names}
    done = 0

    def fits(i: int) -> bool:
        """Whether sample `i` still fits the allowance, at the cost the samples before it took
        (a sample compares every node output: on the demo 600 passes' worth, not 2)."""
        if budget_seconds is None or i == 0:
            return True
        return time.perf_counter() - start + (time.perf_counter() - start) / i <= budget_seconds

    if samples and sim.segmented and sim.plan is not None:
        # a segment of the graph at a time, float and quantized side by side: one pass each
        # per sample, the tensors of one segment held at once
        groups = [names]
        for i, sample in enumerate(samples[:n_samples]):
            check_cancel(cancel)
            if not fits(i):
                break
            done = i + 1
            ref_run = sim.run_exposed(sample, names)
            out_run = sim.run_exposed(sample, names, scheme, calibration=cal)
            for ref, out in zip(ref_run, out_run, strict=True):
                for t in ref:
                    per_node[t].append(metrics.compare(ref[t], out[t]))
                del ref, out
            report(progress, "node table", i + 1, n_samples)
    else:
        groups = _groups(names, obs)
        if len(groups) > 1:
            notes.append(
                f"node table: node outputs fetched in {len(groups)} groups of at most "
                f"{GROUP_BYTES >> 20} MiB per run (bounded memory)"
            )
        for i, sample in enumerate(samples[:n_samples]):
            if not fits(i):
                break
            done = i + 1
            for group in groups:
                check_cancel(cancel)
                ref = sim.run_float(sample, outputs=group)
                out = sim.run(sample, scheme, calibration=cal, outputs=group)
                for t in group:
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
                similarity=metrics.average(per_node[t]),
                topo_index=node.index,
                **_ranges(sim, cal, obs, node),
            )
        )
    if done < len(samples):
        notes.append(f"node table: {done} of {len(samples)} samples (time budget)")
    passes = 2 * done * len(groups)
    complete = done >= len(samples)
    return Outcome(tuple(rows), tuple(notes), passes, time.perf_counter() - start, complete)


def _groups(names: list[str], obs: Observation | None) -> list[list[str]]:
    """``names`` in order, cut so each group's tensors (sizes per sample from the calibration
    observation; unknown ones counted at the largest known) stay under ``GROUP_BYTES``."""
    size: dict[str, float] = {}
    if obs is not None and obs.n_samples:
        for t in names:
            st = obs.stats.get(t)
            if st is not None and st.count:
                size[t] = 4.0 * (st.count + st.nan_count) / obs.n_samples
    largest = max(size.values(), default=0.0)
    groups: list[list[str]] = [[]]
    used = 0.0
    for t in names:
        b = size.get(t, largest)
        if groups[-1] and used + b > GROUP_BYTES:
            groups.append([])
            used = 0.0
        groups[-1].append(t)
        used += b
    return groups


def _ranges(sim: Simulator, cal: Calibration, obs: Observation | None, node: QNode) -> dict:
    out: dict = {}
    if node.act_points:
        key = node.act_points[0]
        tensor = sim.graph.points[key].tensor
        stats = obs.stats.get(tensor) if obs is not None else None
        r = cal.activations.get(key)
        used = float(r.threshold) if r is not None else None
        if stats is not None and stats.count:
            out["act_min"] = float(stats.min)
            out["act_max"] = float(stats.max)
            out["act_p9999"] = float(stats.abs_percentile(0.9999))
            if stats.hist_max > 0:
                out["histogram"], out["histogram_top"] = abs_histogram(stats)
            out["thresholds"] = method_thresholds(stats, used)
        if used is not None:
            out["threshold"] = used
    if node.weight_point is not None:
        p = sim.graph.points[node.weight_point]
        w = np.abs(sim.graph.initializers[p.tensor])
        axes = tuple(k for k in range(w.ndim) if k != p.axis)
        ch = w.max(axis=axes) if axes else w
        med = float(np.median(ch))
        if med > 0:
            out["weight_range_ratio"] = float(ch.max() / med)
        out["weight_channel_max"] = tuple(float(v) for v in ch[:MAX_CHANNELS])
        out["weight_channels"] = int(ch.size)
        out["weight_tensor_max"] = float(ch.max()) if ch.size else 0.0
    return out


def abs_histogram(stats: TensorStats, bins: int = HIST_BINS) -> tuple[tuple[int, ...], float]:
    """|x| counts in `bins` equal bins from 0 to just above max |x|, and that upper edge.

    The observation's 2048 bins run to a power-of-two multiple of the first sample's max; the
    bins past max |x| are empty, so only those up to it are kept and merged.
    """
    width = stats.bin_width
    needed = min(NUM_BINS, max(1, int(np.ceil(stats.abs_max / width - 1e-9))))
    merge = -(-needed // bins)  # ceil
    fine = np.zeros(bins * merge, np.int64)
    take = min(NUM_BINS, bins * merge)
    fine[:take] = stats.hist[:take]
    fine[bins * merge - 1] += int(stats.hist[take:].sum())
    counts = fine.reshape(bins, merge).sum(axis=1)
    return tuple(int(c) for c in counts), float(bins * merge * width)


def method_thresholds(stats: TensorStats, used: float | None) -> tuple[MethodThreshold, ...]:
    """max, max with each percentile of the reference's list, and kl (the calibrator's own
    functions; kl is cached on `stats`, so the method sweep does not compute it again)."""
    values = [("max", activation_range(stats, "max", None, False).threshold)]
    values += [
        (f"max_percentile {p:g}", activation_range(stats, "max", p, False).threshold)
        for p in PERCENTILES
    ]
    values.append(("kl", _kl_range(stats, False).threshold))

    def chosen(t: float) -> bool:
        if used is None:
            return False
        return abs(t - used) <= CHOSEN_TOLERANCE * max(abs(used), 1e-12)

    return tuple(MethodThreshold(m, float(t), chosen(float(t))) for m, t in values)
