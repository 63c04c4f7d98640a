"""Task metric: top-1 accuracy float vs quantized with labels, top-1 agreement without, output
cosine always; and the loss band that routes the plan (> 4 points large, 1.5-4 medium,
< 1.5 small)."""

from __future__ import annotations

import math
import threading

from ptqtui.analysis.context import Measurement, SimContext
from ptqtui.analysis.results import Quality

LARGE_LOSS = 4.0  # accuracy points
MEDIUM_LOSS = 1.5


def loss_band(points: float | None, cosine: float) -> str:
    """The band of a loss in accuracy points; from the output cosine when there is none."""
    if points is None or math.isnan(points):
        # no top-1 at all (not a classifier): the cosine is all there is
        if math.isnan(cosine) or cosine < 0.99:
            return "large"
        return "medium" if cosine < 0.999 else "small"
    if points > LARGE_LOSS:
        return "large"
    return "medium" if points >= MEDIUM_LOSS else "small"


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
