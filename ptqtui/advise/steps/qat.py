"""Stage 6: quantization-aware training, when no PTQ setting tried reaches the target."""

from __future__ import annotations

from ptqtui.advise.results import PlanStage
from ptqtui.advise.steps.common import Draft, Env, State, fmt
from ptqtui.check.findings import Severity
from ptqtui.policy import LossBand


def qat_steps(state: State, env: Env) -> tuple[list[Draft], State]:
    m = state.measure
    if m is None or env.done(m) or env.band is LossBand.SMALL:
        return [], state
    if env.cut_short:  # PTQ's limit is not reached by what was never measured
        return [], state
    return [
        Draft(
            stage=PlanStage.QAT,
            title="Quantization-aware training",
            action="Fine-tune the model with quantization in the loop (QAT); PTQ has reached "
            "its limit on this model.",
            why=f"No PTQ setting tried reaches the target: {env.aim.describe()}.",
            severity=Severity.MAJOR if env.band is LossBand.LARGE else Severity.MINOR,
            evidence=(
                f"best PTQ state reached: {state.settings.describe()}: {fmt(m)}",
                f"target {env.aim.status(m)}",
            ),
            before=m,
            after=None,
        )
    ], state
