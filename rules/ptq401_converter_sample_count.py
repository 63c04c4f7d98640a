"""PTQ401: the converter saw far fewer calibration samples than the ~100 advised."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptqtui.rules.ptq104_calibration_set_size import FEW, RECOMMENDED, TOO_FEW

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo

if TYPE_CHECKING:
    from ptqtui.check.context import Context

RULE = RuleInfo(
    code="PTQ401",
    name="converter-few-samples",
    category="converter",
    severity=Severity.MINOR,
    title="The converter calibrated on far fewer samples than the ~100 advised",
    why="With a few dozen samples the ranges come from a handful of images: outliers decide "
    "the scales and whole situations are missing from the calibration.",
    fix="Put about 100 samples from the training or validation set, covering every class and "
    "situation, in cal_data_dir and convert again.",
    needs=("mapper_log",),
    example="[minor] PTQ401 the converter calibrated on 31 samples (about 100 advised) "
    "(hb_mapper_makertbin.log line 412)",
)


def check(ctx: Context) -> list[Finding]:
    log = ctx.mapper_log
    count = log.samples
    if count is None or count >= FEW or count == 0:
        return []
    return [
        RULE.finding(
            f"the converter calibrated on {count} samples (about {RECOMMENDED} advised) "
            f"({log.where(log.samples_line)})",
            Evidence(
                "calibration samples the converter read",
                str(count),
                f"about {RECOMMENDED}",
                log.where(log.samples_line),
            ),
            severity=Severity.MAJOR if count < TOO_FEW else Severity.MINOR,
        )
    ]
