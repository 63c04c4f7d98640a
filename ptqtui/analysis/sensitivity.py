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
# less than ADAPT_LOSS cosine (a tenth of the converter's 0.999 line), or each more than
# ADAPT_CLEAR, is not sampled further unless it ranks among the SPLIT_TOP most sensitive.
ADAPT_FIRST = 2
ADAPT_LOSS = (1.0 - SENSITIVE_COSINE) / 10
ADAPT_CLEAR = (1.0 - SENSITIVE_COSINE) * 10  # ... or each loses more than ten times the line
# The others are measured on ADAPT_MIDDLE samples, and only the SPLIT_TOP most sensitive then
# on every one. On PP-OCRv4 det 640 (294 nodes, 8 samples) 234 nodes were near the line after
# 2 samples: all 8 for each cost 1,870 runs of 2,352.
ADAPT_MIDDLE = 4


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
    # one sample a run (a 640 detector): every node on the first ADAPT_FIRST samples, the
    # rest of the samples only for the nodes where they can change a conclusion
    adaptive = sim.batchable is False and len(samp) > ADAPT_FIRST
    first = ADAPT_FIRST if adaptive else len(samp)
    seen: dict[tuple[str, str], list[metrics.Similarity]] = {}
    early: list[str] = []  # nodes measured on the first samples only

    workers = max(1, ctx.workers)
    pool: WorkerPool | None = None
    if workers > 1 and len(cands) >= 2 * workers:
        pool = WorkerPool(sim, cal, scheme, samp, rf, workers)
        notes.append(f"sensitivity: {workers} worker processes")

    def keys_of(node: str, target: str) -> tuple[str, ...]:
        return tuple(k for k in node_points(sim.graph, scheme, node, target) if k in active)

    def measure_all(
        jobs: list[tuple[str, str]], lo: int, hi: int
    ) -> Iterator[tuple[str, str, float | None]]:
        """(node, target, cosine over every sample measured so far) of each job, in order,
        as samples ``lo:hi`` are measured."""
        nonlocal passes
        keyed = [(n, t, keys_of(n, t)) for n, t in jobs]
        todo = [k for _, _, k in keyed if k]
        if pool is not None:
            got = pool.map(per_sample, todo, lo, hi)
        else:
            got = (per_sample(sim, scheme.only(k), cal, samp[lo:hi], rf[lo:hi]) for k in todo)
        for node, target, keys in keyed:
            if not keys:  # e.g. the weights of a node without weights
                yield node, target, None
                continue
            sims = seen.setdefault((node, target), [])
            sims += next(got)
            passes += hi - lo
            yield node, target, metrics.average(sims).cosine

    def more(jobs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The jobs the samples after the first ones can still change (see `undecided`)."""
        if not adaptive:
            return []
        ranked = sorted(jobs, key=lambda j: _nan_last(values[j[0]].get(j[1])))
        top = set(ranked[:SPLIT_TOP])
        return [j for j in jobs if j in top or undecided(seen.get(j, []))]

    try:
        both = [(n, "both") for n in cands]
        for node, _, cosine in measure_all(both, 0, first):
            check_cancel(cancel)
            values[node]["both"] = cosine
            done += 1
            report(progress, stage, done, total, node)
        again = more(both)
        mid = min(len(samp), ADAPT_MIDDLE) if adaptive else len(samp)
        for node, _, cosine in measure_all(again, first, mid):
            check_cancel(cancel)
            values[node]["both"] = cosine
        middle: list[str] = []  # nodes measured on the first `mid` samples
        if adaptive and mid < len(samp):  # every sample for the most sensitive
            ranked = sorted(both, key=lambda j: _nan_last(values[j[0]].get("both")))
            top = [j for j in ranked[:SPLIT_TOP] if keys_of(j[0], "both")]
            fresh = [j for j in top if j not in again]  # stopped after the first samples
            for jobs, lo in ((fresh, first), ([j for j in top if j in again], mid)):
                for node, _, cosine in measure_all(jobs, lo, len(samp)):
                    check_cancel(cancel)
                    values[node]["both"] = cosine
            middle = [n for n, t in again if (n, t) not in top and keys_of(n, t)]
            again = [*again, *fresh]
        if adaptive:
            early = [n for n, _ in both if (n, "both") not in again and keys_of(n, "both")]
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
            for node, target, cosine in measure_all(jobs, 0, len(samp)):
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
            f"{len(samp)} samples (each sample lost less than {ADAPT_LOSS:g} cosine, or more "
            f"than {ADAPT_CLEAR:g}: below or beyond the {SENSITIVE_COSINE:g} line either way; "
            f"the {SPLIT_TOP} most sensitive are measured on all)"
        )
    if middle:
        notes.append(
            f"sensitivity: {len(middle)} of {len(cands)} nodes measured on {ADAPT_MIDDLE} of "
            f"{len(samp)} samples (samples run one at a time; the {SPLIT_TOP} most sensitive "
            "on all)"
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


def per_sample(
    sim: Simulator,
    only: Scheme,
    cal: Calibration,
    samp: Sequence[Sample],
    rf: Sequence[Mapping[str, np.ndarray]],
) -> list[metrics.Similarity]:
    """One what-if's output similarity on each sample (a module-level function: the worker
    processes run it as one process does, so the records are the same)."""
    return _similarities(sim, samp, only, cal, rf) if samp else []


def undecided(first: Sequence[metrics.Similarity]) -> bool:
    """Whether more samples could move a node across the sensitivity line: its first samples
    neither all lost less than ``ADAPT_LOSS`` (a tenth of the line's loss) nor all more than
    ``ADAPT_CLEAR`` (ten times it). NaN is undecided."""
    losses = [1.0 - s.cosine for s in first]
    if not losses or any(math.isnan(v) for v in losses):
        return True
    return not (max(losses) < ADAPT_LOSS or min(losses) > ADAPT_CLEAR)


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
