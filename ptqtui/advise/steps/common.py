"""What every plan step shares: the state so far, the environment, a step draft, the metered
what-if service, and the small formatters and graders of measured effects."""

from __future__ import annotations

import dataclasses
import enum
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ptqtui.advise.patch import ConfigChange, cpu_key_for, remedy_changes
from ptqtui.advise.results import Measure, MeasuredOn, PlanStage
from ptqtui.analysis.whatif import CannotEmulate, WhatIfService, settings_after
from ptqtui.budget import OutOfTime
from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.policy import (
    LARGE_LOSS_POINTS,
    MAJOR_COSINE_GAIN,
    MAJOR_POINTS,
    MEDIUM_LOSS_POINTS,
    MIN_GAIN,
    MIN_TASK_GAIN,
    NO_INT16_MARCH,
    LossBand,
)
from ptqtui.progress import ProgressCallback, check_cancel, report
from ptqtui.remedy import OUTPUT_FLAGS, Remedy, settings_delta

if TYPE_CHECKING:
    from ptqtui.analysis.results import Analysis, Quality
    from ptqtui.inputs.config import MapperConfig
    from ptqtui.quant.scheme import QuantSettings

STAGE = "planning"  # the progress stage
MAX_MEASURES = 60  # what-ifs the planner may measure in all
NUMERICS = "numerics"  # the rule category whose findings the tuning steps answer
DATA = "data"  # the rule category of the calibration files and set
CONVERTER = "converter"  # the rule category of what the converter's own log says


@dataclass(frozen=True, slots=True)
class State:
    """Where the plan stands: every remedy applied in the simulator so far (relative to the
    configured state), the settings it leads to, their measure, the pipeline fixes made."""

    remedy: Remedy
    settings: QuantSettings
    measure: Measure | None
    fixes: tuple[str, ...] = ()  # "swap channels (PTQ001)"

    def moved(self, remedy: Remedy, settings: QuantSettings, measure: Measure | None) -> State:
        return dataclasses.replace(self, remedy=remedy, settings=settings, measure=measure)


@dataclass(frozen=True, slots=True)
class Draft:
    """A plan step before it is numbered; `changes` is its YAML, written to the patched
    config unless `written` is False (an option, shown only)."""

    stage: PlanStage
    title: str
    action: str
    why: str
    severity: Severity
    evidence: tuple[str, ...] = ()
    before: Measure | None = None
    after: Measure | None = None
    remedy: Remedy | None = None
    changes: tuple[ConfigChange, ...] = ()
    codes: tuple[str, ...] = ()
    tried: bool = False
    written: bool = True
    unpatchable: tuple[str, ...] = ()  # config edits no patch can make, with why
    measured_on: MeasuredOn | None = None  # None: the state's basis, filled in by the plan


