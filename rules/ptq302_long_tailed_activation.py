"""PTQ302: activations whose max lies far above their 99.99th percentile, where clipping helps."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.policy import MAJOR_COSINE_GAIN, MAJOR_POINTS, MIN_GAIN
from ptqtui.remedy import Remedy, SettingsDelta

if TYPE_CHECKING:
    from ptqtui.analysis.results import Analysis, NodeRow, SweepRow
    from ptqtui.check.context import Context

# max |x| above this many times the 99.99th percentile: plain max calibration spends most
# int8 levels on a few outliers (a 4x tail = 2 bits of resolution lost for the bulk).
TAIL_RATIO = 4.0
MAX_NODES_SHOWN = 5
CLIPPING_METHODS = ("kl", "max")  # max with a max_percentile below 1

RULE = RuleInfo(
    code="PTQ302",
    name="long-tailed-activation",
    category="numerics",
    severity=Severity.MAJOR,
    title="Long-tailed activations calibrated with plain max",
    why="A few outliers set the int8 range; the bulk of the values gets few levels and loses "
    "precision. Clipping the tail (percentile or kl) measurably keeps more accuracy.",
    fix="Set calibration_parameters.calibration_type: max with max_percentile (0.99995 .. "
    "0.999, the trend decides), or kl.",
    needs=("analysis",),
    example="block2/Add: max |x| 41.3 is 9.6x its 99.99th percentile; max_percentile 0.9999 "
    "raises output cosine 0.9812 -> 0.9906",
)


def tail_ratio(n: NodeRow) -> float | None:
    if n.act_p9999 is None or n.act_max is None or n.act_p9999 <= 0:
        return None
    peak = max(abs(n.act_max), abs(n.act_min or 0.0))
    return peak / n.act_p9999


def check(ctx: Context) -> list[Finding]:
    analysis: Analysis = ctx.analysis
    tails = []
    for n in analysis.nodes:
        ratio = tail_ratio(n)
        if ratio is not None and ratio > TAIL_RATIO:
            tails.append((ratio, n))
    if not tails:
        return []
    tails.sort(key=lambda t: -t[0])
    pair = clipping_gain(analysis.sweep)
    if pair is None:
        return []
    plain, best = pair
    noise = max(MIN_GAIN, plain.noise or 0.0, best.noise or 0.0)
    delta = best.cosine - plain.cosine
    if delta <= noise:
        return []
    points = None
    if plain.top1 is not None and best.top1 is not None:
        points = 100 * (best.top1 - plain.top1)
    severity = (
        Severity.MAJOR
        if delta >= MAJOR_COSINE_GAIN or (points is not None and points >= MAJOR_POINTS)
        else Severity.MINOR
    )
    ratio, worst = tails[0]
    measured = f"output cosine {plain.cosine:.4f} (max) -> {best.cosine:.4f} ({best.label})"
    if points is not None and plain.top1 is not None and best.top1 is not None:
        measured += f", top-1 {100 * plain.top1:.1f} % -> {100 * best.top1:.1f} %"
    config = ctx.maybe("config")
    want = dict(best.settings)
    # no remedy when the config already writes the best clipping (nothing left to change)
    changes = any(
        config is None or str(config.values.get(f"calibration_parameters.{key}")) != want[key]
        for key in ("calibration_type", "max_percentile")
        if key in want
    )
    evidence = [
        Evidence(
            "max |x| / 99.99th percentile of |x|",
            f"{r:.1f} ({max(abs(n.act_max or 0.0), abs(n.act_min or 0.0)):.3g} / "
            f"{n.act_p9999:.3g})",
            f"<= {TAIL_RATIO:g}",
            where=f"node {n.name}",
        )
        for r, n in tails[:MAX_NODES_SHOWN]
    ]
    evidence.append(Evidence("noise of the measurement (cosine)", f"{noise:.5f}"))
    return [
        RULE.finding(
            f"{worst.name}: max |x| is {ratio:.1f}x its 99.99th percentile"
            + (f" ({len(tails)} nodes above {TAIL_RATIO:g}x)" if len(tails) > 1 else "")
            + f"; {best.label} beats plain max: {measured}",
            *evidence,
            severity=severity,
            remedy=Remedy(settings=clipping_delta(best)) if changes else None,
            measured=measured,
            related=tuple(n.name for _, n in tails[:MAX_NODES_SHOWN]),
        )
    ]


def clipping_delta(row: SweepRow) -> SettingsDelta:
    """The calibration a clipping row measured (its method, and its percentile if any)."""
    want = dict(row.settings)
    percentile = want.get("max_percentile")
    return SettingsDelta(
        calibration_type=want["calibration_type"],
        max_percentile=float(percentile) if percentile is not None else None,
    )


def clipping_gain(sweep: tuple[SweepRow, ...]) -> tuple[SweepRow, SweepRow] | None:
    """(plain max row, best clipping row: kl or max with a percentile), without flags."""
    plain = next((r for r in sweep if r.settings == (("calibration_type", "max"),)), None)
    if plain is None or math.isnan(plain.cosine):
        return None
    clipping = [
        r
        for r in sweep
        if dict(r.settings).get("calibration_type") in CLIPPING_METHODS
        and r is not plain
        and set(dict(r.settings)) <= {"calibration_type", "max_percentile"}
        and not math.isnan(r.cosine)
    ]
    if not clipping:
        return None
    return plain, max(clipping, key=lambda r: r.cosine)
