"""The triage plan: findings and measurements turned into ordered, graded, verified steps.

Order (reference triage flow, `ptq-accuracy-tuning.md`):
1. pipeline, config and data findings, critical first; where the simulator can undo the
   mistake on the calibration data it does, and the step shows the measured recovery;
2. calibration, in the reference's order: mix, kl, max; max_percentile 0.99999 ... 0.999
   (the trend shown); per_channel on the best; asymmetric; bias_correction. A change is
   recommended only when its gain is above the noise of the measurement;
3. calibration-set changes (the data rules);
4. precision: the fewest nodes to int16 and at most the last two operators to the CPU that
   reach the target cosine, chosen greedily by measured gain, each re-measured;
5. what the node analysis says: a few sensitive nodes, or error accumulated along the graph;
6. QAT, when nothing reaches the target.
Each step that changes the config carries its YAML change; the plan carries the whole
config patch (`patch.apply_changes`) and its diff.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ptqtui.advise import measurer as fixes
from ptqtui.advise.measurer import Measurer
from ptqtui.advise.patch import (
    LIST_SEPARATORS,
    REMOVE,
    ConfigChange,
    PatchError,
    PatchResult,
    add_item,
    apply_changes,
    node_setting,
    rename_node,
    set_key,
    unified_diff,
)
from ptqtui.advise.results import Measure, Plan, PlanStep
from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.progress import ProgressCallback, check_cancel, report
from ptqtui.quant.scheme import NodeOverride, QuantSettings
from ptqtui.quant.settings import settings_from_config
from ptqtui.remedy import ConfigEdit, InputFix

if TYPE_CHECKING:
    from ptqtui.analysis.context import SimContext
    from ptqtui.analysis.results import Analysis, NodeRow, Quality
    from ptqtui.inputs.config import MapperConfig
    from ptqtui.inputs.resolve import LoadedInputs

log = logging.getLogger(__name__)

STAGE = "planning"
DEFAULT_TARGET = 0.99  # output cosine: "quantization is normal" (hb_mapper docs, reference §3)
SENSITIVE_COSINE = 0.999  # the converter's own threshold for a sensitive node (mix, debugger)
MIN_GAIN = 2e-4  # cosine gains below this are not worth a config change, whatever the noise
PERCENTILES = (0.99999, 0.99995, 0.9999, 0.9995, 0.999)  # reference §2, in its order
MAX_TAIL_CPU = 2  # reference: only the last 1-2 output operators to the CPU
MAX_INT16 = 6  # more int16 nodes than this: the loss is not a few nodes' (QAT territory)
INT16_CANDIDATES = 5  # nodes measured per greedy round (the most sensitive first)
MAX_MEASURES = 60  # what-ifs the planner may measure in all
PLAN_EVAL_LIMIT = 300  # labelled images per what-if (top-1 to about +-3 points; cosine unaffected)
FEW_NODES = 3  # "a few sensitive nodes": this many explain most of the loss
EXPLAINED_SHARE = 0.6  # ... at least this share of it
MIN_NODE_LOSS = 0.005  # output cosine lost: below this the node analysis has nothing to say
NO_INT16_MARCH = ("bernoulli2",)  # X3: int16 node types are not available

PIPELINE_CODES_LAST = ("PTQ103", "PTQ104", "PTQ105")  # calibration-set content: step 3


@dataclass
class _State:
    """Where the plan stands: the settings reached, their measure, the measurer in use."""

    settings: QuantSettings
    measure: Measure | None
    measurer: Measurer | None
    changes: list[ConfigChange] = field(default_factory=list)
    measures: int = 0
    fixes: list[str] = field(default_factory=list)  # pipeline fixes the measurer applies


@dataclass(frozen=True, slots=True)
class _Step:
    stage: str
    title: str
    action: str
    why: str
    severity: Severity
    evidence: tuple[str, ...] = ()
    before: Measure | None = None
    after: Measure | None = None
    changes: tuple[ConfigChange, ...] = ()
    codes: tuple[str, ...] = ()
    tried: bool = False
    yaml_text: str | None = None  # for findings whose change is not a plain key


def build_plan(
    findings: Sequence[Finding],
    analysis: Analysis | None,
    measurer: Measurer | None,
    config: MapperConfig | None,
    *,
    target_cosine: float = DEFAULT_TARGET,
    config_text: str | None = None,
    time_budget: float | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Plan:
    """The plan for one diagnosis; `measurer` None plans from the analysis' numbers alone.

    `time_budget` (seconds) stops the what-ifs once spent: later candidates are then not
    measured (and not recommended), as `MAX_MEASURES` does.
    """
    if not 0.0 < target_cosine <= 1.0:
        raise ValueError(f"target cosine {target_cosine} is not in (0, 1]")
    quality = analysis.quality if analysis is not None else None
    band = quality.band if quality is not None else None
    base = settings_from_config(config)
    march = config.march if config is not None else None
    planner = _Planner(
        findings=tuple(findings),
        analysis=analysis,
        config=config,
        target=target_cosine,
        band=band,
        march=march,
        progress=progress,
        cancel=cancel,
        deadline=None if time_budget is None else time.perf_counter() + time_budget,
    )
    state = _State(base, None, measurer)
    if measurer is not None:
        state.measure = planner.measure(state, base)
    if state.measure is None and quality is not None:
        state.measure = Measure(quality.output_cosine, quality.top1_quant, quality.top1_agreement)

    steps: list[_Step] = []
    steps += planner.pipeline_steps(state)
    steps += planner.calibration_steps(state)
    steps += planner.calibration_set_steps()
    steps += planner.precision_steps(state)
    steps += planner.node_steps(state)
    steps += planner.qat_steps(state)
    report(progress, STAGE, 1, 1)
    if state.fixes:
        note = (
            "measured on the calibration data with the pipeline fixes above applied: "
            + ", ".join(state.fixes)
        )
        steps = [
            dataclasses.replace(s, evidence=(*s.evidence, note))
            if s.stage in ("calibration", "precision", "qat") and (s.tried or s.stage == "qat")
            else s
            for s in steps
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
        patched, failed = _patch(text, steps)
        diff = unified_diff(text, patched, name)
        if failed:
            diff = "".join(f"# not applied: {f}\n" for f in failed) + diff
    plan_steps = tuple(
        PlanStep(
            number=i + 1,
            stage=s.stage,
            title=s.title,
            action=s.action,
            why=s.why,
            severity=s.severity,
            evidence=s.evidence,
            before=s.before,
            after=s.after,
            yaml_change=s.yaml_text or _yaml_lines(s.changes),
            codes=s.codes,
            tried=s.tried,
        )
        for i, s in enumerate(steps)
    )
    route = _route(quality, findings)
    if planner.stopped:
        route += f" ({planner.stopped}; later candidates not measured)"
    return Plan(
        route=route,
        target_cosine=target_cosine,
        steps=plan_steps,
        reached=state.measure,
        config_diff=diff,
        patched_config=patched,
    )


# ---------------------------------------------------------------------------- helpers


def _patch(text: str, steps: Sequence[_Step]) -> tuple[str, list[str]]:
    """`text` with every step's changes, step by step; a step whose change cannot be applied
    safely is left out (and named) rather than failing the whole patch."""
    failed = []
    for step in steps:
        if not step.changes:
            continue
        try:
            text = apply_changes(text, step.changes).text
        except PatchError as exc:
            log.warning("config patch of step %r failed: %s", step.title, exc)
            failed.append(f"{step.title}: {exc}")
    return text, failed


def _yaml_lines(changes: Iterable[ConfigChange]) -> str | None:
    lines = [c.describe() for c in changes]
    return "\n".join(lines) if lines else None


def _short(text: str, limit: int = 80) -> str:
    """The first clause of a long message, whole: front ends wrap it, saved reports keep it."""
    return text.split("; ")[0] if len(text) > limit else text


def _evidence_line(e: Evidence) -> str:
    line = f"{e.what}: {e.observed}"
    if e.expected:
        line += f" (expected {e.expected})"
    if e.where:
        line += f" [{e.where}]"
    return line


def _fmt(m: Measure | None) -> str:
    if m is None:
        return "not measured"
    parts = [f"cosine {m.cosine:.4f}"]
    if m.top1 is not None:
        parts.append(f"top-1 {100 * m.top1:.1f} %")
    elif m.agreement is not None:
        parts.append(f"agreement {100 * m.agreement:.1f} %")
    return ", ".join(parts)


def _noise(*ms: Measure | None) -> float:
    values = [m.noise for m in ms if m is not None and m.noise is not None]
    finite = [v for v in values if not math.isnan(v)]
    return max([MIN_GAIN, *finite])


def _cos(m: Measure | None) -> float:
    if m is None or m.cosine is None or math.isnan(m.cosine):
        return -math.inf
    return m.cosine


# a tail-to-CPU gain of at least this many accuracy points is a step, not an option (the
# small band of the reference ends at 1.5 points; one point is already worth a CPU operator)
MIN_TAIL_POINTS = 1.0


def _points(before: Measure | None, after: Measure | None) -> float | None:
    """Accuracy points gained (top-1 with labels, else agreement)."""
    if before is None or after is None:
        return None
    if before.top1 is not None and after.top1 is not None:
        return 100 * (after.top1 - before.top1)
    if before.agreement is not None and after.agreement is not None:
        return 100 * (after.agreement - before.agreement)
    return None


def _grade(before: Measure | None, after: Measure | None, cap: Severity) -> Severity:
    """Severity from the measured gain, as the loss bands grade a loss."""
    pts = _points(before, after)
    gain = _cos(after) - _cos(before)
    if pts is not None and pts > 4.0:
        sev = Severity.CRITICAL
    elif (pts is not None and pts >= 1.5) or gain >= 0.01:
        sev = Severity.MAJOR
    else:
        sev = Severity.MINOR
    return sev if sev.rank <= cap.rank else cap


def _route(quality: Quality | None, findings: Sequence[Finding]) -> str:
    critical = [f.code for f in findings if f.severity is Severity.CRITICAL]
    if quality is None:
        head = "loss not measured (no simulator run)"
        way = "pipeline and config findings first" if critical else "config findings only"
        return f"{head}: {way}"
    if quality.loss_points is not None and not math.isnan(quality.loss_points):
        basis = "top-1 accuracy" if quality.top1_float is not None else "top-1 agreement"
        amount = f"{quality.loss_points:.1f} points of {basis}"
    else:
        amount = "no top-1 available"
    head = (
        f"{quality.band} loss ({amount}; output cosine {quality.output_cosine:.4f}; "
        f"measured as {quality.basis})"
    )
    way = {
        "large": "pipeline, config and data first (the > 4 % kind)",
        "medium": "calibration and node sensitivity (the 1.5-4 % kind)",
        "small": "fine tuning at most",
    }.get(quality.band, "the reference's order")
    if quality.band != "large" and critical:
        way = f"critical findings first ({', '.join(sorted(set(critical)))}), then {way}"
    return f"{head}: {way}"


def cpu_key_for(config: MapperConfig | None) -> str:
    """Where a node goes to the CPU: run_on_cpu on X3 (bernoulli2, no node_info there) or
    where the config already uses it, else node_info ON: CPU."""
    if config is None:
        return "node_info"
    if config.march in NO_INT16_MARCH or config.run_on_cpu:
        return "run_on_cpu"
    return "node_info"


def patch_settings(
    text: str,
    old: QuantSettings,
    new: QuantSettings,
    config: MapperConfig | None = None,
    *,
    name: str = "config.yaml",
) -> PatchResult:
    """The config text changed from `old` to `new` settings (the TUI's what-if choices)."""
    return apply_changes(text, settings_changes(old, new, cpu_key=cpu_key_for(config)), name=name)


def settings_changes(old: QuantSettings, new: QuantSettings, *, cpu_key: str) -> list[ConfigChange]:
    """The YAML changes that take the config from `old` to `new`."""
    out: list[ConfigChange] = []
    cp = "calibration_parameters"
    if new.calibration_type != old.calibration_type:
        out.append(set_key(f"{cp}.calibration_type", new.calibration_type))
    old_p = old.max_percentile if old.max_percentile not in (None, 1.0) else None
    new_p = new.max_percentile if new.max_percentile not in (None, 1.0) else None
    if new_p != old_p:
        if new_p is not None:
            out.append(set_key(f"{cp}.max_percentile", new_p))
        elif new.calibration_type == "max":
            out.append(set_key(f"{cp}.max_percentile", REMOVE))
    if new.per_channel != old.per_channel:
        out.append(set_key(f"{cp}.per_channel", new.per_channel))
    for flag in ("asymmetric", "bias_correction"):
        if getattr(new, flag) and not getattr(old, flag):
            out.append(add_item(f"{cp}.optimization", flag))
    old_over = {o.node: o for o in old.node_overrides}
    for o in new.node_overrides:
        if old_over.get(o.node) == o:
            continue
        prev = old_over.get(o.node)
        out.append(
            node_setting(
                o.node,
                on=o.on if (prev is None or prev.on != o.on) else None,
                input_type=o.input_dtype
                if (prev is None or prev.input_dtype != o.input_dtype)
                else None,
                output_type=o.output_dtype
                if (prev is None or prev.output_dtype != o.output_dtype)
                else None,
            )
        )
    for node in new.run_on_cpu:
        if node not in old.run_on_cpu:
            out.append(add_item(f"{cp}.{cpu_key}", node))
    return out


def _with_override(s: QuantSettings, node: str, **kw: str) -> QuantSettings:
    overs = {o.node: o for o in s.node_overrides}
    prev = overs.get(node)
    base = prev or NodeOverride(node)
    overs[node] = dataclasses.replace(base, **kw)
    return dataclasses.replace(s, node_overrides=tuple(overs.values()))


def _finding_changes(f: Finding) -> tuple[list[ConfigChange], str | None]:
    """A finding's config edits (its remedy) as patch changes; if one cannot be made, the
    whole change is shown as described and not applied."""
    edits = f.remedy.config if f.remedy is not None else ()
    if not edits:
        return [], None
    try:
        return [_patch_change(e) for e in edits], None
    except ValueError:  # not a key we can edit
        return [], "\n".join(e.describe() for e in edits)


def _patch_change(e: ConfigEdit) -> ConfigChange:
    """The patcher's change for a remedy's config edit (list values written as YAML text)."""
    if e.rename:
        return rename_node(e.key, e.node or "", str(e.new))
    if e.fields:
        return ConfigChange(e.key, node=e.node, fields=e.fields)
    if e.append:
        return add_item(e.key, str(e.new))
    if e.remove:
        return set_key(e.key, REMOVE)
    if isinstance(e.new, tuple):
        sep = LIST_SEPARATORS.get(e.key, " ")
        return set_key(e.key, sep.join(f"{v:g}" if isinstance(v, float) else str(v) for v in e.new))
    return set_key(e.key, e.new)


def _yaml_value(text: str) -> object:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


# The remedies' input fixes the measurer can emulate, by its names for them
_EMULATED = {
    InputFix.SWAP_CHANNELS: fixes.SWAP_CHANNELS,
    InputFix.REMOVE_NORMALISATION: fixes.UNDO_NORMALISATION,
    InputFix.SCALE_X255: fixes.SCALE_UP,
    InputFix.SCALE_DIV255: fixes.SCALE_DOWN,
    InputFix.READ_NHWC: fixes.READ_NHWC,
}


def _tail(nodes: Sequence[NodeRow]) -> list[NodeRow]:
    """Quantized nodes from the model output backwards (topological order reversed)."""
    return sorted(nodes, key=lambda n: -n.topo_index)


# ---------------------------------------------------------------------------- the planner


@dataclass
class _Planner:
    findings: tuple[Finding, ...]
    analysis: Analysis | None
    config: MapperConfig | None
    target: float
    band: str | None
    march: str | None
    progress: ProgressCallback | None
    cancel: threading.Event | None
    deadline: float | None = None
    done: int = 0
    stopped: str | None = None  # why later what-ifs were not measured

    @property
    def cap(self) -> Severity:
        """Tuning steps are graded by their measured gain, at most major (critical is for
        pipeline mistakes)."""
        return Severity.MAJOR

    @property
    def cpu_key(self) -> str:
        return cpu_key_for(self.config)

    def noise(
        self,
        state: _State,
        a: QuantSettings,
        ma: Measure | None,
        b: QuantSettings,
        mb: Measure | None,
    ) -> float:
        """The noise of the difference b - a: paired over the same samples where the
        measurer can say (much smaller than either measure's own spread), else the larger
        of the two measures' noise."""
        paired = getattr(state.measurer, "paired_noise", None)
        if paired is not None:
            value = paired(a, b)
            if value is not None and not math.isnan(value):
                return max(MIN_GAIN, value)
        return _noise(ma, mb)

    def measure(self, state: _State, settings: QuantSettings) -> Measure | None:
        if state.measurer is None:
            return None
        check_cancel(self.cancel)
        if state.measures >= MAX_MEASURES:
            self.stopped = f"stopped after {MAX_MEASURES} what-ifs"
            return None
        if self.deadline is not None and time.perf_counter() > self.deadline:
            self.stopped = f"what-ifs stopped by the time budget after {state.measures}"
            return None
        state.measures += 1
        self.done += 1
        report(self.progress, STAGE, self.done, None, settings.describe())
        return state.measurer.measure(settings)

    # -- 1. pipeline, config and data findings
    def pipeline_steps(self, state: _State) -> list[_Step]:
        chosen = [
            f
            for f in self.findings
            if not f.code.startswith("PTQ3")
            and f.code not in PIPELINE_CODES_LAST
            and f.severity.at_least(Severity.MINOR)
        ]
        chosen.sort(key=lambda f: (-f.severity.rank, f.code))
        steps = []
        for f in chosen:
            changes, raw = _finding_changes(f)
            before = after = None
            tried = False
            evidence = [_evidence_line(e) for e in f.evidence]
            fix = self._fix_for(f)
            if fix is not None and state.measurer is not None and state.measure is not None:
                check_cancel(self.cancel)
                fixed = state.measurer.with_input_fix(fix)
                if fixed is not None:
                    deployed = state.measurer.measure_as_deployed(fix, state.settings)
                    before = deployed or state.measure
                    after = fixed.measure(state.settings)
                    state.measurer, state.measure = fixed, after
                    state.fixes.append(f"{fix} ({f.code})")
                    tried = True
                    if deployed is not None:
                        evidence.append(
                            f"simulated ({fix}): the pipeline as it is (the labelled images "
                            f"put through the same mistake) {_fmt(before)} -> fixed "
                            f"{_fmt(after)}"
                        )
                    else:
                        evidence.append(
                            f"simulated ({fix}), quantized vs float on the same data (no labels "
                            f"for the pipeline's own loss): {_fmt(before)} -> {_fmt(after)}"
                        )
                        if f.measured:
                            evidence.append(f"float model on the data: {f.measured}")
                else:
                    evidence.append(f"not measured: the simulator cannot emulate '{fix}' here")
            elif f.measured:
                evidence.append(f"measured by the rule: {f.measured}")
            else:
                evidence.append("not measured: no simulator what-if for this finding")
            if changes and not tried and state.measurer is not None:
                new = self._settings_after(state.settings, changes)
                if new is not None and new != state.settings:
                    m = self.measure(state, new)
                    if m is not None:
                        before, after, tried = state.measure, m, True
                        state.settings, state.measure = new, m
            state.changes += changes
            stage = "pipeline"
            steps.append(
                _Step(
                    stage=stage,
                    title=f"{f.code}: {_short(f.message)}",
                    action=f.fix or "Fix the finding as its rule explains.",
                    why=f.message,
                    severity=f.severity,
                    evidence=tuple(evidence),
                    before=before,
                    after=after,
                    changes=tuple(changes),
                    codes=(f.code,),
                    tried=tried,
                    yaml_text=raw,
                )
            )
        return steps

    def _fix_for(self, f: Finding) -> str | None:
        """The data fix the simulator can emulate for this finding's remedy (None: none).

        A remedy that is a config change is not a data mistake, except dropping the config's
        normalisation (norm_type no_preprocess, double normalisation): undoing it on the data
        feeds the model the same values.
        """
        if f.remedy is None:
            return None
        for change in f.remedy.inputs:
            fix = _EMULATED.get(change.fix)
            if fix is not None:
                return fix
        for e in f.remedy.config:
            if e.key == "input_parameters.norm_type" and e.new == "no_preprocess":
                return fixes.UNDO_NORMALISATION
        return None

    def _settings_after(
        self, settings: QuantSettings, changes: Sequence[ConfigChange]
    ) -> QuantSettings | None:
        """The settings a finding's calibration changes lead to (None if not calibration)."""
        out = settings
        for c in changes:
            group, _, name = c.key.partition(".")
            if group != "calibration_parameters":
                return None
            if name == "calibration_type" and isinstance(c.value, str):
                try:
                    out = dataclasses.replace(out, calibration_type=c.value)
                except ValueError:
                    return None
            elif name == "per_channel" and isinstance(c.value, bool):
                out = dataclasses.replace(out, per_channel=c.value)
            elif name == "max_percentile":
                value = None if c.value is REMOVE else c.value
                if value is not None and not isinstance(value, float):
                    return None
                out = dataclasses.replace(out, max_percentile=value)
            else:
                return None
        return out

    # -- 2. calibration
    def calibration_steps(self, state: _State) -> list[_Step]:
        if state.measurer is None:
            return self._calibration_from_sweep(state)
        start = state.settings
        start_m = state.measure
        if start_m is None:
            return []
        tried: dict[str, tuple[QuantSettings, Measure]] = {}

        def trial(label: str, s: QuantSettings) -> None:
            if s == start:
                tried[label] = (s, start_m)
                return
            m = self.measure(state, s)
            if m is not None:
                tried[label] = (s, m)

        plain = dataclasses.replace(start, max_percentile=None)
        for ctype in ("mix", "kl", "max"):
            trial(ctype, dataclasses.replace(plain, calibration_type=ctype))
        for p in PERCENTILES:
            trial(
                f"max p={p:g}", dataclasses.replace(start, calibration_type="max", max_percentile=p)
            )
        if all(m is start_m for _, m in tried.values()):
            return []  # nothing measured (budget spent): no calibration verdict
        steps = []
        trend = ", ".join(
            f"{p:g} {_cos(tried[f'max p={p:g}'][1]):.4f}"
            for p in PERCENTILES
            if f"max p={p:g}" in tried
        )
        methods = ", ".join(f"{k} {_cos(m):.4f}" for k, (_, m) in tried.items() if "p=" not in k)
        _, (best_s, best_m) = max(tried.items(), key=lambda kv: _cos(kv[1][1]))
        noise = self.noise(state, start, start_m, best_s, best_m)
        evidence = (
            f"configured ({start.describe()}): {_fmt(start_m)}",
            f"methods: {methods}",
            f"max_percentile trend (cosine): {trend}",
            f"noise of the method comparison: {noise:.5f} cosine",
        )
        current_s, current_m = start, start_m
        method_ok = _cos(best_m) - _cos(start_m) > noise and best_s != start
        explicit_types = ("kl", "max")
        if (
            method_ok
            and not start.per_channel
            and start.calibration_type in explicit_types
            and best_s.calibration_type in explicit_types
        ):
            # keep the method change only if it still counts once per_channel is on (the
            # next step): otherwise per_channel alone is the smaller change that does it
            pc_start = dataclasses.replace(start, per_channel=True)
            pc_best = dataclasses.replace(best_s, per_channel=True)
            m_start = self.measure(state, pc_start)
            m_best = self.measure(state, pc_best)
            if (
                m_start is not None
                and m_best is not None
                and _cos(m_best) - _cos(m_start)
                <= self.noise(state, pc_start, m_start, pc_best, m_best)
            ):
                method_ok = False
                evidence = (
                    *evidence,
                    f"with per_channel the method no longer matters: {start.describe()} "
                    f"+ per_channel {_cos(m_start):.4f}, {best_s.describe()} + per_channel "
                    f"{_cos(m_best):.4f}",
                )
        if method_ok:
            steps.append(
                _Step(
                    stage="calibration",
                    title=f"Calibrate with {best_s.describe()}",
                    action=f"Set calibration_type {best_s.calibration_type}"
                    + (
                        f", max_percentile {best_s.max_percentile:g}"
                        if best_s.max_percentile
                        else ""
                    )
                    + ".",
                    why="Of the reference's calibration methods this one keeps the model output "
                    "closest to the float model, by more than the measurement noise.",
                    severity=_grade(start_m, best_m, self.cap),
                    evidence=evidence,
                    before=start_m,
                    after=best_m,
                    changes=tuple(settings_changes(start, best_s, cpu_key=self.cpu_key)),
                    codes=self._codes("PTQ302"),
                    tried=True,
                )
            )
            current_s, current_m = best_s, best_m
        # flags on the best: per_channel, asymmetric, bias_correction
        flag_base_s, flag_base_m = current_s, current_m
        if current_s.calibration_type in ("default", "mix"):
            # default/mix decide per-channel themselves: flags go on the best explicit method
            explicit = [
                (s, m) for k, (s, m) in tried.items() if s.calibration_type in ("kl", "max")
            ]
            if explicit:
                flag_base_s, flag_base_m = max(explicit, key=lambda sm: _cos(sm[1]))
        why = {
            "per_channel": "One weight scale per output channel: channels whose weights span "
            "very different ranges no longer share one scale.",
            "asymmetric": "A zero point per activation tensor: one-sided ranges (after ReLU "
            "or with an offset) use all int8 levels.",
            "bias_correction": "Corrects the mean output shift quantization puts on each node.",
        }
        codes = {"per_channel": ("PTQ301",), "asymmetric": (), "bias_correction": ()}
        for flag in ("per_channel", "asymmetric", "bias_correction"):
            if getattr(flag_base_s, flag):
                continue
            s = dataclasses.replace(flag_base_s, **{flag: True})
            m = self.measure(state, s)
            if m is None:
                continue
            noise_f = self.noise(state, current_s, current_m, s, m)
            line = f"{s.describe()}: {_fmt(m)} (without {flag}: {_fmt(flag_base_m)})"
            if _cos(m) - _cos(current_m) > noise_f:
                changes = settings_changes(current_s, s, cpu_key=self.cpu_key)
                steps.append(
                    _Step(
                        stage="calibration",
                        title=f"Turn on {flag}"
                        + (
                            f" (with {s.calibration_type})"
                            if s.calibration_type != current_s.calibration_type
                            else ""
                        ),
                        action="Set " + "; ".join(c.describe() for c in changes) + ".",
                        why=why[flag],
                        severity=_grade(current_m, m, self.cap),
                        evidence=(line, f"noise of the measurement: {noise_f:.5f} cosine")
                        + (evidence if not steps else ()),
                        before=current_m,
                        after=m,
                        changes=tuple(changes),
                        codes=self._codes(*codes[flag]),
                        tried=True,
                    )
                )
                current_s, current_m = s, m
                flag_base_s, flag_base_m = s, m
        if not steps:
            steps.append(
                _Step(
                    stage="calibration",
                    title=f"Keep the calibration ({start.describe()})",
                    action="No calibration change: none beats the configured one by more than "
                    "the measurement noise.",
                    why="The reference's calibration order was tried in the simulator.",
                    severity=Severity.INFO,
                    evidence=evidence,
                    before=start_m,
                    after=start_m,
                    tried=True,
                )
            )
        for s in steps:
            state.changes += s.changes
        state.settings, state.measure = current_s, current_m
        return steps

    def _codes(self, *codes: str) -> tuple[str, ...]:
        present = {f.code for f in self.findings}
        return tuple(c for c in codes if c in present)

    def _calibration_from_sweep(self, state: _State) -> list[_Step]:
        """No measurer: recommend from the method sweep's rows (measured by the analyses)."""
        if self.analysis is None or not self.analysis.sweep:
            return []
        rows = self.analysis.sweep
        chosen = next((r for r in rows if r.chosen), None)
        if chosen is None:
            return []
        best = max(rows, key=lambda r: r.cosine if not math.isnan(r.cosine) else -1.0)
        noise = max(MIN_GAIN, chosen.noise or 0.0, best.noise or 0.0)
        before = Measure(chosen.cosine, chosen.top1, chosen.agreement, chosen.noise)
        after = Measure(best.cosine, best.top1, best.agreement, best.noise)
        trend = ", ".join(f"{r.label} {r.cosine:.4f}" for r in rows)
        if best is chosen or best.cosine - chosen.cosine <= noise:
            return [
                _Step(
                    "calibration",
                    f"Keep the calibration ({chosen.label})",
                    "No calibration change: none beats the configured one by more than the noise.",
                    "The method sweep measured the reference's calibration order.",
                    Severity.INFO,
                    (f"sweep (cosine): {trend}",),
                    before,
                    before,
                    tried=True,
                )
            ]
        changes = []
        want = dict(best.settings)
        have = dict(chosen.settings)
        for k, v in want.items():
            if have.get(k) == v:
                continue
            if k == "optimization":
                changes += [
                    add_item("calibration_parameters.optimization", i) for i in v.split(",")
                ]
            else:
                changes.append(set_key(f"calibration_parameters.{k}", _yaml_value(v)))
        if (
            "max_percentile" in have
            and "max_percentile" not in want
            and want.get("calibration_type") == "max"
        ):
            changes.append(set_key("calibration_parameters.max_percentile", REMOVE))
        state.changes += changes
        state.measure = after
        return [
            _Step(
                "calibration",
                f"Calibrate with {best.label}",
                "Set " + "; ".join(c.describe() for c in changes) + ".",
                "The method sweep measured it closest to the float model, above the noise.",
                _grade(before, after, self.cap),
                (f"sweep (cosine): {trend}", f"noise: {noise:.5f} cosine"),
                before,
                after,
                tuple(changes),
                self._codes("PTQ301", "PTQ302"),
                tried=True,
            )
        ]

    # -- 3. calibration set
    def calibration_set_steps(self) -> list[_Step]:
        out = []
        chosen = [
            f
            for f in self.findings
            if f.code in PIPELINE_CODES_LAST and f.severity.at_least(Severity.MINOR)
        ]
        for f in sorted(chosen, key=lambda f: (-f.severity.rank, f.code)):
            changes, raw = _finding_changes(f)
            out.append(
                _Step(
                    stage="calibration-set",
                    title=f"{f.code}: {_short(f.message)}",
                    action=f.fix or "Change the calibration set as the rule explains.",
                    why=f.message,
                    severity=f.severity,
                    evidence=tuple(f"{e.what}: {e.observed}" for e in f.evidence)
                    + (
                        (f"measured by the rule: {f.measured}",)
                        if f.measured
                        else ("not measured",)
                    ),
                    changes=tuple(changes),
                    codes=(f.code,),
                    yaml_text=raw,
                )
            )
        return out

    # -- 4. precision
    def precision_steps(self, state: _State) -> list[_Step]:
        steps = self._output_precision(state)
        nodes = self.analysis.nodes if self.analysis is not None else ()
        if not nodes:
            return steps
        if state.measurer is None:
            return steps + self._precision_from_table(state, nodes)
        if state.measure is None:
            return steps
        if _cos(state.measure) >= self.target:
            return steps + self._optional_tail(state)
        return steps + self._node_precision(state, nodes)

    def _optional_tail(self, state: _State) -> list[_Step]:
        """The cosine target is met, but PTQ304 found an output operator that gains from the
        CPU: measure it. A gain in accuracy points (labels) makes it a step like any other;
        a gain in cosine alone is offered, outside the written config (a CPU node costs)."""
        tail = [f for f in self.findings if f.code == "PTQ304"]
        names = [n for f in tail for n in f.related]
        if not names or state.measurer is None or state.measure is None:
            return []
        name = names[0]
        s = self._to_cpu(state.settings, name)
        m = self.measure(state, s)
        if m is None:
            return []
        noise = self.noise(state, state.settings, state.measure, s, m)
        if _cos(m) - _cos(state.measure) <= noise:
            return []
        changes = settings_changes(state.settings, s, cpu_key=self.cpu_key)
        described = "; ".join(c.describe() for c in changes)
        points = _points(state.measure, m)
        evidence = (
            f"measured: {_fmt(state.measure)} -> {_fmt(m)} (noise {noise:.5f})",
            "cost: 1 operator on the CPU; it splits the BPU graph and runs slower",
        )
        if points is not None and points >= MIN_TAIL_POINTS:
            step = _Step(
                stage="precision",
                title=f"Run {name} on the CPU (float)",
                action=f"Set {described}.",
                why=f"The output operator costs {points:.1f} accuracy points in int8 though the "
                "output cosine meets the target; on the CPU it runs in float.",
                severity=_grade(state.measure, m, self.cap),
                evidence=evidence,
                before=state.measure,
                after=m,
                changes=tuple(changes),
                codes=("PTQ304",),
                tried=True,
            )
            state.changes += changes
            state.settings, state.measure = s, m
            return [step]
        return [
            _Step(
                stage="precision",
                title=f"Optional: run {name} on the CPU (float)",
                action=f"Set {described} if the gain is worth a CPU operator (not in the "
                "written config: the target is already met).",
                why="The output operator loses the most; on the CPU it runs in float.",
                severity=Severity.MINOR,
                evidence=evidence,
                before=state.measure,
                after=m,
                codes=("PTQ304",),
                tried=True,
                yaml_text="\n".join(c.describe() for c in changes),
            )
        ]

    def _output_precision(self, state: _State) -> list[_Step]:
        """int8 model outputs (set_model_output_int8, int8 Softmax): dropped when that
        measurably helps (PTQ306)."""
        flags = {
            "set_model_output_int8": "set_model_output_int8",
            "set_Softmax_input_int8": "softmax_input_int8",
            "set_Softmax_output_int8": "softmax_output_int8",
        }
        on = [item for item, field_ in flags.items() if getattr(state.settings, field_)]
        if not on or self.config is None or state.measurer is None or state.measure is None:
            return []
        s = dataclasses.replace(state.settings, **{flags[i]: False for i in on})
        m = self.measure(state, s)
        if m is None:
            return []
        noise = self.noise(state, state.settings, state.measure, s, m)
        if _cos(m) - _cos(state.measure) <= noise:
            return []
        keep = [i for i in self.config.optimization if i not in flags]
        change = set_key("calibration_parameters.optimization", ",".join(keep) if keep else REMOVE)
        step = _Step(
            stage="precision",
            title="Keep the model outputs in high precision",
            action=f"Remove {', '.join(on)} from calibration_parameters.optimization.",
            why="int8 outputs round away the small score differences that decide the result; "
            "without the option the last BPU node writes high-precision output.",
            severity=_grade(state.measure, m, self.cap),
            evidence=(f"measured: {_fmt(state.measure)} -> {_fmt(m)} (noise {noise:.5f})",),
            before=state.measure,
            after=m,
            changes=(change,),
            codes=self._codes("PTQ306"),
            tried=True,
        )
        state.changes.append(change)
        state.settings, state.measure = s, m
        return [step]

    def _node_precision(self, state: _State, nodes: Sequence[NodeRow]) -> list[_Step]:
        int16_ok = self.march not in NO_INT16_MARCH
        ranked = sorted(
            (n for n in nodes if n.placement == "BPU" and n.dtype == "int8"),
            key=lambda n: (
                -(n.int16_gain or 0.0),
                n.sensitivity_cosine if n.sensitivity_cosine is not None else 1.0,
            ),
        )
        tail = _tail(nodes)[:MAX_TAIL_CPU]
        steps: list[_Step] = []
        int16_nodes: list[str] = []
        cpu_nodes = [n.name for n in tail if n.placement == "CPU"]
        while _cos(state.measure) < self.target and len(int16_nodes) < MAX_INT16:
            options: list[tuple[str, str, QuantSettings]] = []
            nxt = next((n for n in tail if n.name not in cpu_nodes), None)
            if (
                nxt is not None
                and len(cpu_nodes) < MAX_TAIL_CPU
                and all(t.name in cpu_nodes for t in tail if t.topo_index > nxt.topo_index)
            ):
                options.append(("cpu", nxt.name, self._to_cpu(state.settings, nxt.name)))
            if int16_ok:
                picks = [n for n in ranked if n.name not in int16_nodes and n.name not in cpu_nodes]
                for n in picks[:INT16_CANDIDATES]:
                    s = _with_override(
                        state.settings, n.name, input_dtype="int16", output_dtype="int16"
                    )
                    options.append(("int16", n.name, s))
            if not options:
                break
            results = []
            for kind, name, s in options:
                m = self.measure(state, s)
                if m is not None:
                    results.append((kind, name, s, m))
            if not results:
                break
            kind, name, s, m = max(results, key=lambda r: _cos(r[3]))
            noise = self.noise(state, state.settings, state.measure, s, m)
            if _cos(m) - _cos(state.measure) <= noise:
                break
            others = ", ".join(
                f"{k} {n} {_cos(mm):.4f}" for k, n, _, mm in results if n != name or k != kind
            )
            changes = settings_changes(state.settings, s, cpu_key=self.cpu_key)
            if kind == "cpu":
                cpu_nodes.append(name)
                title = f"Run {name} on the CPU (float)"
                why = (
                    "An output operator: the reference moves only the last 1-2 operators to "
                    "the CPU, where they run in float."
                )
                cost = (
                    f"cost: {len(cpu_nodes)} operator(s) on the CPU; each CPU node splits "
                    "the BPU graph and runs slower"
                )
            else:
                int16_nodes.append(name)
                title = f"Run {name} in int16"
                why = "Its int8 computation loses the most of the nodes measured."
                cost = f"cost: {len(int16_nodes)} node(s) in int16 (twice the data width, slower)"
            steps.append(
                _Step(
                    stage="precision",
                    title=title,
                    action="Set " + "; ".join(c.describe() for c in changes) + ".",
                    why=why,
                    severity=_grade(state.measure, m, self.cap),
                    evidence=(
                        f"measured: {_fmt(state.measure)} -> {_fmt(m)} (noise {noise:.5f})",
                        cost,
                    )
                    + ((f"other candidates this round: {others}",) if others else ()),
                    before=state.measure,
                    after=m,
                    changes=tuple(changes),
                    codes=self._codes("PTQ303", "PTQ304", "PTQ306"),
                    tried=True,
                )
            )
            state.changes += changes
            state.settings, state.measure = s, m
        if not int16_ok and steps == [] and _cos(state.measure) < self.target:
            log.info("int16 not tried: march %s has no int16 node types", self.march)
        return steps

    def _to_cpu(self, s: QuantSettings, node: str) -> QuantSettings:
        if self.cpu_key == "run_on_cpu":
            return dataclasses.replace(
                s,
                run_on_cpu=(*s.run_on_cpu, node),
                run_on_bpu=tuple(n for n in s.run_on_bpu if n != node),
            )
        return _with_override(s, node, on="CPU")

    def _precision_from_table(self, state: _State, nodes: Sequence[NodeRow]) -> list[_Step]:
        if state.measure is None or _cos(state.measure) >= self.target:
            return []
        best = sorted(
            (n for n in nodes if (n.int16_gain or 0.0) > MIN_GAIN),
            key=lambda n: -(n.int16_gain or 0.0),
        )
        out = []
        for n in best[:3]:
            change = node_setting(n.name, input_type="int16", output_type="int16")
            out.append(
                _Step(
                    "precision",
                    f"Run {n.name} in int16",
                    f"Set {change.describe()}.",
                    "Alone, int16 on this node raised the output cosine the most.",
                    Severity.MINOR,
                    (
                        f"int16 gain measured alone: {n.int16_gain:.4f} cosine",
                        "combined effect not measured",
                    ),
                    changes=(change,),
                    codes=self._codes("PTQ303"),
                )
            )
            state.changes.append(change)
        return out

    # -- 5. node analysis
    def node_steps(self, state: _State) -> list[_Step]:
        if state.measurer is not None and _cos(state.measure) >= self.target:
            return []  # the steps above reach the target: the configured scheme's nodes are moot
        verdict = node_verdict(self.analysis)
        if verdict is None:
            return []
        kind, text, evidence = verdict
        return [
            _Step(
                stage="nodes",
                title=text,
                action=(
                    "Treat the sensitive nodes first (int16, CPU for the tail), as the precision "
                    "steps do."
                    if kind == "sensitive"
                    else "Single-node changes help little: prefer whole-model settings "
                    "(per_channel, calibration) and, if still short, QAT."
                ),
                why="The two causes of PTQ loss (reference §3): a few sensitive nodes, or small "
                "errors accumulating along the graph.",
                severity=Severity.INFO,
                evidence=evidence,
                codes=self._codes("PTQ303", "PTQ305"),
            )
        ]

    # -- 6. QAT
    def qat_steps(self, state: _State) -> list[_Step]:
        m = state.measure
        if m is None or _cos(m) >= self.target or self.band == "small":
            return []
        return [
            _Step(
                stage="qat",
                title="Quantization-aware training",
                action="Fine-tune the model with quantization in the loop (QAT); PTQ has reached "
                "its limit on this model.",
                why=f"No PTQ setting tried reaches the target output cosine {self.target:g}.",
                severity=Severity.MAJOR if self.band == "large" else Severity.MINOR,
                evidence=(f"best PTQ state reached: {state.settings.describe()}: {_fmt(m)}",),
                before=m,
                after=None,
            )
        ]


def node_verdict(analysis: Analysis | None) -> tuple[str, str, tuple[str, ...]] | None:
    """('sensitive' | 'accumulation', headline, evidence) from the node analyses."""
    if analysis is None:
        return None
    rows = [
        n
        for n in analysis.nodes
        if n.sensitivity_cosine is not None and not math.isnan(n.sensitivity_cosine)
    ]
    if not rows:
        return None
    total = 1.0 - analysis.quality.output_cosine if analysis.quality is not None else None
    if analysis.curve:
        total = 1.0 - analysis.curve[-1].cosine
    if total is None or total < MIN_NODE_LOSS:
        return None  # too little lost to say where it comes from
    ranked = sorted(rows, key=lambda n: n.sensitivity_cosine or 1.0)
    sensitive = [n for n in ranked if (n.sensitivity_cosine or 1.0) < SENSITIVE_COSINE]
    top = ranked[:FEW_NODES]
    explained = sum(1.0 - (n.sensitivity_cosine or 1.0) for n in top)
    share = explained / total
    evidence = (
        f"output cosine loss with every node int8: {total:.4f}",
        "most sensitive alone: " + ", ".join(f"{n.name} {n.sensitivity_cosine:.4f}" for n in top),
        f"nodes below the converter's {SENSITIVE_COSINE} alone: {len(sensitive)} of {len(rows)}",
        f"the top {len(top)} alone lose {100 * share:.0f} % of the whole loss"
        + (" (their losses overlap)" if share > 1 else ""),
    )
    if sensitive and len(sensitive) <= FEW_NODES and share >= EXPLAINED_SHARE:
        names = ", ".join(n.name for n in sensitive)
        return "sensitive", f"A few sensitive nodes: {names}", evidence
    return "accumulation", "Error accumulates along the graph (no single culprit)", evidence


def plan_for_inputs(
    findings: Sequence[Finding],
    analysis: Analysis | None,
    sim: SimContext | None,
    inputs: LoadedInputs,
    *,
    target_cosine: float = DEFAULT_TARGET,
    time_budget: float | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Plan:
    """What `diagnose` calls: the plan measured on `run_analysis`'s SimContext (None: from
    the analysis numbers alone)."""
    from ptqtui.advise.measurer import SimMeasurer

    measurer = (
        SimMeasurer(sim, inputs, cancel=cancel, eval_limit=PLAN_EVAL_LIMIT)
        if sim is not None
        else None
    )
    return build_plan(
        findings,
        analysis,
        measurer,
        inputs.config,
        target_cosine=target_cosine,
        time_budget=time_budget,
        progress=progress,
        cancel=cancel,
    )
