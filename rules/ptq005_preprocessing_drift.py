"""PTQ005: calibration and evaluation data preprocessed differently (their statistics
disagree). The comparison with --reference-outputs is not implemented yet."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ptqtui.check.context import (
    DIV_255,
    NORM_ADDED,
    NORM_REMOVED,
    OTHER_LAYOUT,
    SWAPPED,
    TIMES_255,
)
from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo

if TYPE_CHECKING:
    from ptqtui.check.context import Context, DataStats

RULE = RuleInfo(
    code="PTQ005",
    name="preprocessing-drift",
    category="pipeline",
    severity=Severity.MAJOR,
    title="Calibration and evaluation data are preprocessed differently",
    why="The calibrated ranges fit the calibration data; if evaluation (and deployment) data "
    "come through another pipeline (scale, channel order, normalisation), the int8 model is "
    "calibrated for inputs it never sees. (The check against --reference-outputs, your own "
    "float outputs to 3 decimals, is not implemented yet.)",
    fix="Produce calibration and evaluation data with one preprocessing script, the training "
    "pipeline's (same reader, colour order, resize, scale).",
    needs=("data_stats", "eval_stats"),
    example="[major] PTQ005 calibration data lies in 0..1, evaluation images in 0..255: the "
    "two are preprocessed differently",
)

# The rule naming the mistake the model-response probe found, when there is one
RELATED = {
    SWAPPED: "PTQ001",
    NORM_REMOVED: "PTQ002",
    TIMES_255: "PTQ003",
    DIV_255: "PTQ003",
    NORM_ADDED: "PTQ003",
    OTHER_LAYOUT: "PTQ102",
}
MEAN_DRIFT = 0.5  # a channel mean apart by half the spread of the per-sample means: drift
SCALE_RATIO = 4.0  # ranges differing by 4x or more: a different scale (e.g. 0..1 vs 0..255)


def check(ctx: Context) -> list[Finding]:
    [evaluation] = ctx.eval_stats
    calib = ctx.data_stats_of(evaluation.input)
    eval_dir = ctx.inputs.eval_set.directory if ctx.inputs and ctx.inputs.eval_set else None
    where = f"{ctx.calibration_dir} vs {eval_dir}"
    preferred = {v.preferred for v in ctx.maybe("probe") or ()}
    related = tuple(sorted({RELATED[p] for p in preferred if p in RELATED}))
    finding = _scale(calib, evaluation, where, related) or _order(
        ctx, calib, evaluation, where, related
    )
    if finding is None:
        finding = _means(calib, evaluation, where, related)
    return [finding] if finding is not None else []


def _describe(stats: DataStats) -> str:
    return f"{stats.min:.3g}..{stats.max:.3g}, mean {stats.mean:.3g}"


def _scale(calib: DataStats, ev: DataStats, where: str, related: tuple[str, ...]) -> Finding | None:
    c_span = max(calib.max - calib.min, 1e-12)
    e_span = max(ev.max - ev.min, 1e-12)
    ratio = c_span / e_span
    normalised_diff = calib.negative != ev.negative
    if not normalised_diff and 1 / SCALE_RATIO < ratio < SCALE_RATIO:
        return None
    return RULE.finding(
        f"calibration data spans {_describe(calib)}, evaluation images {_describe(ev)}: the two "
        "are preprocessed differently (scale or normalisation)",
        Evidence("calibration value range", _describe(calib), _describe(ev), where),
        severity=Severity.MAJOR,
        related=related,
    )


def _order(
    ctx: Context, calib: DataStats, ev: DataStats, where: str, related: tuple[str, ...]
) -> Finding | None:
    test = ctx.maybe("order_test")
    if test is None or not test.reversed_fits:
        return None
    return RULE.finding(
        "the calibration data matches the evaluation images with its channels reversed "
        f"(channel means {_means_text(calib)} vs {_means_text(ev)}): one of them is BGR, the "
        "other RGB",
        Evidence(
            "colours of the samples vs the evaluation images (energy distance)",
            test.describe(),
            None,
            where,
        ),
        severity=Severity.MAJOR,
        related=related,
    )


def _means_text(stats: DataStats) -> str:
    return " ".join(f"{m:.3g}" for m in stats.channel_means)


def _means(calib: DataStats, ev: DataStats, where: str, related: tuple[str, ...]) -> Finding | None:
    worst = 0.0
    for c, (a, b) in enumerate(zip(calib.channel_means, ev.channel_means, strict=True)):
        spread = math.hypot(calib.channel_stds[c], ev.channel_stds[c]) or 1e-12
        worst = max(worst, abs(a - b) / spread)
    if worst < MEAN_DRIFT:
        return None
    return RULE.finding(
        f"calibration and evaluation channel means differ by {worst:.1f}x their spread "
        f"({_means_text(calib)} vs {_means_text(ev)})",
        Evidence("channel means", _means_text(calib), _means_text(ev), where),
        severity=Severity.MINOR,
        related=related,
        fix="Check that calibration samples come from the evaluation distribution and "
        "go through the same preprocessing.",
    )
