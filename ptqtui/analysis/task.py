"""Task metric: top-1 accuracy float vs quantized with labels, top-1 agreement without, output
cosine always; and the loss band that routes the plan (bands and cut-offs: `ptqtui.policy`)."""

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
        # no top-1 at all (not a classifier): the cosine is all there is
        if math.isnan(cosine) or cosine < LARGE_LOSS_COSINE:
            return LossBand.LARGE
        return LossBand.MEDIUM if cosine < MEDIUM_LOSS_COSINE else LossBand.SMALL
    if points > LARGE_LOSS_POINTS:
        return LossBand.LARGE
    return LossBand.MEDIUM if points >= MEDIUM_LOSS_POINTS else LossBand.SMALL


def quality_of(ctx: SimContext, m: Measurement) -> Quality:
    cosine = m.similarity.cosine
    if m.top1 is not None and ctx.eval is not None:
        n = len(ctx.eval)
        float_acc = ctx.eval.float_accuracy
        points = 100.0 * (float_acc - m.top1)
        basis = f"top-1 accuracy on {n} labelled images"
        return Quality(
            cosine, float_acc, m.top1, m.agreement, points, loss_band(points, cosine), basis, n
        )
    if m.agreement is not None:
        points = 100.0 * (1.0 - m.agreement)
        n = len(ctx.kept)
        basis = f"top-1 agreement with the float model on {n} calibration samples (no labels)"
        band = loss_band(points, cosine)
        return Quality(cosine, None, None, m.agreement, points, band, basis, n)
    basis = f"output cosine on {len(ctx.samples)} calibration samples (not a classifier)"
    return Quality(cosine, None, None, None, None, loss_band(None, cosine), basis, len(ctx.samples))


def task_metric(ctx: SimContext, *, cancel: threading.Event | None = None) -> Quality:
    """The configured scheme measured as the headline."""
    return quality_of(ctx, ctx.measure(None, cancel=cancel))