class Meter:
    """The what-if service, metered: at most MAX_MEASURES what-ifs and the time budget,
    progress reported, cancel checked. The one mutable object of a planning run."""

    def __init__(
        self,
        service: WhatIfService,
        *,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
        limit: int = MAX_MEASURES,
    ) -> None:
        self.service = service
        self.progress = progress
        self.cancel = cancel
        self.deadline = deadline
        self.limit = limit
        self.count = 0
        self.spent = 0.0  # seconds the metered what-ifs took
        self.stopped: str | None = None  # why later what-ifs were not measured
        self.out_of_time = False  # the time budget stopped the what-ifs

    def measure(
        self, remedy: Remedy, label: str, *, against: Remedy | None = None
    ) -> Measure | None:
        """The remedy measured, or None once the budget is spent (or it cannot be).
        `against`: the remedy it is a candidate to replace; the measure may then stop short
        once it cannot gain beyond the noise (`Measure.partial_of`)."""
        check_cancel(self.cancel)
        if self.count >= self.limit:
            self.stopped = f"stopped after {self.limit} what-ifs"
            return None
        if not self.affords(self.spent / self.count if self.count else 0.0):
            return None
        self.count += 1
        report(self.progress, STAGE, self.count, None, label)
        start = time.perf_counter()
        try:
            if against is not None:
                return self.service.measure_against(remedy, against)
            return self.service.measure(remedy)
        except CannotEmulate:
            return None
        except OutOfTime:  # the service's own estimate: this what-if does not fit
            self.count -= 1  # not measured
            self.stopped = f"what-ifs stopped by the time budget after {self.count}"
            self.out_of_time = True
            return None
        finally:
            self.spent += time.perf_counter() - start

    def race(
        self, candidates: Sequence[tuple[Remedy, str]], against: Remedy
    ) -> list[Measure | None]:
        """Candidates (remedy, label) to replace `against`, measured side by side by the
        service: one may stop short once worse than `against`, or than the best of them, beyond
        the noise. Metered as one what-if each; under a time budget, or past the limit, they are
        measured one at a time (each against `against`), as `measure` does."""
        check_cancel(self.cancel)
        if self.deadline is not None or self.count + len(candidates) > self.limit:
            return [self.measure(r, label, against=against) for r, label in candidates]
        if not self.affords(self.spent / self.count if self.count else 0.0):
            return [None] * len(candidates)
        self.count += len(candidates)
        report(self.progress, STAGE, self.count, None, f"{len(candidates)} candidates side by side")
        start = time.perf_counter()
        try:
            return list(self.service.measure_race([r for r, _ in candidates], against))
        except (CannotEmulate, OutOfTime):  # one at a time: each says what it could not do
            self.count -= len(candidates)
            return [self.measure(r, label, against=against) for r, label in candidates]
        finally:
            self.spent += time.perf_counter() - start

    def affords(self, seconds: float) -> bool:
        """Whether a what-if of about `seconds` ends before the deadline; once one does not,
        the time budget has stopped the what-ifs (later ones are not measured)."""
        if self.out_of_time:
            return False
        if self.deadline is None or time.perf_counter() + seconds <= self.deadline:
            return True
        self.stopped = f"what-ifs stopped by the time budget after {self.count}"
        self.out_of_time = True
        return False

    def noise(self, a: Remedy, ma: Measure | None, b: Remedy, mb: Measure | None) -> float:
        """The noise of the difference b - a: paired over the same samples where the service
        can say (much smaller than either measure's own spread), else the larger of the two
        measures' noise."""
        value = self.service.paired_noise(a, b)
        if value is not None and not math.isnan(value):
            return max(MIN_GAIN, value)
        return noise_of(ma, mb)

    def task_noise(
        self,
        a: Remedy,
        ma: Measure | None,
        b: Remedy,
        mb: Measure | None,
        *,
        labels: bool = False,
    ) -> float:
        """The noise of the task metric's difference b - a (0..1; `labels`: the labelled
        metric's): paired over the same samples where the service has both per-sample
        figures, else the two intervals' spreads added (unpaired: larger); at least
        MIN_TASK_GAIN."""
        value = self.service.paired_task_noise(a, b, labels=labels)
        if value is None or math.isnan(value):
            value = unpaired_task_noise(ma, mb)
        return max(MIN_TASK_GAIN, value)


class Basis(enum.Enum):
    """What decides "target reached" and "this step gains"."""

    LABELS = "labels"  # the task's real metric against the labels, float minus int8
    AGREEMENT = "agreement"  # the task agreement with the float model (no labels)
    COSINE = "cosine"  # the output cosine (no task metric: the raw adapter)


class Reach(enum.Enum):
    """Where a measure stands against the goal."""

    MET = "met"  # the loss is within the small band at its interval's worst end
    UNCERTAIN = "uncertain"  # the loss interval straddles the band's edge
    SHORT = "short"  # the loss is beyond the band even at its interval's best end


