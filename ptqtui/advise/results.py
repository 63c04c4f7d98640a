"""The plan as the Diagnosis holds it: ordered steps, each with its measured effect."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from ptqtui.analysis.results import Measure
from ptqtui.check.findings import Severity
from ptqtui.quant.noise import within_noise
from ptqtui.remedy import Remedy

__all__ = ["Measure", "MeasuredOn", "Pipeline", "Plan", "PlanStage", "PlanStep", "Reference"]


class PlanStage(enum.StrEnum):
    """The plan's stages, in the reference's triage order (the JSON value is the string)."""

    PIPELINE = "pipeline"  # pipeline, config and data findings
    CALIBRATION = "calibration"  # calibration method and flags
    CALIBRATION_SET = "calibration-set"  # what the calibration set holds
    PRECISION = "precision"  # int16 nodes, the tail on the CPU, high-precision outputs
    NODES = "nodes"  # what the node analysis says
    QAT = "qat"  # when nothing reaches the target


class Pipeline(enum.StrEnum):
    """Which pipeline a step's figures were measured through."""

    AS_WRITTEN = "as written"  # the user's data and config as they are
    FIXED = "as fixed above"  # the emulated fixes of the earlier steps applied
    WRITTEN_THEN_FIXED = "as written, then as fixed"  # a pipeline fix: before and after it


class Reference(enum.StrEnum):
    """What a step's figures compare the quantized model with."""

    FLOAT = "float"  # the float model on the same samples (cosine, agreement, top-1 with labels)
    LABELS = "labels"  # the labels of the evaluation images only (a pipeline fix's before/after)


@dataclass(frozen=True, slots=True)
class MeasuredOn:
    """What a step's before and after were measured on: the pipeline, the reference, the
    samples (cosine: calibration samples; top-1: labelled images)."""

    pipeline: Pipeline
    reference: Reference = Reference.FLOAT
    samples: int | None = None  # calibration samples behind the cosine
    labelled: int | None = None  # labelled images behind top-1 (or the task's labelled metric)
    fixes: tuple[str, ...] = ()  # the pipeline fixes applied: "swap channels (PTQ001)"
    agreement_samples: int | None = None  # samples behind the task agreement (`metric`)
    metric: str | None = None  # what the agreement measures: "string agreement"
    label_metric: str | None = None  # what the labelled figure measures: "mask IoU vs labels"

    def describe(self) -> str:
        """One line saying what each figure was measured on: "quantized vs float on 8
        calibration samples (cosine), string agreement on 100 samples, pipeline as written"."""
        labelled = (self.label_metric or "top-1").removesuffix(" vs labels")
        if self.reference is Reference.LABELS:
            images = f"{self.labelled} labelled images" if self.labelled else "labelled images"
            head = f"{labelled} vs the labels on {images} fed through the pipeline"
        else:
            samples = f"{self.samples} calibration samples" if self.samples else "the samples"
            head = f"quantized vs float on {samples}"
            agreement = self.metric or "agreement"
            on_labels = bool(self.labelled) and self.agreement_samples == self.labelled
            if self.agreement_samples and not on_labels:
                head += f" (cosine), {agreement} on {self.agreement_samples} samples"
            if self.labelled:
                both = f"{labelled} and {agreement}" if on_labels else labelled
                head += f", {both} on {self.labelled} labelled images"
            head += ", pipeline"
        line = f"{head} {self.pipeline.value}"
        if self.fixes and self.pipeline is not Pipeline.AS_WRITTEN:
            line += f" ({', '.join(self.fixes)})"
        return line


