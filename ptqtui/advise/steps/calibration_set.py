"""Stage 3: what the calibration set holds (the data findings that change which samples it
has: too few, too narrow, abnormal ones to leave out). Not measured here: the rule's own
measurement is shown where it made one."""

from __future__ import annotations

from ptqtui.advise.results import PlanStage
from ptqtui.advise.steps.common import Draft, Env, State, short
from ptqtui.advise.steps.pipeline import patch_changes, stage_of
from ptqtui.check.findings import Severity


def calibration_set_steps(state: State, env: Env) -> tuple[list[Draft], State]:
    chosen = [
        f
        for f in env.findings
        if stage_of(f, env) is PlanStage.CALIBRATION_SET and f.severity.at_least(Severity.MINOR)
    ]
    out = []
    for f in sorted(chosen, key=lambda f: (-f.severity.rank, f.code)):
        changes, failed = patch_changes(f.remedy) if f.remedy is not None else ((), ())
        out.append(
            Draft(
                stage=PlanStage.CALIBRATION_SET,
                title=f"{f.code}: {short(f.message)}",
                action=f.fix or "Change the calibration set as the rule explains.",
                why=f.message,
                severity=f.severity,
                evidence=tuple(f"{e.what}: {e.observed}" for e in f.evidence)
                + ((f"measured by the rule: {f.measured}",) if f.measured else ("not measured",)),
                remedy=f.remedy if f.remedy is not None and not f.remedy.is_empty() else None,
                changes=changes,
                codes=(f.code,),
                unpatchable=failed,
            )
        )
    return out, state