@dataclass(frozen=True, slots=True)
class Goal:
    """What "target reached" means for one plan: the task loss below the small-loss band
    (points of the task metric) when the model has a task metric, the output cosine target
    otherwise; the output cosine is shown beside the task metric either way."""

    basis: Basis
    cosine: float  # the target output cosine
    metric: str | None = None  # what the task figure measures: "string agreement"
    float_score: float | None = None  # with labels: the float model's score against them
    band_points: float = MEDIUM_LOSS_POINTS  # a loss below this many points is small

    @classmethod
    def of(cls, quality: Quality | None, cosine: float) -> Goal:
        """The goal for a model whose headline is `quality` (None: the cosine decides)."""
        if quality is None:
            return cls(Basis.COSINE, cosine)
        if quality.top1_float is not None and not math.isnan(quality.top1_float):
            metric = quality.label_metric or "top-1 accuracy"
            return cls(Basis.LABELS, cosine, metric, quality.top1_float)
        if quality.task is not None and quality.top1_agreement is not None:
            return cls(Basis.AGREEMENT, cosine, quality.metric or "agreement")
        return cls(Basis.COSINE, cosine)

    def score(self, m: Measure | None) -> float | None:
        """The task figure of `m` (0..1), None when the cosine decides or it was not measured."""
        if m is None or self.basis is Basis.COSINE:
            return None
        value = m.top1 if self.basis is Basis.LABELS else m.agreement
        return None if value is None or math.isnan(value) else value

    def loss(self, m: Measure | None) -> tuple[float, float, float] | None:
        """The task loss of `m` in points: (value, best end, worst end); None: no figure."""
        value = self.score(m)
        if value is None or m is None:
            return None
        if self.basis is Basis.LABELS:
            assert self.float_score is not None
            lost = 100.0 * (self.float_score - value)
            return lost, lost, lost  # the labels' score has no interval here
        low = m.agreement_low if m.agreement_low is not None else value
        high = m.agreement_high if m.agreement_high is not None else value
        return 100.0 * (1.0 - value), 100.0 * (1.0 - high), 100.0 * (1.0 - low)

    def reach(self, m: Measure | None) -> Reach:
        """Whether `m` meets the goal: by the task loss and its interval, else the cosine."""
        loss = self.loss(m)
        if loss is None:
            return Reach.MET if cos(m) >= self.cosine else Reach.SHORT
        _, best, worst = loss
        if worst < self.band_points:
            return Reach.MET
        return Reach.SHORT if best >= self.band_points else Reach.UNCERTAIN

    def done(self, m: Measure | None) -> bool:
        """Whether the plan stops tuning at `m`: the goal met, or uncertain (the task metric
        cannot show a loss) while the output cosine meets its target."""
        r = self.reach(m)
        return r is Reach.MET or (r is Reach.UNCERTAIN and cos(m) >= self.cosine)

    def rank(self, m: Measure | None) -> tuple[float, float]:
        """The order of candidates: the task figure first (when it decides), then the cosine."""
        value = self.score(m)
        return (value if value is not None else -math.inf, cos(m))

    def decider(self) -> str:
        """What decides, short: "string agreement (output cosine beside it)"."""
        if self.basis is Basis.COSINE:
            return "output cosine (no task metric)"
        return f"{self.metric} (output cosine beside it)"

    def describe(self) -> str:
        """The target in the task's terms: "string agreement loss below 1.5 points at its 95 %
        interval's worst end (decides); output cosine 0.99 beside it"."""
        if self.basis is Basis.COSINE:
            return f"output cosine {self.cosine:g} (decides: no task metric)"
        if self.basis is Basis.LABELS:
            assert self.float_score is not None
            head = (
                f"{self.metric} within {self.band_points:g} points of the float model's "
                f"{100 * self.float_score:.1f} %"
            )
        else:
            head = (
                f"{self.metric} loss below {self.band_points:g} points at its 95 % interval's "
                "worst end"
            )
        return f"{head} (decides); output cosine {self.cosine:g} beside it"

    def status(self, m: Measure | None) -> str:
        """Where `m` stands, in the goal's terms: "not met: string agreement 47.0 % ..."."""
        r = self.reach(m)
        if m is None:
            return "not measured"
        loss = self.loss(m)
        if loss is None:
            word = "met" if r is Reach.MET else "not met"
            return f"{word}: output cosine {cos(m):.4f}"
        value, best, worst = loss
        span = f" ({best:.1f}-{worst:.1f})" if worst != best else ""
        word = {Reach.MET: "met", Reach.UNCERTAIN: "uncertain", Reach.SHORT: "not met"}[r]
        text = f"{word}: {self.metric} loss {value:.1f} points{span}, output cosine {cos(m):.4f}"
        if r is Reach.UNCERTAIN:
            text += f" (the interval straddles {self.band_points:g} points; " + (
                "the output cosine meets its target: tuning stops)"
                if cos(m) >= self.cosine
                else "the output cosine is short of its target: tuning goes on)"
            )
        return text


