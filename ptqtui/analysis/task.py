"""Task metric: top-1 accuracy float vs quantized with labels, the task agreement with the float
model without (top-1, box F1, map IoU, exact strings: `ptqtui.analysis.tasks`), output cosine
always; and the loss band that routes the plan (bands and cut-offs: `ptqtui.policy`)."""

from __future__ import annotations

import math
import threading

from ptqtui.analysis.context import Measurement, SimContext
from ptqtui.analysis.results import Quality
from ptqtui.policy import (
    LARGE_LOSS_COSINE,
    LARGE_LOSS_POINTS,
    MEDIUM_LOSS_COSINE,
    MEDIUM_LOSS_POINTS,
    LossBand,
)


def loss_band(points: float | None, cosine: float) -> LossBand:
    """The band of a loss in accuracy points; from the output cosine when there is none."""
    if points is None or math.isnan(points):
        # no task metric at all: the cosine is all there is
        if math.isnan(cosine) or cosine < LARGE_LOSS_COSINE:
            return LossBand.LARGE
        return LossBand.MEDIUM if cosine < MEDIUM_LOSS_COSINE else LossBand.SMALL
    if points > LARGE_LOSS_POINTS:
        return LossBand.LARGE
    return LossBand.MEDIUM if points >= MEDIUM_LOSS_POINTS else LossBand.SMALL


def band_uncertain(low: float | None, high: float | None) -> bool:
    """Whether a loss interval in points straddles a band boundary (its ends in two bands)."""
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return False
    return loss_band(low, 1.0) is not loss_band(high, 1.0)


def quality_of(ctx: SimContext, m: Measurement) -> Quality:
    cosine = m.similarity.cosine
    iv = m.interval
    low = iv.low if iv is not None else None
    high = iv.high if iv is not None else None
    task = ctx.task.name if ctx.has_task_metric else None
    extra = {
        "metric": m.metric,
        "agreement_low": low,
        "agreement_high": high,
        "char_error_rate": m.cer,
        "task": task,
        "task_note": ctx.task_note,
    }
    if m.top1 is not None and ctx.eval is not None:
        n = len(ctx.eval)
        float_acc = ctx.eval.float_accuracy
        points = 100.0 * (float_acc - m.top1)
        basis = f"top-1 accuracy on {n} labelled images"
        return Quality(
            cosine,
            float_acc,
            m.top1,
            m.agreement,
            points,
            loss_band(points, cosine),
            basis,
            n,
            **extra,  # type: ignore[arg-type]
        )
    te = ctx.task_eval
    if m.top1 is not None and te is not None:
        # the task's real metric against the labels: float vs int8, in points of it
        points = 100.0 * (te.float_score - m.top1)
        basis = f"{te.metric} on {len(te)} labelled images"
        return Quality(
            cosine,
            te.float_score,
            m.top1,
            m.agreement,
            points,
            loss_band(points, cosine),
            basis,
            iv.samples if iv is not None else len(te),  # the agreement's (basis: the labels')
            **extra,  # type: ignore[arg-type]
            label_metric=te.metric,
            label_cer_float=float(sum(te.float_cers) / len(te.float_cers))
            if te.float_cers
            else None,
            label_cer_quant=m.label_cer,
        )
    if m.agreement is not None:
        points = 100.0 * (1.0 - m.agreement)
        n = iv.samples if iv is not None else len(ctx.kept)
        loss_low = 100.0 * (1.0 - high) if high is not None else None
        loss_high = 100.0 * (1.0 - low) if low is not None else None
        basis = f"{m.metric or 'agreement'} with the float model on {n} calibration samples"
        return Quality(
            cosine,
            None,
            None,
            m.agreement,
            points,
            loss_band(points, cosine),
            basis + " (no labels)",
            n,
            band_uncertain=band_uncertain(loss_low, loss_high),
            loss_low=loss_low,
            loss_high=loss_high,
            **extra,  # type: ignore[arg-type]
        )
    basis = f"output cosine on {len(ctx.samples)} calibration samples (no task metric)"
    return Quality(
        cosine,
        None,
        None,
        None,
        None,
        loss_band(None, cosine),
        basis,
        len(ctx.samples),
        **extra,  # type: ignore[arg-type]
    )


def task_metric(ctx: SimContext, *, cancel: threading.Event | None = None) -> Quality:
    """The configured scheme measured as the headline."""
    return quality_of(ctx, ctx.measure(None, cancel=cancel))