@dataclass(frozen=True, slots=True)
class PlanStep:
    number: int
    stage: PlanStage
    title: str  # "Feed RGB data: swap the channels of the calibration files"
    action: str  # what to change, imperative
    why: str
    severity: Severity
    evidence: tuple[str, ...] = ()
    before: Measure | None = None  # measured by the simulator where it could try the step
    after: Measure | None = None
    yaml_change: str | None = None  # the remedy's YAML: "calibration_parameters.per_channel: true"
    codes: tuple[str, ...] = ()  # the findings this step answers
    tried: bool = False  # the simulator applied the change and measured it
    remedy: Remedy | None = None  # the change, typed
    measured_on: MeasuredOn | None = None  # what `before` and `after` were measured on

    @property
    def actionable(self) -> bool:
        """Whether the step asks for a change (not "keep it as it is", not a note)."""
        return self.severity is not Severity.INFO

    def effect(self) -> str | None:
        """The measured effect in one line, with what it was measured on; None: not measured.

        A pipeline fix compares top-1 against the labels only: before and after it the float
        model sees different data, so their cosines have different references."""
        on = self.measured_on
        b, a = self.before, self.after
        if a is None:  # the state the step starts from (QAT: nothing left to measure)
            if b is None:
                return None
            return f"before it: {_figures(b)}" + (f" ({on.describe()})" if on is not None else "")
        if on is not None and on.reference is Reference.LABELS:
            if b is None or b.top1 is None or a.top1 is None:
                return None
            label = a.label_metric or "top-1"
            return f"{label} {_pct(b.top1)} -> {_pct(a.top1)} ({on.describe()})"
        if b is None:
            text = f"after it: {_figures(a)}"
        else:
            text = f"cosine {_cos(b)} -> {_cos(a)}"
            noise = step_noise(b, a)
            if a.cosine != b.cosine and within_noise(a.cosine - b.cosine, noise):
                text += f" (within noise {noise:.4f})"
            if b.top1 is not None and a.top1 is not None:
                text += f", {a.label_metric or 'top-1'} {_pct(b.top1)} -> {_pct(a.top1)}"
            elif b.agreement is not None and a.agreement is not None:
                counted = on is not None and on.agreement_samples is not None
                text += f", {_agreement_change(b, a, counted=counted)}"
        return f"{text} ({on.describe()})" if on is not None else text


def step_noise(before: Measure, after: Measure) -> float | None:
    """The noise of a step's cosine difference: the larger of the two measures' (None: not
    measured)."""
    values = [v for v in (before.noise, after.noise) if v is not None and not math.isnan(v)]
    return max(values) if values else None


def _cos(m: Measure) -> str:
    return f"{m.cosine:.4f}"


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def _figures(m: Measure) -> str:
    text = f"cosine {_cos(m)}"
    if m.top1 is not None:
        text += f", {m.label_metric or 'top-1'} {_pct(m.top1)}"
    elif m.agreement is not None:
        text += f", {m.metric or 'agreement'} {_pct_interval(m)}"
    return text


def _pct_interval(m: Measure) -> str:
    """The agreement with its 95 % interval when measured: "42.0 % (33.0-52.0)"."""
    assert m.agreement is not None
    if m.agreement_low is None or m.agreement_high is None:
        return _pct(m.agreement)
    return f"{_pct(m.agreement)} ({100 * m.agreement_low:.1f}-{100 * m.agreement_high:.1f})"


def _agreement_change(b: Measure, a: Measure, *, counted: bool = False) -> str:
    """The task agreement before and after, in the task's terms, with the intervals and the
    sample count: "string agreement 2.0 % (0.6-7.0) -> 96.0 % (90.2-98.4), 100 samples"
    (`counted`: what it was measured on says the count already)."""
    text = f"{a.metric or b.metric or 'agreement'} {_pct_interval(b)} -> {_pct_interval(a)}"
    n = a.samples or b.samples
    return text + (f", {n} samples" if n and not counted else "")


@dataclass(frozen=True, slots=True)
class Plan:
    route: str  # why the plan starts where it does: the loss band and its basis
    target_cosine: float
    steps: tuple[PlanStep, ...]
    reached: Measure | None  # the best state after every tried step
    config_diff: str = ""  # unified diff of the user's YAML and the patched one
    patched_config: str | None = None  # the patched YAML text (comments kept)
    start: Measure | None = None  # the configured state the plan starts from (the summary's)
    cut_short: bool = False  # the time budget left measurements out: they decided nothing
    # what decided "target reached" and "this step gains", in the task's terms, and where the
    # best state stands against it ("string agreement loss below 1.5 points ... (decides)")
    target: str = ""
    target_status: str = ""

    @property
    def next_step(self) -> PlanStep | None:
        """The first step that asks for a change (the headline), else the first step."""
        return next((s for s in self.steps if s.actionable), self.steps[0] if self.steps else None)