@dataclass(frozen=True, slots=True)
class Gain:
    """A step's measured gain judged against its noise."""

    ok: bool
    cosine_noise: float
    task_noise: float | None = None  # None: the cosine decided
    stopped: bool = False  # a sequential measurement stopped it: it could not gain

    def describe(self) -> str:
        """The noise the gain was judged against, for the evidence."""
        text = f"noise of the measurement: {self.cosine_noise:.5f} cosine"
        if self.stopped:
            return text + (
                "; its task figure could not gain beyond its paired noise, so it was not "
                "measured on every sample"
            )
        if self.task_noise is not None:
            text += f", {100 * self.task_noise:.1f} points of the task metric"
        return text


@dataclass(frozen=True, slots=True)
class Env:
    """What the steps read: findings, analyses, config, policy, and the metered service."""

    findings: tuple[Finding, ...]
    analysis: Analysis | None
    config: MapperConfig | None
    target: float
    base: QuantSettings  # the configured settings every remedy starts from
    meter: Meter | None  # None: no simulator (plan from the analysis' numbers)
    categories: Mapping[str, str] = field(default_factory=dict)  # rule code -> category
    cancel: threading.Event | None = None
    goal: Goal | None = None  # None: the output cosine target decides

    @property
    def aim(self) -> Goal:
        """The plan's goal (the cosine target when none was given)."""
        return self.goal if self.goal is not None else Goal(Basis.COSINE, self.target)

    def done(self, m: Measure | None) -> bool:
        """Whether tuning stops at `m` (the one "target reached" predicate of the stages)."""
        return self.aim.done(m)

    def judge(
        self,
        a: Remedy,
        ma: Measure | None,
        b: Remedy,
        mb: Measure | None,
        *,
        cosine_noise: float | None = None,
    ) -> Gain:
        """Whether going from a to b gains. With a task metric: the task figure up beyond its
        paired noise without losing output cosine beyond its noise, or the output cosine up
        beyond its noise with no task figure lost. Without: the output cosine up beyond its
        noise, no top-1 (else agreement) lost. `cosine_noise` overrides the meter's."""
        meter = self.meter
        c_noise = cosine_noise
        if c_noise is None:
            c_noise = meter.noise(a, ma, b, mb) if meter is not None else noise_of(ma, mb)
        if partial(ma) or partial(mb):  # stopped short: it could not gain beyond the noise
            return Gain(False, c_noise, stopped=True)
        goal = self.aim
        sa, sb = goal.score(ma), goal.score(mb)
        if sa is None or sb is None:
            return Gain(gains(ma, mb, c_noise), c_noise)
        labels = goal.basis is Basis.LABELS
        t_noise = (
            meter.task_noise(a, ma, b, mb, labels=labels)
            if meter is not None
            else max(MIN_TASK_GAIN, unpaired_task_noise(ma, mb))
        )
        d_cos = cos(mb) - cos(ma)
        task_gain = sb - sa > t_noise and d_cos >= -c_noise
        # a cosine gain the task metric cannot see (it agrees already) counts when no task
        # figure is lost: what the metric's samples cannot show, the cosine still measures
        cosine_gain = d_cos > c_noise and sb >= sa
        return Gain(task_gain or cosine_gain, c_noise, t_noise)

    @property
    def band(self) -> LossBand | None:
        quality = self.analysis.quality if self.analysis is not None else None
        if quality is None:
            return None
        try:
            return LossBand(quality.band)
        except ValueError:
            return None

    @property
    def cut_short(self) -> bool:
        """Whether the time budget left measurements out (analyses or what-ifs): then what
        was not measured decides nothing (no QAT, no verdict on the nodes)."""
        trimmed = self.analysis is not None and bool(self.analysis.trimmed)
        return trimmed or (self.meter is not None and self.meter.out_of_time)

    @property
    def cap(self) -> Severity:
        """Tuning steps are graded by their measured gain, at most major (critical is for
        pipeline mistakes)."""
        return Severity.MAJOR

    @property
    def cpu_key(self) -> str:
        return cpu_key_for(self.config)

    @property
    def int16_ok(self) -> bool:
        return self.config is None or self.config.march not in NO_INT16_MARCH

    def category(self, f: Finding) -> str | None:
        return self.categories.get(f.code)

    def answered(self, predicate: Callable[[Remedy], bool]) -> tuple[str, ...]:
        """Codes of the numerics findings whose remedy `predicate` accepts (what a tuning
        step answers), in finding order."""
        codes = [
            f.code
            for f in self.findings
            if self.category(f) == NUMERICS and predicate(f.remedy or Remedy())
        ]
        return tuple(dict.fromkeys(codes))


