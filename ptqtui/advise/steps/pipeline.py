"""Stage 1: pipeline, config and data findings, critical first.

A finding's `remedy` says what to change. Its input fixes are emulated on the calibration
data where the what-if service can (the step shows the pipeline as deployed before and the
fixed one after, and every later step is measured on the fixed data); its settings and the
config edits the simulator reads are measured; every config edit goes to the patch.
"""

from __future__ import annotations

from dataclasses import replace

from ptqtui.advise.patch import ConfigChange, change_of
from ptqtui.advise.results import MeasuredOn, Pipeline, PlanStage, Reference
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
from ptqtui.analysis.results import AnalysisStage
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
    measured_on = None
    tried = False
    evidence = [evidence_line(e) for e in f.evidence]
    applied = state.remedy.then(remedy)
    settings = reached(env, applied)
    meter = env.meter
    changes_data = input_changes(remedy)  # a norm_type no_preprocess edit is one too
    if changes_data and meter is not None and state.measure is not None:
        fix = ", ".join(c.describe() for c in changes_data)
        service = meter.service
        if not meter.affords(fix_seconds(env)):
            evidence.append(f"{fix}: not measured (time budget)")
        elif all(service.can_emulate(c) for c in changes_data):
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
                fixes = (*state.fixes, f"{fix} ({f.code})")
                samples, labelled = service.counts()
                if deployed is not None and deployed.top1 is not None and fixed.top1 is not None:
                    # what the user sees: the same labelled images through the pipeline as
                    # written, then as fixed (the float model's input differs between the
                    # two, so their cosines are not compared)
                    before, after = deployed, fixed
                    measured_on = MeasuredOn(
                        Pipeline.WRITTEN_THEN_FIXED, Reference.LABELS, labelled=labelled
                    )
                    evidence.append(
                        f"simulated ({fix}): top-1 on {labelled} labelled images through the "
                        f"pipeline as written (the same mistake made on them) "
                        f"{100 * deployed.top1:.1f} % -> as fixed {100 * fixed.top1:.1f} %"
                    )
                elif all(c.fix is InputFix.DROP_SAMPLES for c in changes_data):
                    # the same model inputs, fewer calibration samples: comparable
                    before, after = state.measure, fixed
                    measured_on = MeasuredOn(
                        Pipeline.FIXED, samples=samples, labelled=labelled or None, fixes=fixes
                    )
                    evidence.append(f"simulated ({fix}): {fmt(before)} -> {fmt(after)}")
                else:
                    # no labels: only the fixed pipeline's own quantization error is
                    # measured; the one as written has another float reference
                    before, after = None, fixed
                    measured_on = MeasuredOn(
                        Pipeline.FIXED, samples=samples, labelled=labelled or None, fixes=fixes
                    )
                    evidence.append(
                        f"simulated ({fix}): with the fix, quantized vs float on the fixed "
                        f"data {fmt(fixed)} (the pipeline as written is not compared: without "
                        f"labels its float reference is another input)"
                    )
                    if f.measured:
                        evidence.append(f"float model on the data: {f.measured}")
                tried = True
                state = replace(state.moved(applied, settings, fixed), fixes=fixes)
        if not tried and not meter.out_of_time:
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
            samples, labelled = meter.service.counts() if meter is not None else (None, None)
            measured_on = MeasuredOn(
                Pipeline.FIXED if state.fixes else Pipeline.AS_WRITTEN,
                samples=samples,
                labelled=labelled or None,
                fixes=state.fixes,
            )
            state = state.moved(applied, settings, m)
    elif not tried and not changes_data:
        state = state.moved(applied, state.settings, state.measure)  # nothing simulated
    if remedy.settings is not None and not remedy.settings.is_empty():
        changes += yaml_of(env, Remedy(settings=remedy.settings), start)
    step = Draft(
        measured_on=measured_on,
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


def fix_seconds(env: Env) -> float:
    """About what measuring a data fix costs: a calibration on the fixed data and the task
    metric as written and as fixed (the analyses' own timings; 0 without them)."""
    if env.analysis is None:
        return 0.0
    took = {t.stage: t.seconds for t in env.analysis.timings}
    calibration = took.get(AnalysisStage.CALIBRATION.value, 0.0)
    return calibration + 2 * took.get(AnalysisStage.TASK_METRIC.value, 0.0)
