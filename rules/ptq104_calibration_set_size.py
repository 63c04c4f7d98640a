"""PTQ104: a calibration set far from the ~100 samples the reference recommends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo

if TYPE_CHECKING:
    from ptqtui.check.context import Context

RULE = RuleInfo(
    code="PTQ104",
    name="calibration-set-size",
    category="data",
    severity=Severity.MINOR,
    title="The calibration set is far from about 100 samples",
    why="Too few samples give ranges of a few images only (outliers decide the scales, whole "
    "situations are missing); many more than needed only make calibration slow.",
    fix="Use about 100 samples from the training or validation set covering every class and "
    "situation (detection often needs fewer than classification).",
    needs=("calibration",),
    example="[major] PTQ104 only 5 calibration samples in calib/ (about 100 recommended)",
)

RECOMMENDED = 100  # reference §1: "about 100 images"
TOO_FEW = 20  # below this the ranges come from a handful of images: major
FEW = 50  # below half the recommendation: minor
TOO_MANY = 1000  # ten times the recommendation: slow for no gain (info)


def check(ctx: Context) -> list[Finding]:
    source = ctx.calibration
    count = len(source.files)
    where = "; ".join(str(d) for d in source.dirs)
    evidence = Evidence("calibration samples", str(count), f"about {RECOMMENDED}", where)
    if count == 0:
        return []  # nothing readable: PTQ101 says why
    if count < FEW:
        severity = Severity.MAJOR if count < TOO_FEW else Severity.MINOR
        return [
            RULE.finding(
                f"only {count} calibration sample(s) in {where} (about {RECOMMENDED} recommended)",
                evidence,
                severity=severity,
                fix=f"Add samples up to about {RECOMMENDED}, covering every class and situation.",
            )
        ]
    if count > TOO_MANY:
        return [
            RULE.finding(
                f"{count} calibration samples in {where}: far more than the ~{RECOMMENDED} "
                "needed; calibration is slower for no accuracy gain",
                evidence,
                severity=Severity.INFO,
                fix="A representative subset of a few hundred samples is enough.",
            )
        ]
    return []
