"""PTQ301: per-tensor weights where the per-channel ranges differ widely."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.policy import MAJOR_COSINE_GAIN, MAJOR_POINTS, MIN_GAIN
from ptqtui.remedy import Remedy, SettingsDelta

if TYPE_CHECKING:
    from ptqtui.analysis.results import Analysis, SweepRow
    from ptqtui.check.context import Context

# Widest / median per-channel |w| max above this: one int8 scale leaves the narrow channels
# a handful of levels (8x wider = 3 bits lost). Depthwise convs after BN folding reach 30+.
RATIO_THRESHOLD = 8.0
MAX_NODES_SHOWN = 5

RULE = RuleInfo(
    code="PTQ301",
    name="per-tensor-weight-range",
    category="numerics",
    severity=Severity.MAJOR,
    title="Weights quantized per tensor where channel ranges differ widely",
    why="One scale for all output channels leaves the channels with small weights only a few "
    "int8 levels; depthwise convolutions lose most.",
    fix="Set calibration_parameters.per_channel: True (with calibration_type max or kl).",
    needs=("analysis",),
    example="block1/dw/Conv weights span 38.5x between channels; per_channel raises output "
    "cosine 0.9911 -> 0.9958",
)


def check(ctx: Context) -> list[Finding]:
    analysis: Analysis = ctx.analysis
    if _per_channel_on(ctx, analysis):
        return []
    wide = sorted(
        (n for n in analysis.nodes if (n.weight_range_ratio or 0.0) > RATIO_THRESHOLD),
        key=lambda n: -(n.weight_range_ratio or 0.0),
    )
    if not wide:
        return []
    gain = measured_gain(ctx, analysis)
    severity = Severity.MINOR
    measured = None
    if gain is not None:
        base, with_pc = gain
        noise = max(MIN_GAIN, base.noise or 0.0, with_pc.noise or 0.0)
        delta = with_pc.cosine - base.cosine
        points = _points(base, with_pc)
        measured = f"output cosine {base.cosine:.4f} -> {with_pc.cosine:.4f}" + (
            f", top-1 {100 * base.top1:.1f} % -> {100 * with_pc.top1:.1f} %"
            if base.top1 is not None and with_pc.top1 is not None
            else ""
        )
        if delta <= noise:
            return []  # the ranges differ, but per_channel does not measurably help
        if delta >= MAJOR_COSINE_GAIN or (points is not None and points >= MAJOR_POINTS):
            severity = Severity.MAJOR
    worst = wide[0]
    message = (
        f"weights of {worst.name} span {worst.weight_range_ratio:.1f}x between channels"
        + (f" ({len(wide)} nodes above {RATIO_THRESHOLD:g}x)" if len(wide) > 1 else "")
        + (f"; per_channel: {measured}" if measured else "; per_channel not measured")
    )
    evidence = tuple(
        Evidence(
            "widest / median channel |w| max",
            f"{n.weight_range_ratio:.1f}",
            f"<= {RATIO_THRESHOLD:g}",
            where=f"node {n.name}",
        )
        for n in wide[:MAX_NODES_SHOWN]
    )
    config = ctx.maybe("config")
    delta = SettingsDelta(per_channel=True)
    if config is not None and config.calibration_type in ("default", "mix"):
        # per_channel has no effect with default or mix: name the method measured with it
        method = dict(gain[1].settings).get("calibration_type", "max") if gain else "max"
        delta = SettingsDelta(calibration_type=method, per_channel=True)
    return [
        RULE.finding(
            message,
            *evidence,
            severity=severity,
            remedy=Remedy(settings=delta),
            measured=measured,
            related=tuple(n.name for n in wide[:MAX_NODES_SHOWN]),
        )
    ]


@dataclass(frozen=True, slots=True)
class _Point:
    """One measured state: what the gain is computed from (a sweep row or a what-if)."""

    cosine: float
    top1: float | None = None
    agreement: float | None = None
    noise: float | None = None
    settings: tuple[tuple[str, str], ...] = ()


def measured_gain(ctx: Context, analysis: Analysis) -> tuple[_Point, _Point] | None:
    """Output quality without and with per_channel: from the method sweep, else measured by
    the simulator on the configured settings (when the sweep did not get that far)."""
    pair = per_channel_gain(analysis.sweep)
    if pair is not None:
        base, with_pc = pair
        return (
            _Point(base.cosine, base.top1, base.agreement, base.noise, base.settings),
            _Point(
                with_pc.cosine, with_pc.top1, with_pc.agreement, with_pc.noise, with_pc.settings
            ),
        )
    sim = ctx.maybe("sim")
    if sim is None or not hasattr(sim, "measure") or not hasattr(sim, "settings"):
        return None
    settings = sim.settings
    if settings.calibration_type not in ("max", "kl"):
        settings = dataclasses.replace(settings, calibration_type="max")
    out = []
    for s in (settings, dataclasses.replace(settings, per_channel=True)):
        m = sim.measure(s)
        cfg = (("calibration_type", s.calibration_type),)
        out.append(_Point(m.similarity.cosine, m.top1, m.agreement, m.noise, cfg))
    return out[0], out[1]


def per_channel_gain(sweep: tuple[SweepRow, ...]) -> tuple[SweepRow, SweepRow] | None:
    """(row without per_channel, the same row with it): the best-measured such pair."""
    pairs = []
    for row in sweep:
        s = dict(row.settings)
        if str(s.get("per_channel", "")).lower() != "true":
            continue
        rest = tuple((k, v) for k, v in row.settings if k != "per_channel")
        base = next((r for r in sweep if r.settings == rest), None)
        if base is not None and not math.isnan(row.cosine) and not math.isnan(base.cosine):
            pairs.append((base, row))
    if not pairs:
        return None
    return max(pairs, key=lambda p: p[1].cosine)


def _points(a: _Point, b: _Point) -> float | None:
    if a.top1 is not None and b.top1 is not None:
        return 100 * (b.top1 - a.top1)
    if a.agreement is not None and b.agreement is not None:
        return 100 * (b.agreement - a.agreement)
    return None


def _per_channel_on(ctx: Context, analysis: Analysis) -> bool:
    chosen = next((r for r in analysis.sweep if r.chosen), None)
    if chosen is not None:
        return str(dict(chosen.settings).get("per_channel", "")).lower() == "true"
    config = ctx.maybe("config")
    return bool(config is not None and config.per_channel)
