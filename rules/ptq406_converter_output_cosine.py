"""PTQ406: each model output's cosine in the converter's log, read as the reference reads it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.policy import COLLAPSED_COSINE, OBVIOUS_LOSS_COSINE, TARGET_COSINE

if TYPE_CHECKING:
    from ptqtui.check.context import Context

RULE = RuleInfo(
    code="PTQ406",
    name="converter-output-cosine",
    category="converter",
    severity=Severity.MINOR,
    title="An output's cosine in the converter's log is below the normal 0.99",
    why="The reference reads an output cosine >= 0.99 as normal quantization and < 0.8 as "
    "obvious loss; in between, the task metric usually drops by a point or more. Cosine is "
    "a proxy: the task metric decides.",
    fix="Run ptqtui with the model and calibration data (MODEL -c CONFIG) to find which nodes "
    "and settings cost the cosine, and what each change gains.",
    needs=("mapper_log",),
    example="[major] PTQ406 1 output(s) below 0.8: obvious quantization loss in the converter's "
    "log: /linear/Gemm 0.7689 (hb_mapper_makertbin.log line 62)",
)


def check(ctx: Context) -> list[Finding]:
    log = ctx.mapper_log
    simulated = ctx.maybe("analysis") is not None
    low = [o for o in log.outputs if COLLAPSED_COSINE <= o.cosine < TARGET_COSINE]  # < 0.1: PTQ407
    findings = []
    for obvious in (True, False):
        outs = [o for o in low if (o.cosine < OBVIOUS_LOSS_COSINE) is obvious]
        if not outs:
            continue
        reading = (
            f"below {OBVIOUS_LOSS_COSINE:g}: obvious quantization loss"
            if obvious
            else f"below the normal {TARGET_COSINE:g}"
        )
        where = log.where(outs[0].line)
        listed = ", ".join(f"{o.name} {o.cosine:.4f}" for o in outs)
        findings.append(
            RULE.finding(
                f"{len(outs)} output(s) {reading} in the converter's log: {listed} ({where})",
                *(
                    Evidence(
                        f"converter cosine of output {o.name}",
                        f"{o.cosine:.4f} (L1 {o.l1:.4g}, L2 {o.l2:.4g}, Chebyshev "
                        f"{o.chebyshev:.4g})",
                        f">= {TARGET_COSINE:g}",
                        log.where(o.line),
                    )
                    for o in outs
                ),
                # in a full run the simulator measures the outputs itself and the plan acts on
                # that; the converter's figure is then context
                severity=Severity.INFO
                if simulated
                else (Severity.MAJOR if obvious else Severity.MINOR),
            )
        )
    return findings