# ---------------------------------------------------------------------- measuring


def toward(state: State, settings: QuantSettings) -> Remedy:
    """The state's remedy followed by the settings change that leads to `settings`."""
    return state.remedy.then(Remedy(settings=settings_delta(state.settings, settings)))


def try_settings(
    state: State, env: Env, settings: QuantSettings, *, against: State | None = None
) -> tuple[Remedy, Measure | None]:
    """`settings` as a remedy from the state, and its measure (None: not measured).
    `against`: the state it is a candidate to replace (measured sequentially against it: it
    may stop short once it cannot gain beyond the noise)."""
    remedy = toward(state, settings)
    if env.meter is None:
        return remedy, None
    versus = against.remedy if against is not None else None
    return remedy, env.meter.measure(remedy, settings.describe(), against=versus)


def yaml_of(env: Env, remedy: Remedy, before: QuantSettings) -> tuple[ConfigChange, ...]:
    """The YAML changes a step's remedy makes from the settings `before` it."""
    items = env.config.optimization if env.config is not None else None
    return tuple(remedy_changes(remedy, before, cpu_key=env.cpu_key, optimization=items))


def reached(env: Env, remedy: Remedy) -> QuantSettings:
    return settings_after(env.base, remedy)


# ---------------------------------------------------------------------- formatting


def fmt(m: Measure | None) -> str:
    if m is None:
        return "not measured"
    parts = [f"cosine {m.cosine:.4f}"]
    if m.top1 is not None:
        parts.append(f"{m.label_metric or 'top-1'} {100 * m.top1:.1f} %")
    elif m.agreement is not None:
        text = f"{m.metric or 'agreement'} {100 * m.agreement:.1f} %"
        if m.agreement_low is not None and m.agreement_high is not None:
            text += f" ({100 * m.agreement_low:.1f}-{100 * m.agreement_high:.1f})"
        if partial(m):
            text += (
                f" on the first {m.samples} of {m.partial_of} samples (it could not gain "
                "beyond the noise there: not measured further)"
            )
        parts.append(text)
    return ", ".join(parts)


def brief(env: Env, m: Measure | None) -> str:
    """A candidate's figures in a trend: "0.9956" or "0.9956 / 47.0 %" (cosine / task);
    "0.8482 / 66.0 % (25 samples)" when a sequential measurement stopped it short."""
    value = env.aim.score(m)
    text = f"{cos(m):.4f}"
    if value is None:
        return text
    text += f" / {100 * value:.1f} %"
    return text + (f" ({m.samples} samples)" if m is not None and partial(m) else "")


