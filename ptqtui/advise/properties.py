"""Properties every plan keeps (issue 13: one meaning for every number shown), as checks that
return their violations: the demo tests and ``benchmarks/bench_plan.py`` run the same ones.

They read the typed Diagnosis only (a plan read back from JSON too), never its messages.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptqtui.advise.results import Pipeline, Reference
from ptqtui.policy import MIN_GAIN

if TYPE_CHECKING:
    from ptqtui.diagnosis import Diagnosis

SAME = 1e-9  # two figures of one measurement shown twice


class Property(enum.StrEnum):
    """One property of the plan's numbers (the value is the short column name)."""

    MEASURED_ON = "measured on"  # every measured step says what it was measured on
    CONTINUOUS = "continuous"  # the plan starts at the summary; step N+1 where step N ended
    SAME_REFERENCE = "same reference"  # a pipeline fix: top-1 vs labels, never a drop
    NO_LOSS = "no loss"  # no step that asks for a change loses beyond the noise
    HEADLINE = "headline acts"  # the headline next step changes something
    INT16 = "int16 >= -noise"  # no node's int16 gain below minus the measurement noise


@dataclass(frozen=True, slots=True)
class Violation:
    prop: Property
    where: str  # "step 2", a node name
    detail: str


def check(d: Diagnosis, props: tuple[Property, ...] = tuple(Property)) -> list[Violation]:
    """Every violation of ``props`` in ``d`` (nothing to check without a plan: no violation)."""
    out: list[Violation] = []
    for p in props:
        out += CHECKS[p](d)
    return out


def _steps(d: Diagnosis):
    return d.plan.steps if d.plan is not None else ()


def measured_on(d: Diagnosis) -> list[Violation]:
    out = []
    for s in _steps(d):
        where = f"step {s.number}"
        if s.before is not None or s.after is not None:
            if s.measured_on is None:
                out.append(Violation(Property.MEASURED_ON, where, "measured, but not on what"))
            elif s.effect() is None:
                out.append(Violation(Property.MEASURED_ON, where, "measured, but no effect"))
        if (
            s.measured_on is not None
            and s.measured_on.pipeline is Pipeline.FIXED
            and not s.measured_on.fixes
        ):
            out.append(Violation(Property.MEASURED_ON, where, "'as fixed' without the fixes"))
    return out


def continuous(d: Diagnosis) -> list[Violation]:
    plan = d.plan
    if plan is None:
        return []
    out = []
    quality = d.analysis.quality if d.analysis is not None else None
    if quality is not None and plan.start is not None:
        if not math.isclose(plan.start.cosine, quality.output_cosine, abs_tol=SAME):
            out.append(
                Violation(
                    Property.CONTINUOUS,
                    "start",
                    f"plan starts at cosine {plan.start.cosine:.4f}, the summary shows "
                    f"{quality.output_cosine:.4f}",
                )
            )
        if quality.top1_quant is not None and (
            plan.start.top1 is None
            or not math.isclose(plan.start.top1, quality.top1_quant, abs_tol=SAME)
        ):
            out.append(Violation(Property.CONTINUOUS, "start", "top-1 differs from the summary"))
    last = plan.start
    for s in plan.steps:
        if s.after is None:
            continue
        on = s.measured_on
        floats = on is not None and on.reference is Reference.FLOAT
        if floats and s.before is not None and s.before != last:
            out.append(Violation(Property.CONTINUOUS, f"step {s.number}", "starts elsewhere"))
        last = s.after
    if plan.reached is not None and last is not None and plan.reached != last:
        out.append(Violation(Property.CONTINUOUS, "reached", "not where the last step ended"))
    return out


def same_reference(d: Diagnosis) -> list[Violation]:
    out = []
    for s in _steps(d):
        on = s.measured_on
        if on is None or on.pipeline is not Pipeline.WRITTEN_THEN_FIXED:
            continue
        where = f"step {s.number}"
        if on.reference is not Reference.LABELS:
            out.append(Violation(Property.SAME_REFERENCE, where, "a fix compared with float"))
        b, a = s.before, s.after
        if b is None or a is None or b.top1 is None or a.top1 is None:
            out.append(Violation(Property.SAME_REFERENCE, where, "no top-1 before and after"))
        elif a.top1 < b.top1:
            out.append(
                Violation(Property.SAME_REFERENCE, where, f"top-1 {b.top1:.3f} -> {a.top1:.3f}")
            )
    return out


def no_loss(d: Diagnosis) -> list[Violation]:
    out = []
    for s in _steps(d):
        on = s.measured_on
        if not s.actionable or s.before is None or s.after is None:
            continue
        if on is None or on.reference is not Reference.FLOAT:
            continue
        noise = max(
            v for v in (s.before.noise, s.after.noise, 0.0) if v is not None and not math.isnan(v)
        )
        where = f"step {s.number}"
        if s.after.cosine < s.before.cosine - noise:
            out.append(
                Violation(
                    Property.NO_LOSS,
                    where,
                    f"cosine {s.before.cosine:.4f} -> {s.after.cosine:.4f} (noise {noise:.4f})",
                )
            )
        if s.before.top1 is not None and s.after.top1 is not None and s.after.top1 < s.before.top1:
            out.append(
                Violation(
                    Property.NO_LOSS, where, f"top-1 {s.before.top1:.3f} -> {s.after.top1:.3f}"
                )
            )
    return out


def headline(d: Diagnosis) -> list[Violation]:
    plan = d.plan
    if plan is None or not any(s.actionable for s in plan.steps):
        return []
    step = plan.next_step
    if step is None or not step.actionable:
        return [Violation(Property.HEADLINE, "next step", "changes nothing")]
    return []


def cosine_noise(d: Diagnosis) -> float | None:
    """The measured noise of the configured scheme's output cosine: the plan's starting
    measure, else the configured row of the method sweep (None: not measured)."""
    values = []
    if d.plan is not None and d.plan.start is not None:
        values.append(d.plan.start.noise)
    if d.analysis is not None:
        values += [r.noise for r in d.analysis.sweep if r.chosen]
    for v in values:
        if v is not None and not math.isnan(v):
            return float(v)
    return None


def int16(d: Diagnosis) -> list[Violation]:
    """No node's int16 gain below minus twice the noise (at least MIN_GAIN): the noise is the
    configured cosine's standard error, and one node made more precise moves the samples of a
    chaotic output either way (benchmarks/README.md, int16), so a loss counts only beyond two
    standard errors, as bench_int16 counts it; below MIN_GAIN a change is worth nothing."""
    if d.analysis is None:
        return []
    noise = cosine_noise(d) or 0.0
    bound = max(2 * noise, MIN_GAIN)
    return [
        Violation(Property.INT16, n.name, f"int16 gain {n.int16_gain:+.4f} (noise {noise:.4f})")
        for n in d.analysis.nodes
        if n.int16_gain is not None and n.int16_gain < -bound
    ]


CHECKS: dict[Property, Callable[[Diagnosis], list[Violation]]] = {
    Property.MEASURED_ON: measured_on,
    Property.CONTINUOUS: continuous,
    Property.SAME_REFERENCE: same_reference,
    Property.NO_LOSS: no_loss,
    Property.HEADLINE: headline,
    Property.INT16: int16,
}
