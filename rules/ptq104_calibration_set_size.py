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
    listed = len(source.files)
    where = "; ".join(str(d) for d in source.dirs)
    if listed == 0:
        return []  # nothing of the right size: PTQ101 says why
    # reading the samples (once, cached) tells which files decode; only those calibrate
    sset = ctx.maybe("sample_stats")
    count = sset.total if sset is not None else 0
    unreadable = list(source.unreadable)
    evidence = Evidence("usable calibration samples", str(count), f"about {RECOMMENDED}", where)
    if count == 0:
        first = f"; first: {unreadable[0].file.name}: {unreadable[0].problem}" if unreadable else ""
        return [
            RULE.finding(
                f"none of the {listed} calibration file(s) in {where} can be read{first}",
                evidence,
                severity=Severity.CRITICAL,
                fix="Give readable calibration samples (.bin, .npy or images OpenCV decodes).",
            )
        ]
    if count < FEW:
        severity = Severity.MAJOR if count < TOO_FEW else Severity.MINOR
        lost = f"; {len(unreadable)} more cannot be read" if unreadable else ""
        return [
            RULE.finding(
                f"only {count} calibration sample(s) in {where} (about {RECOMMENDED} "
                f"recommended){lost}",
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
