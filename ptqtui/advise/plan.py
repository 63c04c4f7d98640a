"""The triage plan: findings and measurements turned into ordered, graded, verified steps.

Order (reference triage flow, `ptq-accuracy-tuning.md`), one module each in `advise/steps/`:
1. `pipeline`: pipeline, config and data findings, critical first; where the simulator can
   undo the mistake on the calibration data it does, and the step shows the measured recovery;
2. `calibration`: mix, kl, max; max_percentile 0.99999 ... 0.999 (the trend shown);
   per_channel on the best; asymmetric; bias_correction, each above the measurement noise;
3. `calibration_set`: the data findings about what the calibration set holds;
4. `precision`: high-precision outputs, the fewest nodes to int16 and at most the last two
   operators to the CPU that reach the target cosine, greedily by measured gain;
5. `nodes`: what the node analysis says: a few sensitive nodes, or accumulated error;
6. `qat`: when nothing reaches the target.
Each step function takes the state so far (`State`: the remedies applied, the settings and
their measure) and the environment (`Env`: findings, analysis, config, target, the metered
what-if service) and returns its steps and the new state. Each step carries its `Remedy`;
its YAML change is rendered from it, and the plan carries the whole config patch and diff.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ptqtui.advise.patch import (
    PatchError,
    apply_changes,
    cpu_key_for,
    patch_remedy,
    settings_changes,
    unified_diff,
)
from ptqtui.advise.results import Measure, MeasuredOn, Pipeline, Plan, PlanStage, PlanStep
from ptqtui.advise.steps.calibration import calibration_steps
from ptqtui.advise.steps.calibration_set import calibration_set_steps
from ptqtui.advise.steps.common import Draft, Env, Goal, Meter, State
from ptqtui.advise.steps.nodes import node_steps, node_verdict
from ptqtui.advise.steps.pipeline import pipeline_steps
from ptqtui.advise.steps.precision import precision_steps
from ptqtui.advise.steps.qat import qat_steps
from ptqtui.check.findings import Finding, Severity
from ptqtui.policy import TARGET_COSINE, LossBand
from ptqtui.progress import ProgressCallback, report
from ptqtui.quant.settings import settings_from_config
from ptqtui.remedy import Remedy

if TYPE_CHECKING:
    from ptqtui.analysis.results import Analysis, Quality
    from ptqtui.analysis.whatif import WhatIfService
    from ptqtui.inputs.config import MapperConfig

__all__ = [
    "build_plan",
    "cpu_key_for",
    "node_verdict",
    "patch_remedy",
    "settings_changes",
]

log = logging.getLogger(__name__)

STAGES: tuple[Callable[[State, Env], tuple[list[Draft], State]], ...] = (
    pipeline_steps,
    calibration_steps,
    calibration_set_steps,
    precision_steps,
    node_steps,
    qat_steps,
)
NOTED_STAGES = (PlanStage.CALIBRATION, PlanStage.PRECISION, PlanStage.QAT)  # measured on fixes
# The stages that choose among measured what-ifs from the state reached: once the time budget
# stops the what-ifs, a choice among what was measured, or a step the unmeasured ones would
# have made moot, is a conclusion drawn from missing measurements, so they say nothing.
TUNING = (calibration_steps, precision_steps, node_steps, qat_steps)


def build_plan(
    findings: Sequence[Finding],
    analysis: Analysis | None,
    whatif: WhatIfService | None,
    config: MapperConfig | None,
    *,
    categories: Mapping[str, str] | None = None,
    target_cosine: float = TARGET_COSINE,
    config_text: str | None = None,
    time_budget: float | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Plan:
    """The plan for one diagnosis; `whatif` None plans from the analysis' numbers alone.

    `categories` maps rule codes to their category (check.registry): numerics findings are
    answered by the tuning steps, the others are steps of their own. `time_budget` (seconds)
    stops the what-ifs once spent: later candidates are then not measured (and not
    recommended), as `MAX_MEASURES` does.
    """
    if not 0.0 < target_cosine <= 1.0:
        raise ValueError(f"target cosine {target_cosine} is not in (0, 1]")
    quality = analysis.quality if analysis is not None else None
    base = whatif.settings if whatif is not None else settings_from_config(config)
    meter = (
        Meter(
            whatif,
            progress=progress,
            cancel=cancel,
            deadline=None if time_budget is None else time.perf_counter() + time_budget,
        )
        if whatif is not None
        else None
    )
    env = Env(
        findings=tuple(findings),
        analysis=analysis,
        config=config,
        target=target_cosine,
        base=base,
        meter=meter,
        categories=dict(categories or {}),
        cancel=cancel,
        goal=Goal.of(quality, target_cosine),
    )
    measure = meter.measure(Remedy(), base.describe()) if meter is not None else None
    if measure is None and quality is not None:
        measure = Measure(quality.output_cosine, quality.top1_quant, quality.top1_agreement)
    state = State(Remedy(), base, measure)
    start = measure
    samples, labelled = whatif.counts() if whatif is not None else (None, None)
    drafts: list[Draft] = []
    for stage in STAGES:
        if meter is not None and meter.out_of_time and stage in TUNING:
            continue
        fixes = state.fixes
        more, reached = stage(state, env)
        if meter is not None and meter.out_of_time and stage in TUNING:
            continue  # cut short in this stage: what it measured decides nothing
        state = reached
        on = MeasuredOn(
            Pipeline.FIXED if fixes else Pipeline.AS_WRITTEN,
            samples=samples,
            labelled=labelled or None,
            fixes=fixes,
        )
        drafts += [
            dataclasses.replace(d, measured_on=on)
            if d.measured_on is None and (d.before is not None or d.after is not None)
            else d
            for d in more
        ]
    report(progress, "planning", 1, 1)
    if state.fixes:
        note = (
            "measured on the calibration data with the pipeline fixes above applied: "
            + ", ".join(state.fixes)
        )
        drafts = [
            dataclasses.replace(d, evidence=(*d.evidence, note))
            if d.stage in NOTED_STAGES and (d.tried or d.stage is PlanStage.QAT)
            else d
            for d in drafts
        ]
    diff, patched = "", None
    text = config_text
    if text is None and config is not None:
        try:
            text = Path(config.path).read_text(encoding="utf-8-sig")
        except OSError as exc:
            log.warning("cannot read %s to patch it: %s", config.path, exc)
    if text is not None:
        name = Path(config.path).name if config is not None else "config.yaml"
        patched, failed = _patch(text, drafts)
        diff = unified_diff(text, patched, name)
        if failed:
            diff = "".join(f"# not applied: {f}\n" for f in failed) + diff
    steps = tuple(_numbered(i + 1, _said(d)) for i, d in enumerate(drafts))
    route = _route(quality, findings) + f"; decided by {env.aim.decider()}"
    if meter is not None and meter.stopped:
        route += f" ({meter.stopped}; later candidates not measured)"
    return Plan(
        route=route,
        target_cosine=target_cosine,
        steps=steps,
        reached=state.measure,
        config_diff=diff,
        patched_config=patched,
        start=start,
        cut_short=env.cut_short,
        target=env.aim.describe(),
        target_status=env.aim.status(state.measure) if state.measure is not None else "",
    )


def _said(d: Draft) -> Draft:
    """The draft whose `measured_on` also says what its task figures were measured on."""
    m = d.after if d.after is not None else d.before
    if d.measured_on is None or m is None:
        return d
    on = dataclasses.replace(
        d.measured_on,
        agreement_samples=m.samples if m.agreement is not None else None,
        metric=m.metric,
        label_metric=m.label_metric,
    )
    return dataclasses.replace(d, measured_on=on)


def _numbered(number: int, d: Draft) -> PlanStep:
    lines = [c.describe() for c in d.changes]
    return PlanStep(
        number=number,
        stage=d.stage,
        title=d.title,
        action=d.action,
        why=d.why,
        severity=d.severity,
        evidence=d.evidence,
        before=d.before,
        after=d.after,
        yaml_change="\n".join(lines) if lines else None,
        codes=d.codes,
        tried=d.tried,
        remedy=d.remedy,
        measured_on=d.measured_on,
    )


def _patch(text: str, drafts: Sequence[Draft]) -> tuple[str, list[str]]:
    """`text` with every written step's changes, step by step; a step whose change cannot be
    applied safely is left out (and named) rather than failing the whole patch."""
    failed = []
    for d in drafts:
        failed += [f"{d.title}: {why}" for why in d.unpatchable]
        if not d.changes or not d.written:
            continue
        try:
            text = apply_changes(text, d.changes).text
        except PatchError as exc:
            log.warning("config patch of step %r failed: %s", d.title, exc)
            failed.append(f"{d.title}: {exc}")
    return text, failed


ROUTES = {
    LossBand.LARGE: "pipeline, config and data first (the > 4 % kind)",
    LossBand.MEDIUM: "calibration and node sensitivity (the 1.5-4 % kind)",
    LossBand.SMALL: "fine tuning at most",
}


def _route(quality: Quality | None, findings: Sequence[Finding]) -> str:
    critical = [f.code for f in findings if f.severity is Severity.CRITICAL]
    if quality is None:
        head = "loss not measured (no simulator run)"
        way = "pipeline and config findings first" if critical else "config findings only"
        return f"{head}: {way}"
    if quality.loss_points is not None and not math.isnan(quality.loss_points):
        basis = (
            quality.label_metric or "top-1 accuracy"  # with task labels: their metric
            if quality.top1_float is not None
            else quality.metric or "top-1 agreement"
        )
        amount = f"{quality.loss_points:.1f} points of {basis}"
    else:
        amount = "no top-1 available"
    head = (
        f"{quality.band} loss ({amount}; output cosine {quality.output_cosine:.4f}; "
        f"measured as {quality.basis})"
    )
    band = next((b for b in LossBand if b.value == quality.band), None)
    way = ROUTES.get(band, "the reference's order") if band is not None else "the reference's order"
    if band is not LossBand.LARGE and critical:
        way = f"critical findings first ({', '.join(sorted(set(critical)))}), then {way}"
    return f"{head}: {way}"
