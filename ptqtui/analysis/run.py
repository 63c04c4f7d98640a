"""The analyses in order, under one time budget: what ``diagnose`` calls.

calibration (one streaming pass, the config's method) -> task metric (headline, loss band)
-> node table -> sensitivity -> accumulated error curve -> method sweep.

With ``time_budget`` the calibration and the headline always run (the ``deadline`` says at
once when the budget is below them, and then nothing else runs), the node table unless they
spent the analyses' share; the rest share what is left (sensitivity about half, the curve a
fifth, the sweep the remainder), each trimming itself, most promising work first, saying in
``Analysis.notes`` what it skipped and listed in ``Analysis.trimmed`` (what was left out is
"not measured", never a conclusion).
``on_stage`` receives the Analysis so far after each stage (the rest ``pending``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ptqtui.analysis.accumulate import accumulated_error
from ptqtui.analysis.context import (
    AGREEMENT_SAMPLES,
    AnalysisUnavailable,
    SimContext,
    build_context,
)
from ptqtui.analysis.measure import Allowance, Outcome, affordable, time_one_pass
from ptqtui.analysis.nodes import node_table
from ptqtui.analysis.results import (
    Analysis,
    AnalysisStage,
    CurvePoint,
    NodeRow,
    Quality,
    SweepRow,
    Timing,
)
from ptqtui.analysis.sensitivity import sensitivity
from ptqtui.analysis.sweep import method_sweep
from ptqtui.analysis.task import task_metric
from ptqtui.budget import NOT_MEASURED
from ptqtui.memory import release
from ptqtui.progress import ProgressCallback, check_cancel, report
from ptqtui.quant.settings import QuantFlags

if TYPE_CHECKING:
    from ptqtui.budget import Deadline
    from ptqtui.inputs.resolve import LoadedInputs

__all__ = ["AnalysisUnavailable", "SimContext", "StageCallback", "describe_scheme", "run_analysis"]

log = logging.getLogger(__name__)
StageCallback = Callable[[AnalysisStage, Analysis], None]
STAGES = tuple(AnalysisStage)  # in the order they run

T = TypeVar("T")

SHARES = {"sensitivity": 0.5, "accumulated error": 0.2, "method sweep": 0.3}
# Share of the time budget one agreement measurement (float decode + quantized pass per
# sample) may take; the plan re-measures several what-ifs on the same samples.
AGREEMENT_SHARE = 0.05


def trim_agreement_samples(ctx: SimContext, time_budget: float) -> list[str]:
    """Keep the agreement samples the budget allows, never fewer than AGREEMENT_SAMPLES."""
    wanted = len(ctx.kept)
    floor = min(wanted, AGREEMENT_SAMPLES)
    n = max(floor, affordable(AGREEMENT_SHARE * time_budget, 2 * ctx.pass_seconds, wanted))
    if n >= wanted:
        return []
    ctx.kept = ctx.kept[:n]
    ctx._float_preds = ctx._float_preds[:n] if ctx._float_preds is not None else None
    return [f"task agreement on {n} of {wanted} calibration samples (--time-budget)"]


def _below_floor(
    deadline: Deadline, ctx: SimContext, notes: list[str], progress: ProgressCallback | None
) -> bool:
    """Whether the time budget is below what calibration (done) and the headline (its
    minimum samples, at the pass just timed) need; said at once, in the notes and the log."""
    deadline.first_pass(ctx.pass_seconds)
    n = min(len(ctx.kept), AGREEMENT_SAMPLES)
    # a headline sample costs about two passes (the quantized pass and the decoding of both
    # outputs: a detector's boxes cost as much as its pass), as trim_agreement_samples counts
    passes = 2 * n + (len(ctx.eval) if ctx.eval is not None else 0)
    passes += len(ctx.task_eval) if ctx.task_eval is not None else 0
    record = deadline.set_floor(n, passes)
    if not record.below_floor:
        return False
    note = record.floor_text()
    notes.append(note)
    log.warning("%s", note)
    report(progress, "time budget", 0, None, "below the floor: calibration and headline only")
    return True


def describe_scheme(ctx: SimContext) -> str:
    """'int8 per-tensor, kl:num_bin=2048; 2 nodes int16; 1 node on CPU'."""
    cal = ctx.calibration
    parts = [
        f"int8 {'per-channel' if cal.per_channel else 'per-tensor'}"
        + (" asymmetric" if cal.asymmetric else "")
        + f", {_method_text(cal.method)}"
    ]
    if cal.bias_deltas:
        parts.append("bias corrected")
    placement = ctx.scheme.placement
    int16 = 0
    for node in ctx.sim.graph.quantized_nodes():
        if placement.get(node.name) == "BPU" and any(
            ctx.scheme.dtype(k) == "int16" for k in node.act_points
        ):
            int16 += 1
    cpu = [n for n, p in placement.items() if p == "CPU"]
    if int16:
        parts.append(f"{int16} node{'s' if int16 > 1 else ''} int16")
    if cpu:
        parts.append(f"{len(cpu)} node{'s' if len(cpu) > 1 else ''} on CPU")
    return "; ".join(parts)


def _method_text(label: str) -> str:
    """The converter's method label as prose: "max-percentile:percentile=0.99995,per_channel"
    -> "max-percentile:percentile=0.99995" (per-channel is said before it), commas spaced."""
    return label.removesuffix(",per_channel").replace(",", ", ")


def run_analysis(
    inputs: LoadedInputs,
    *,
    sensitivity_samples: int = 8,
    time_budget: float | None = None,
    seed: int = 0,
    flags: QuantFlags | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    cache_dir: Path | None = None,
    cache_limit: int | None = None,
    on_stage: StageCallback | None = None,
    deadline: Deadline | None = None,
) -> tuple[Analysis, SimContext]:
    """Calibrate as the config asks and run every analysis; raises ``AnalysisUnavailable``
    when there is nothing to calibrate with, ``Cancelled`` when ``cancel`` is set.
    ``on_stage(stage, analysis so far)`` after each stage, for results as they come.
    ``deadline``: the diagnosis' one deadline, told the pass cost and the mandatory part's
    (calibration and headline); below that floor nothing beyond them is measured."""
    if sensitivity_samples < 1:
        raise ValueError("sensitivity_samples must be at least 1")
    if time_budget is not None and time_budget <= 0:
        raise ValueError("time_budget must be positive")
    t0 = time.perf_counter()
    timings: list[Timing] = []
    notes: list[str] = []
    trimmed: list[AnalysisStage] = []

    ctx = build_context(
        inputs,
        sensitivity_samples=sensitivity_samples,
        flags=flags,
        seed=seed,
        progress=progress,
        cancel=cancel,
        cache_dir=cache_dir,
        cache_limit=cache_limit,
    )
    timings.append(Timing("calibration", time.perf_counter() - t0, ctx.sim.forward_passes or None))
    notes += ctx.notes
    ctx.pass_seconds = time_one_pass(ctx.sim, ctx.samples[0], ctx.scheme, ctx.calibration)
    below_floor = deadline is not None and _below_floor(deadline, ctx, notes, progress)
    scheme = describe_scheme(ctx)
    analysis = Analysis(scheme=scheme, log=ctx.calibration.log, pending=STAGES[1:])

    def finished(stage: AnalysisStage, **parts: object) -> None:
        """Fold the stage's results into the Analysis so far and hand it on."""
        nonlocal analysis
        release()  # what the stage dropped goes back to the system
        analysis = dataclasses.replace(
            analysis,
            **parts,
            timings=tuple(timings),
            notes=tuple(notes),
            trimmed=tuple(trimmed),
            pending=STAGES[STAGES.index(stage) + 1 :],
        )
        if on_stage is not None:
            on_stage(stage, analysis)

    finished(AnalysisStage.CALIBRATION)
    if time_budget is not None:
        cut = trim_agreement_samples(ctx, time_budget)
        notes += cut
        if cut:
            trimmed.append(AnalysisStage.TASK_METRIC)

    t = time.perf_counter()
    before = ctx.sim.forward_passes
    report(progress, "task metric", 0, 1)
    quality = _cached(
        ctx,
        AnalysisStage.TASK_METRIC,
        (),
        Quality,
        lambda: Outcome((task_metric(ctx, cancel=cancel),)),
    ).records[0]
    timings.append(Timing("task metric", time.perf_counter() - t, ctx.sim.forward_passes - before))
    if deadline is not None:  # the later stages estimate with the headline's passes, warm
        deadline.timed(ctx.sim.forward_passes - before, time.perf_counter() - t)
        ctx.pass_seconds = deadline.pass_seconds
    finished(AnalysisStage.TASK_METRIC, quality=quality)

    def left() -> float | None:
        return None if time_budget is None else max(0.0, time_budget - (time.perf_counter() - t0))

    def record(stage: AnalysisStage, out: Outcome) -> None:
        timings.append(Timing(stage.value, out.seconds, out.passes))
        notes.extend(out.notes)
        if not out.complete:
            trimmed.append(stage)

    if below_floor or (deadline is not None and left() == 0.0):
        # nothing beyond calibration and the headline is measured: below the floor, or the
        # analyses' share spent by them (the node table's one sample costs hundreds of passes)
        for stage in STAGES[STAGES.index(AnalysisStage.NODE_TABLE) :]:
            record(stage, Outcome((), (f"{stage.value} {NOT_MEASURED}",), complete=False))
        finished(AnalysisStage.SWEEP)
        return analysis, ctx

    check_cancel(cancel)
    rows_out = _cached(
        ctx,
        AnalysisStage.NODE_TABLE,
        (),
        NodeRow,
        lambda: node_table(ctx, Allowance(left(), progress, cancel)),
    )
    record(AnalysisStage.NODE_TABLE, rows_out)
    finished(AnalysisStage.NODE_TABLE, nodes=rows_out.records)

    def share(stage: str, remaining_shares: float) -> float | None:
        rest = left()
        return None if rest is None else rest * SHARES[stage] / remaining_shares

    check_cancel(cancel)
    sens = _cached(
        ctx,
        AnalysisStage.SENSITIVITY,
        (tuple(rows_out.records),),
        NodeRow,
        lambda: sensitivity(
            ctx, rows_out.records, Allowance(share("sensitivity", 1.0), progress, cancel)
        ),
    )
    record(AnalysisStage.SENSITIVITY, sens)
    finished(AnalysisStage.SENSITIVITY, nodes=sens.records)

    check_cancel(cancel)
    curve = _cached(
        ctx,
        AnalysisStage.CURVE,
        (),
        CurvePoint,
        lambda: accumulated_error(
            ctx, Allowance(share("accumulated error", 0.5), progress, cancel)
        ),
    )
    record(AnalysisStage.CURVE, curve)
    finished(AnalysisStage.CURVE, curve=curve.records)

    check_cancel(cancel)
    rest = left()
    n_eval = len(ctx.eval) if ctx.eval is not None else 0
    stored = _stored(ctx, AnalysisStage.SWEEP, (), SweepRow)
    if stored is not None:
        sweep = stored
    elif rest is not None and rest < (len(ctx.samples) + n_eval) * ctx.pass_seconds:
        # not even its first row fits (a calibration and a measurement): none of it
        sweep = Outcome((), ("method sweep not measured (time budget)",), complete=False)
    else:
        sweep = _cached(
            ctx,
            AnalysisStage.SWEEP,
            (),
            SweepRow,
            lambda: method_sweep(ctx, budget_seconds=rest, progress=progress, cancel=cancel),
        )
    record(AnalysisStage.SWEEP, sweep)
    if ctx.store is not None and ctx.store.hits:
        notes.append(_cache_note(ctx.store.hits, ctx.store.root))
    if ctx.sim.batchable is False and ctx.sim.batch_note:
        notes.append(f"samples run one at a time: {ctx.sim.batch_note}")
    finished(AnalysisStage.SWEEP, sweep=sweep.records)
    return analysis, ctx


