"""Stage 1: pipeline, config and data findings, critical first.

A finding's `remedy` says what to change. Its input fixes are emulated on the calibration
data where the what-if service can (the step shows the pipeline as deployed before and the
fixed one after, and every later step is measured on the fixed data); its settings and the
config edits the simulator reads are measured; every config edit goes to the patch.
"""

from __future__ import annotations

from dataclasses import replace

from ptqtui.advise.patch import ConfigChange, change_of
from ptqtui.advise.results import PlanStage
from ptqtui.advise.steps.common import (
    CONVERTER,
    DATA,
    NUMERICS,
    Draft,
    Env,
    State,
    evidence_line,
    fmt,
    reached,
    short,
    yaml_of,
)
from ptqtui.analysis.whatif import CannotEmulate, input_changes
from ptqtui.check.findings import Finding, Severity
from ptqtui.progress import check_cancel
from ptqtui.remedy import InputFix, Remedy


def stage_of(f: Finding, env: Env) -> PlanStage | None:
    """The plan stage that answers `f`: None for numerics (the tuning steps measure those
    themselves) and for converter-log findings that change neither config nor data; the
    calibration set for data findings whose remedy only changes which
    samples it holds (or says nothing), unless critical; else the pipeline stage."""
    category = env.category(f)
    if category == NUMERICS:
        return None
    remedy = f.remedy or Remedy()
    if category == CONVERTER and not remedy.config and not remedy.inputs:
        return None  # what the converter's log says: evidence; the plan measures its own
    samples_only = (
        not remedy.config
        and (remedy.settings is None or remedy.settings.is_empty())
        and all(c.fix is InputFix.DROP_SAMPLES for c in remedy.inputs)
    )
    if category == DATA and samples_only and f.severity is not Severity.CRITICAL:
        return PlanStage.CALIBRATION_SET
    return PlanStage.PIPELINE


def patch_changes(remedy: Remedy) -> tuple[tuple[ConfigChange, ...], tuple[str, ...]]:
    """The config edits of a finding's remedy as patch changes, and those no patch can make."""
    changes, failed = [], []
    for edit in remedy.config:
        try:
            changes.append(change_of(edit))
        except ValueError as exc:
            failed.append(f"{edit.describe()}: {exc}")
    return tuple(changes), tuple(failed)


def pipeline_steps(state: State, env: Env) -> tuple[list[Draft], State]:
    chosen = [
        f
        for f in env.findings
        if stage_of(f, env) is PlanStage.PIPELINE and f.severity.at_least(Severity.MINOR)
    ]
    chosen.sort(key=lambda f: (-f.severity.rank, f.code))
    steps = []
    for f in chosen:
        step, state = _finding_step(f, state, env)
        steps.append(step)
    return steps, state


def _finding_step(f: Finding, state: State, env: Env) -> tuple[Draft, State]:
    remedy = f.remedy or Remedy()
    start = state.settings
    changes, failed = patch_changes(remedy)
    before = after = None
    tried = False
    evidence = [evidence_line(e) for e in f.evidence]
    applied = state.remedy.then(remedy)
    settings = reached(env, applied)
    meter = env.meter
    changes_data = input_changes(remedy)  # a norm_type no_preprocess edit is one too
    if changes_data and meter is not None and state.measure is not None:
        fix = ", ".join(c.describe() for c in changes_data)
        service = meter.service
        if all(service.can_emulate(c) for c in changes_data):
            check_cancel(env.cancel)
            deployed = (
                service.measure_as_deployed(state.remedy, changes_data[0])
                if len(changes_data) == 1
                else None
            )
            try:
                fixed = service.measure(applied)
            except CannotEmulate:
                fixed = None
            if fixed is not None:
                before, after, tried = deployed or state.measure, fixed, True
                state = replace(
                    state.moved(applied, settings, fixed),
                    fixes=(*state.fixes, f"{fix} ({f.code})"),
                )
                if deployed is not None:
                    evidence.append(
                        f"simulated ({fix}): the pipeline as it is (the labelled images "
                        f"put through the same mistake) {fmt(before)} -> fixed {fmt(after)}"
                    )
                else:
                    evidence.append(
                        f"simulated ({fix}), quantized vs float on the same data (no labels "
                        f"for the pipeline's own loss): {fmt(before)} -> {fmt(after)}"
                    )
                    if f.measured:
                        evidence.append(f"float model on the data: {f.measured}")
        if not tried:
            evidence.append(f"not measured: the simulator cannot emulate '{fix}' here")
    elif f.measured:
        evidence.append(f"measured by the rule: {f.measured}")
    else:
        evidence.append("not measured: no simulator what-if for this finding")
    if not tried and not changes_data and settings != state.settings:
        # the remedy changes what the simulator runs: measure it
        m = meter.measure(applied, settings.describe()) if meter is not None else None
        if m is not None:
            before, after, tried = state.measure, m, True
            state = state.moved(applied, settings, m)
    elif not tried and not changes_data:
        state = state.moved(applied, state.settings, state.measure)  # nothing simulated
    if remedy.settings is not None and not remedy.settings.is_empty():
        changes += yaml_of(env, Remedy(settings=remedy.settings), start)
    step = Draft(
        stage=PlanStage.PIPELINE,
        title=f"{f.code}: {short(f.message)}",
        action=f.fix or "Fix the finding as its rule explains.",
        why=f.message,
        severity=f.severity,
        evidence=tuple(evidence),
        before=before,
        after=after,
        remedy=remedy if not remedy.is_empty() else None,
        changes=changes,
        codes=(f.code,),
        tried=tried,
        unpatchable=failed,
    )
    return step, state
