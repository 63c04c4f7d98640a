"""PTQ106: NaN or Inf in the calibration data."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptqtui.rules._remedies import input_remedy

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.remedy import InputFix

if TYPE_CHECKING:
    from ptqtui.check.context import Context

RULE = RuleInfo(
    code="PTQ106",
    name="non-finite-values",
    category="data",
    severity=Severity.CRITICAL,
    title="Calibration data holds NaN or Inf values",
    why="One NaN or Inf makes the observed min/max and histograms of every activation it reaches "
    "meaningless: the calibrated scales, and so the int8 model, are garbage.",
    fix="Find where the preprocessing divides by zero or overflows (e.g. a std of 0, float16 "
    "overflow) and regenerate the listed files.",
    needs=("sample_stats",),
    example="[critical] PTQ106 3 of 100 calibration samples hold NaN/Inf (1536 values): "
    "calib/12.bin (512), ...",
)

LISTED = 5


def check(ctx: Context) -> list[Finding]:
    sset = ctx.sample_stats
    findings = []
    for name in sset.inputs:
        bad = [s for s in sset.of(name) if s.nonfinite]
        if not bad:
            continue
        values = sum(s.nonfinite for s in bad)
        files = ", ".join(f"{s.name} ({s.nonfinite})" for s in bad[:LISTED])
        more = ", ..." if len(bad) > LISTED else ""
        label = f" of input {name}" if len(sset.inputs) > 1 else ""
        findings.append(
            RULE.finding(
                f"{len(bad)} of {len(sset.of(name))} calibration samples{label} hold NaN/Inf "
                f"({values} values): {files}{more}",
                *(
                    Evidence(
                        "non-finite values", str(s.nonfinite), "0", f"{s.path.parent.name}/{s.name}"
                    )
                    for s in bad[:LISTED]
                ),
                remedy=input_remedy(InputFix.DROP_SAMPLES, name, tuple(s.name for s in bad)),
            )
        )
    return findings