def partial(m: Measure | None) -> bool:
    """Whether a sequential measurement stopped `m` short of every sample."""
    return m is not None and m.partial_of is not None


def noise_of(*ms: Measure | None) -> float:
    values = [m.noise for m in ms if m is not None and m.noise is not None]
    finite = [v for v in values if not math.isnan(v)]
    return max([MIN_GAIN, *finite])


def unpaired_task_noise(*ms: Measure | None) -> float:
    """The noise of a task figure's difference measured apart: the standard errors of the
    measures' 95 % intervals added (0 when none has one)."""
    errors = [
        (m.agreement_high - m.agreement_low) / (2 * Z_95)
        for m in ms
        if m is not None and m.agreement_low is not None and m.agreement_high is not None
    ]
    return math.sqrt(sum(e * e for e in errors))


Z_95 = 1.959964  # the normal quantile of a 95 % interval


def cos(m: Measure | None) -> float:
    if m is None or m.cosine is None or math.isnan(m.cosine):
        return -math.inf
    return m.cosine


def points(before: Measure | None, after: Measure | None) -> float | None:
    """Accuracy points gained (top-1 with labels, else agreement)."""
    if before is None or after is None:
        return None
    if before.top1 is not None and after.top1 is not None:
        return 100 * (after.top1 - before.top1)
    if before.agreement is not None and after.agreement is not None:
        return 100 * (after.agreement - before.agreement)
    return None


def gains(before: Measure | None, after: Measure | None, noise: float) -> bool:
    """Whether a tuning step earns its place: output cosine up by more than the noise, and
    no top-1 (else agreement) lost on the labelled images. Both figures are paired (the same
    images through a deterministic simulator), so an image lost is a measured loss, not noise:
    a cosine gain that costs accuracy is not recommended."""
    if not cos(after) - cos(before) > noise:
        return False
    pts = points(before, after)
    return pts is None or pts >= 0.0


def grade(before: Measure | None, after: Measure | None, cap: Severity) -> Severity:
    """Severity from the measured gain, as the loss bands grade a loss."""
    pts = points(before, after)
    gain = cos(after) - cos(before)
    if pts is not None and pts > LARGE_LOSS_POINTS:
        sev = Severity.CRITICAL
    elif (pts is not None and pts >= MAJOR_POINTS) or gain >= MAJOR_COSINE_GAIN:
        sev = Severity.MAJOR
    else:
        sev = Severity.MINOR
    return sev if sev.rank <= cap.rank else cap


def short(text: str, limit: int = 80) -> str:
    """The first clause of a long message, whole: front ends wrap it, saved reports keep it."""
    return text.split("; ")[0] if len(text) > limit else text


def evidence_line(e: Evidence) -> str:
    line = f"{e.what}: {e.observed}"
    if e.expected:
        line += f" (expected {e.expected})"
    if e.where:
        line += f" [{e.where}]"
    return line


# ---------------------------------------------------------------------- remedy kinds


def touches_calibration(r: Remedy) -> bool:
    s = r.settings
    return s is not None and (s.calibration_type is not None or s.max_percentile is not None)


def sets_flag(flag: str) -> Callable[[Remedy], bool]:
    def accepts(r: Remedy) -> bool:
        return r.settings is not None and getattr(r.settings, flag) is not None

    return accepts


def moves_nodes(r: Remedy) -> bool:
    return r.settings is not None and bool(r.settings.nodes)


def edits_outputs(r: Remedy) -> bool:
    """A change of the int8 outputs (optimization items)."""
    s = r.settings
    flags = s is not None and any(getattr(s, f) is not None for f in OUTPUT_FLAGS)
    return flags or any(e.key == OPTIMIZATION for e in r.config)


OPTIMIZATION = "calibration_parameters.optimization"