def _stored(
    ctx: SimContext, stage: AnalysisStage, params: tuple[object, ...], record: type[T]
) -> Outcome[T] | None:
    """What a run on the same model, data and configured settings stored for ``stage``
    (--cache), or None."""
    key = ctx.stage_key(stage.value, *params)
    if key is None or ctx.store is None:
        return None
    t = time.perf_counter()
    hit = ctx.store.get("stage", key, tuple[tuple[record, ...], tuple[str, ...]], label=stage.value)
    if hit is None:
        return None
    records, notes = hit
    return Outcome(records, notes, 0, time.perf_counter() - t)


def _cached(
    ctx: SimContext,
    stage: AnalysisStage,
    params: tuple[object, ...],
    record: type[T],
    compute: Callable[[], Outcome[T]],
) -> Outcome[T]:
    """``compute()``, or what a run on the same model, data and configured settings stored
    (--cache). A stage the time budget cut short is not stored (a later run measures it
    whole); a stored whole stage serves a budgeted run too."""
    hit = _stored(ctx, stage, params, record)
    if hit is not None:
        return hit
    out = compute()
    key = ctx.stage_key(stage.value, *params)
    if out.complete and key is not None and ctx.store is not None:
        ctx.store.put("stage", key, (out.records, out.notes))
    return out


def _cache_note(hits: list[str], root: Path) -> str:
    """'from the cache (DIR): node table, sensitivity; 9 what-if measurements'."""
    counts = Counter(hits)
    parts = [f"{n} {what}" if n > 1 else what for what, n in counts.items()]
    return f"from the cache ({root}): " + ", ".join(parts)
