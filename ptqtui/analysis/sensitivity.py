"""Sensitivity: only this node quantized, the rest float, measured at the model outputs.

For every node placed on the NPU: its weights and activation inputs together (``both``);
for the ``SPLIT_TOP`` most sensitive that lose at least ``SPLIT_MIN_LOSS`` alone, each apart
(the split is shown, never decided on, and measuring it everywhere tripled the cost); then for
the worst few the output cosine gained when the node goes int16. Every what-if is one batched
``run`` of the same simulator: about (N + 2 SPLIT_TOP) x S passes (N nodes, S samples), not N
conversions, and each runs only the graph's segments from the cut before the node (the float
prefix's crossing tensors are cached with the references). Isolated error, as the converter's
``get_sensitivity_of_nodes`` measures it; the node table holds the cumulative one.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ptqtui.analysis.measure import (
    UNLIMITED,
    Allowance,
    Outcome,
    Sample,
    affordable,
    cost_note,
    output_similarity,
    prefix_note,
)
from ptqtui.analysis.pool import WorkerPool
from ptqtui.analysis.results import NodeRow
from ptqtui.policy import SENSITIVE_COSINE
from ptqtui.progress import check_cancel, report
from ptqtui.quant import metrics
from ptqtui.quant.calibrate import Calibration
from ptqtui.quant.scheme import Scheme, node_points, widen_node
from ptqtui.quant.simulate import Simulator

if TYPE_CHECKING:
    from ptqtui.analysis.context import SimContext

INT16_TOP = 8  # int16 gain is measured for this many of the most sensitive nodes
SPLIT_TOP = 16  # weights and activations measured apart for this many of the most sensitive
SPLIT_MIN_LOSS = 1e-4  # ... and only where quantizing the node alone loses this much cosine
# Samples run one at a time (a 640 detector): a node whose first ADAPT_FIRST samples each lose
# less than ADAPT_LOSS cosine (a tenth of the converter's 0.999 line) is not sampled further.
ADAPT_FIRST = 2
ADAPT_LOSS = (1.0 - SENSITIVE_COSINE) / 10


def sensitivity(
    ctx: SimContext,
    rows: Sequence[NodeRow],
    allowance: Allowance = UNLIMITED,
    *,
    split: bool = True,
    int16: bool = True,
) -> Outcome[NodeRow]:
    """``rows`` (the node table) with the sensitivity fields filled, in the same order."""
    sim, cal, scheme, samples, refs = ctx.sim, ctx.calibration, ctx.scheme, ctx.samples, ctx.refs
    pass_seconds = ctx.pass_seconds
    budget_seconds, progress, cancel = allowance.seconds, allowance.progress, allowance.cancel
    start = time.perf_counter()
    stage = "sensitivity"
    notes: list[str] = []
    active = set(scheme.active())
    by_name = {r.name: r for r in rows}
    cands = [
        r.name
        for r in rows
        if r.placement == "BPU" and any(k in active for k in node_points(sim.graph, scheme, r.name))
    ]
    # most promising first: the nodes whose output the full scheme damages most
    cands.sort(key=lambda n: _nan_last(by_name[n].similarity.sqnr_db))
    n_s = len(samples)
    wanted = (len(cands) + (2 * min(SPLIT_TOP, len(cands)) if split else 0)) * n_s
    report(progress, stage, 0, wanted, cost_note("sensitivity", wanted, pass_seconds))
    fit = affordable(budget_seconds, pass_seconds, len(cands) * n_s)
    complete = fit >= len(cands) * n_s  # False: the time budget left work out
    if not complete:
        n_s = max(1, min(n_s, fit // max(1, len(cands))))
        keep = max(1, fit // n_s) if fit else 1
        if keep < len(cands):
            skipped = cands[keep:]
            notes.append(
                f"sensitivity: {len(skipped)} of {len(cands)} nodes not measured (time budget): "
                + ", ".join(skipped[:5])
                + (" ..." if len(skipped) > 5 else "")
            )
            cands = cands[:keep]
        if n_s < len(samples):
            notes.append(f"sensitivity: {n_s} of {len(samples)} samples (time budget)")
    samp, rf = samples[:n_s], refs[:n_s]
    note = prefix_note("sensitivity", sim, len(samp))
    if note:
        notes.append(note)
    passes = 0
    done = 0
    total = len(cands) + (2 * min(SPLIT_TOP, len(cands)) if split else 0)
    values: dict[str, dict[str, float | None]] = {n: {} for n in cands}
    early: list[str] = []  # nodes measured on ADAPT_FIRST samples only

    workers = max(1, ctx.workers)
    pool: WorkerPool | None = None
    if workers > 1 and len(cands) >= 2 * workers:
        pool = WorkerPool(sim, cal, scheme, samp, rf, workers)
        notes.append(f"sensitivity: {workers} worker processes")

    def keys_of(node: str, target: str) -> tuple[str, ...]:
        return tuple(k for k in node_points(sim.graph, scheme, node, target) if k in active)

    def measure_all(jobs: list[tuple[str, str]]) -> Iterator[tuple[str, str, float | None]]:
        """(node, target, cosine) of each job, in order, as they are measured."""
        nonlocal passes
        keyed = [(n, t, keys_of(n, t)) for n, t in jobs]
        todo = [k for _, _, k in keyed if k]
        if pool is not None:
            got = pool.map(measure_only, todo, len(samp))
        else:
            got = (measure_only(sim, scheme.only(k), cal, samp, rf) for k in todo)
        for node, target, keys in keyed:
            if not keys:  # e.g. the weights of a node without weights
                yield node, target, None
                continue
            cosine, used, stopped = next(got)
            passes += used
            if stopped:
                early.append(node)
            yield node, target, cosine

    try:
        for node, _, cosine in measure_all([(n, "both") for n in cands]):
            check_cancel(cancel)
            values[node]["both"] = cosine
            done += 1
            report(progress, stage, done, total, node)
        if split:
            left = (
                None if budget_seconds is None else budget_seconds - (time.perf_counter() - start)
            )
            fit = affordable(left, pass_seconds, 2 * len(cands) * len(samp))
            ranked = sorted(cands, key=lambda n: _nan_last(values[n]["both"]))
            worth = [n for n in ranked[:SPLIT_TOP] if _loss(values[n]["both"]) >= SPLIT_MIN_LOSS]
            split_nodes = worth[: fit // max(1, 2 * len(samp))]
            if len(split_nodes) < len(worth):
                complete = False
                notes.append(
                    f"sensitivity: weights/activations measured apart for {len(split_nodes)} "
                    f"of {len(worth)} nodes (time budget)"
                )
            jobs = [(n, t) for n in split_nodes for t in ("weight", "activation")]
            for node, target, cosine in measure_all(jobs):
                check_cancel(cancel)
                values[node][target] = cosine
                done += 1
                report(progress, stage, done, total, node)
            if total:
                report(progress, stage, total, total)
    finally:
        if pool is not None:
            pool.close()
    if early:
        notes.append(
            f"sensitivity: {len(early)} of {len(cands)} nodes measured on {ADAPT_FIRST} of "
            f"{len(samp)} samples (each sample lost less than {ADAPT_LOSS:g} cosine there)"
        )
    if int16:
        measured = _int16_gains(
            sim, cal, scheme, cands, values, samp, rf, budget_seconds, start, notes
        )
        complete = complete and measured
        passes += sum(len(samp) for n in cands if "int16" in values[n])
        if any("int16" in v for v in values.values()):
            passes += len(samp)

    out = []
    for r in rows:
        v = values.get(r.name)
        if v is None:
            out.append(r)
            continue
        out.append(
            dataclasses.replace(
                r,
                sensitivity_cosine=v.get("both"),
                sensitivity_weights=v.get("weight"),
                sensitivity_activations=v.get("activation"),
                int16_gain=v.get("int16"),
            )
        )
    return Outcome(tuple(out), tuple(notes), passes, time.perf_counter() - start, complete)


def _int16_gains(
    sim: Simulator,
    cal: Calibration,
    scheme: Scheme,
    cands: list[str],
    values: dict[str, dict[str, float | None]],
    samp: Sequence[Sample],
    rf: Sequence[Mapping[str, np.ndarray]],
    budget_seconds: float | None,
    start: float,
    notes: list[str],
) -> bool:
    """Full scheme with one node at int16 (``widen_node``: inputs and outputs, as node_info
    asks): the output cosine it gains; False when the time budget left them out."""
    worst = sorted(cands, key=lambda n: _nan_last(values[n]["both"]))[:INT16_TOP]
    if budget_seconds is not None and time.perf_counter() - start > budget_seconds:
        notes.append("sensitivity: int16 gains not measured (time budget)")
        return False
    base, _ = output_similarity(sim, samp, scheme, cal, rf)
    for node in worst:
        wider = widen_node(sim.graph, scheme, node)
        if wider.key() == scheme.key():
            continue
        s16, _ = output_similarity(sim, samp, wider, cal, rf)
        values[node]["int16"] = s16.cosine - base.cosine
    return True


def measure_only(
    sim: Simulator,
    only: Scheme,
    cal: Calibration,
    samp: Sequence[Sample],
    rf: Sequence[Mapping[str, np.ndarray]],
) -> tuple[float, int, bool]:
    """Output cosine of one what-if, the passes it took, and whether it stopped early (one
    run per sample and the first ``ADAPT_FIRST`` each lose less than ``ADAPT_LOSS``)."""
    if sim.batchable is not False or len(samp) <= ADAPT_FIRST:
        sim_, _ = output_similarity(sim, samp, only, cal, rf)
        return sim_.cosine, len(samp), False
    first = _similarities(sim, samp[:ADAPT_FIRST], only, cal, rf[:ADAPT_FIRST])
    if all(1.0 - s.cosine < ADAPT_LOSS for s in first):  # NaN compares False: go on
        return metrics.average(first).cosine, ADAPT_FIRST, True
    rest = _similarities(sim, samp[ADAPT_FIRST:], only, cal, rf[ADAPT_FIRST:])
    return metrics.average(first + rest).cosine, len(samp), False


def _similarities(
    sim: Simulator,
    samp: Sequence[Sample],
    scheme: Scheme,
    cal: Calibration,
    rf: Sequence[Mapping[str, np.ndarray]],
) -> list[metrics.Similarity]:
    """One similarity per sample, model outputs averaged (as ``output_similarity`` does)."""
    outs = sim.run_batch(samp, scheme, calibration=cal)
    return [
        metrics.average([metrics.compare(ref[n], out[n]) for n in sim.outputs])
        for out, ref in zip(outs, rf, strict=True)
    ]


def _loss(cosine: float | None) -> float:
    """1 - cosine; infinite for an unmeasured or NaN cosine (always worth a closer look)."""
    return math.inf if cosine is None or math.isnan(cosine) else 1.0 - cosine


def _nan_last(v: float | None) -> float:
    return math.inf if v is None or math.isnan(v) else v
