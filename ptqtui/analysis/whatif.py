"""The what-if service: a `Remedy` measured on the simulator, as the planner and the TUI ask.

`WhatIf.measure(remedy)` applies the remedy to the configured state and measures the model
outputs against the float model (and top-1 with labels):
- `remedy.settings` (a `SettingsDelta`) and the config edits the simulator reads
  (`calibration_parameters` calibration_type, max_percentile, per_channel, optimization,
  run_on_cpu, and node_info ON/InputType) change the `QuantSettings` (`settings_after`);
- `remedy.inputs` (`InputChange`s) are emulated on the calibration data: the data is read
  again with the fixes applied (one more observation pass per set of fixes, cached); a
  config edit `norm_type: no_preprocess` is emulated as removing the normalisation from the
  data (the converter then feeds the model the same values: `input_changes`);
- other config edits change nothing the simulator sees.
`measure_as_deployed` measures the user's pipeline with a mistake still made (the labelled
images put through it), so a pipeline fix can show what the user would see before and after.
Results are cached by (input fixes, settings); the SimContext also remembers what the
method sweep measured, so the plan's calibration step re-measures none of it.

The planner sees only `WhatIfService` (tests use a fake); the TUI gets the `WhatIf` with the
diagnosis (`diagnosis.run_diagnosis`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ptqtui.analysis.results import Measure
from ptqtui.errors import PtqInputError
from ptqtui.policy import MIN_GAIN, MIN_TASK_GAIN
from ptqtui.quant.scheme import CALIBRATION_TYPES, QuantSettings
from ptqtui.remedy import (
    ConfigEdit,
    DType,
    InputChange,
    InputFix,
    NodeChange,
    Placement,
    Remedy,
    SettingsDelta,
)

if TYPE_CHECKING:
    from ptqtui.analysis.context import SimContext
    from ptqtui.inputs.resolve import LoadedInputs

log = logging.getLogger(__name__)

# Contexts built to emulate input fixes kept besides the configured one: the plan measures a
# fix's settings one after the other, so the latest is the one asked for again
EXTRA_CONTEXTS = 1
EVAL_LIMIT = 300  # labelled images per what-if (top-1 to about +-3 points; cosine unaffected)


Scores = tuple[tuple[float, ...], tuple[float, ...]]  # per sample: agreement, labelled metric
Key = tuple[tuple[InputChange, ...], QuantSettings]  # a what-if: its input fixes and settings


class CannotEmulate(Exception):
    """The remedy's input fixes cannot be emulated on these inputs."""


class WhatIfService(Protocol):
    """What the planner needs from the simulator (all measured at the model outputs, against
    the float model, relative to the configured state)."""

    @property
    def settings(self) -> QuantSettings:
        """The configured settings every remedy starts from."""
        ...

    def measure(self, remedy: Remedy) -> Measure:
        """The model with `remedy` applied, re-calibrated, measured; raises CannotEmulate."""
        ...

    def measure_against(self, remedy: Remedy, against: Remedy) -> Measure:
        """`remedy` measured as a candidate to replace `against`: sequentially where the task
        agreement decides, stopped short (`Measure.partial_of`) once it cannot gain over
        `against` beyond the noise; else as `measure`."""
        ...

    def measure_race(self, remedies: Sequence[Remedy], against: Remedy) -> list[Measure]:
        """Candidates to replace `against`, measured side by side: one may stop short
        (`Measure.partial_of`) once it cannot gain over `against`, or is behind the best of
        them, beyond the noise; else as `measure` each."""
        ...

    def counts(self) -> tuple[int, int]:
        """(calibration samples behind a measure's cosine, labelled images behind its top-1)."""
        ...

    def paired_noise(self, a: Remedy, b: Remedy) -> float | None:
        """The standard error of the output cosine difference b - a over the same samples
        (None when it cannot be said)."""
        ...

    def paired_task_noise(self, a: Remedy, b: Remedy, *, labels: bool = False) -> float | None:
        """The standard error of the task agreement difference b - a over the same samples
        (`labels`: of the labelled metric over the same images), from measures taken (None
        when it cannot be said)."""
        ...

    def can_emulate(self, change: InputChange) -> bool:
        """Whether this input fix can be emulated on these inputs."""
        ...

    def measure_as_deployed(self, remedy: Remedy, mistake: InputChange) -> Measure | None:
        """The pipeline with `remedy` applied and the mistake `mistake` undoes still made,
        evaluated on labelled images put through the same mistake; None without labels."""
        ...


class WhatIf:
    """`WhatIfService` over the analyses' `SimContext` (what `run_analysis` returns).

    Thread-safe: one measurement at a time (the TUI measures from a worker thread); a
    `cancel` event given to `measure` stops that measurement at its next check.
    """

    def __init__(
        self,
        ctx: SimContext,
        inputs: LoadedInputs | None = None,
        *,
        eval_limit: int | None = EVAL_LIMIT,
        cancel: threading.Event | None = None,
    ) -> None:
        self.ctx = ctx
        self.inputs = inputs
        self.eval_limit = eval_limit
        self.cancel = cancel
        self._lock = threading.RLock()
        self._contexts: dict[tuple[InputChange, ...], SimContext] = {(): ctx}
        self._cache: dict[tuple[tuple[InputChange, ...], QuantSettings], Measure] = {}
        # measures a sequential measurement stopped short, by (candidate, the state it could
        # not gain over): against another state it is measured again; `measure` makes it whole
        self._partial: dict[tuple[Key, Key], Measure] = {}
        self._per_sample: dict[tuple[tuple[InputChange, ...], QuantSettings], np.ndarray] = {}
        self._scores: dict[tuple[tuple[InputChange, ...], QuantSettings], Scores] = {}

    @property
    def settings(self) -> QuantSettings:
        return self.ctx.settings

    def settings_for(self, remedy: Remedy) -> QuantSettings:
        """The `QuantSettings` `remedy` leads to from the configured ones."""
        return settings_after(self.ctx.settings, remedy)

    # ------------------------------------------------------------------ measuring
    def measure(self, remedy: Remedy, *, cancel: threading.Event | None = None) -> Measure:
        key = self._key(remedy)
        with self._lock:
            hit = self._cache.get(key)
            if hit is None:
                from ptqtui.analysis.context import measure_record

                ctx = self._context(key[0], cancel)
                m = ctx.measure(key[1], eval_limit=self.eval_limit, cancel=cancel or self.cancel)
                hit = measure_record(m)
                self._cache[key] = hit
                for pair in [pair for pair in self._partial if pair[0] == key]:
                    del self._partial[pair]
                self._scores[key] = (m.scores, m.label_scores)
                self._keep_cosines(key, m.cosines)
            return hit

    def _key(self, remedy: Remedy) -> tuple[tuple[InputChange, ...], QuantSettings]:
        return (input_changes(remedy), self.settings_for(remedy))

    def _keep_cosines(
        self, key: tuple[tuple[InputChange, ...], QuantSettings], cosines: tuple[float, ...]
    ) -> None:
        """A measure's per-sample output cosines, for the paired noise (no passes again)."""
        if cosines and len(cosines) == len(self._contexts[key[0]].samples):
            self._per_sample.setdefault(key, np.asarray(cosines, np.float64))

    def measure_against(
        self, remedy: Remedy, against: Remedy, *, cancel: threading.Event | None = None
    ) -> Measure:
        """`remedy` measured SEQUENTIAL_STEP agreement samples at a time, paired with `against`
        (measured whole first) on the same samples; it stops once its gain over `against` is
        below MIN_TASK_GAIN beyond SEQUENTIAL_Z standard errors of the paired difference (when
        its output cosine gains: once below `against`). Whole where the agreement does not
        decide (labels, no task metric) or the two remedies see different data (input
        fixes)."""
        return self.measure_race([remedy], against, cancel=cancel)[0]

    def measure_race(
        self,
        remedies: Sequence[Remedy],
        against: Remedy,
        *,
        cancel: threading.Event | None = None,
    ) -> list[Measure]:
        """Candidates to replace `against`, measured side by side (`SimContext.race`): one
        stops short (`Measure.partial_of`) once its gain over `against` is below
        MIN_TASK_GAIN (the least the plan counts), or its agreement below the best
        candidate's, beyond the noise; one whose output cosine gains over `against`'s beyond
        its paired noise stops only once below `against` (the cosine alone may recommend
        it). Whole where the agreement does not decide or the data differ (input fixes)."""
        keys = [self._key(r) for r in remedies]
        base = self._key(against)
        with self._lock:
            out: dict[int, Measure] = {}
            todo: list[int] = []
            for i, key in enumerate(keys):
                hit = self._cache.get(key) or self._partial.get((key, base))
                if hit is not None:
                    out[i] = hit
                elif key[0] != base[0] or self._context(key[0], cancel).agreement_count() == 0:
                    out[i] = self.measure(remedies[i], cancel=cancel)
                else:
                    todo.append(i)
            if todo:
                from ptqtui.analysis.context import measure_record

                state = self.measure(against, cancel=cancel)
                ref = self._scores[base][0]
                ctx = self._context(base[0], cancel)
                state_cos = self._per_sample.get(base)

                def gains_cosine(m: Any) -> bool:
                    """The judge's cosine test, on the analysis samples (all in the first step)."""
                    if state_cos is None or len(m.cosines) != state_cos.size:
                        return False
                    noise = max(MIN_GAIN, paired_se(state_cos, m.cosines) or 0.0)
                    return m.similarity.cosine - state.cosine > noise

                raced = ctx.race(
                    [keys[i][1] for i in todo],
                    ref,
                    protected=gains_cosine,
                    margin=MIN_TASK_GAIN,  # the least gain the plan counts: it cannot gain
                    eval_limit=self.eval_limit,
                    cancel=cancel or self.cancel,
                )
                for i, m in zip(todo, raced, strict=True):
                    if len(m.scores) == len(ref):
                        out[i] = self.measure(remedies[i], cancel=cancel)  # whole: remembered
                        continue
                    record = dataclasses.replace(measure_record(m), partial_of=len(ref))
                    self._partial[(keys[i], base)] = record
                    self._scores[keys[i]] = (m.scores, m.label_scores)
                    self._keep_cosines(keys[i], m.cosines)
                    out[i] = record
            return [out[i] for i in range(len(remedies))]

    def counts(self) -> tuple[int, int]:
        te = self.ctx.task_eval
        labelled = self.ctx._eval_count(self.eval_limit) or (len(te) if te is not None else 0)
        return len(self.ctx.samples), labelled

    def paired_noise(self, a: Remedy, b: Remedy) -> float | None:
        """Standard error of the per-sample output cosine difference b - a over the analysis
        samples (the same samples under both, so their common spread cancels)."""
        with self._lock:
            return paired_se(self._cosines(a), self._cosines(b))

    def paired_task_noise(self, a: Remedy, b: Remedy, *, labels: bool = False) -> float | None:
        """Standard error of the per-sample task agreement difference b - a (`labels`: of
        the per-image labelled metric), both measured (the same samples under both, so their
        common spread cancels)."""
        with self._lock:
            pa = self._scores.get((input_changes(a), self.settings_for(a)), ((), ()))
            pb = self._scores.get((input_changes(b), self.settings_for(b)), ((), ()))
        sa, sb = pa[int(labels)], pb[int(labels)]
        if not sa or len(sa) != len(sb):
            return None
        return paired_se(sa, sb)

    def can_emulate(self, change: InputChange) -> bool:
        if self.inputs is None or self.inputs.calibration is None:
            return False
        if change.fix is InputFix.DROP_SAMPLES:
            return bool(_dropped(self.inputs, change))
        return _fixers(self.inputs, change) is not None

    def measure_as_deployed(self, remedy: Remedy, mistake: InputChange) -> Measure | None:
        """Calibrated on the data as `remedy` leaves it (the mistake not undone), evaluated on
        labelled images put through the mistake; None without labels or when the mistake
        cannot be emulated."""
        if self.inputs is None or self.inputs.calibration is None or self.ctx.eval is None:
            return None
        if mistake.fix is InputFix.DROP_SAMPLES:
            try:
                return self.measure(remedy)  # the samples are only in the calibration set
            except CannotEmulate:
                return None
        fixers = _fixers(self.inputs, mistake)
        mistakes = _fixers(self.inputs, mistake, inverse=True)
        if fixers is None or mistakes is None:
            return None
        from ptqtui.analysis.context import AnalysisUnavailable, build_context, measure_record

        with self._lock:
            try:
                base = self._inputs_with((*input_changes(remedy), mistake))
            except CannotEmulate:
                return None
            names = [lay.name for lay in self.inputs.layouts]
            pres = self.inputs.preprocessors
            wrapped = tuple(
                _Mistaken(pres[k] if pres is not None else None, mistakes.get(name))
                for k, name in enumerate(names)
            )
            deployed = dataclasses.replace(base, preprocessors=wrapped)
            try:
                ctx = build_context(
                    deployed,
                    sensitivity_samples=len(self.ctx.samples),
                    seed=self.inputs.request.seed,
                    cancel=self.cancel,
                    cache_dir=self.inputs.request.cache_dir,
                    cache_limit=self.inputs.request.cache_limit_mb << 20,
                )
            except (ValueError, ArithmeticError, PtqInputError, AnalysisUnavailable) as exc:
                log.warning("could not emulate the deployed pipeline (%s): %s", mistake, exc)
                return None
            m = ctx.measure(
                self.settings_for(remedy), eval_limit=self.eval_limit, cancel=self.cancel
            )
        return measure_record(m)

    # ------------------------------------------------------------------ internals
    def _cosines(self, remedy: Remedy) -> np.ndarray:
        key = (input_changes(remedy), self.settings_for(remedy))
        hit = self._per_sample.get(key)
        if hit is None:
            from ptqtui.quant import metrics

            ctx = self._context(key[0], None)
            settings = key[1]
            scheme = ctx.scheme_for(settings)
            cal = ctx.calibration_for(settings, cancel=self.cancel)
            values = []
            for sample, ref in zip(ctx.samples, ctx.refs, strict=True):
                out = ctx.sim.run(sample, scheme, calibration=cal)
                values.append(
                    metrics.nanmean(metrics.compare(ref[n], out[n]).cosine for n in ctx.sim.outputs)
                )
            hit = np.asarray(values, np.float64)
            self._per_sample[key] = hit
        return hit

    def _context(
        self, changes: tuple[InputChange, ...], cancel: threading.Event | None
    ) -> SimContext:
        """The SimContext on the calibration data with `changes` applied (built on first use;
        the configured one and the latest `EXTRA_CONTEXTS` others are kept)."""
        hit = self._contexts.get(changes)
        if hit is not None:
            self._contexts[changes] = self._contexts.pop(changes)  # the most recent last
            return hit
        self._drop_contexts(EXTRA_CONTEXTS - 1)
        from ptqtui.analysis.context import AnalysisUnavailable, build_context

        fixed = self._inputs_with(changes)
        try:
            ctx = build_context(
                fixed,
                sensitivity_samples=len(self.ctx.samples),
                seed=fixed.request.seed,
                cancel=cancel or self.cancel,
                cache_dir=fixed.request.cache_dir,
                cache_limit=fixed.request.cache_limit_mb << 20,
            )
        except (ValueError, ArithmeticError, PtqInputError, AnalysisUnavailable) as exc:
            raise CannotEmulate(f"could not emulate {_describe(changes)}: {exc}") from exc
        # its what-ifs quantize the whole graph, so none starts from a float prefix: the ones
        # its references left (a 640 detector's 8 samples: 250 MiB) would only be held
        ctx.sim.prefixes.clear()
        ctx.sim.prefixes.cap = 0
        self._contexts[changes] = ctx
        return ctx

    def _drop_contexts(self, keep: int) -> None:
        """Forget all but the `keep` most recent emulation contexts (each holds a simulator, its
        prefix cache and an observation: a 640 detector's was hundreds of MB); their measures
        stay cached, a later what-if on the same fixes builds its context again."""
        extra = [k for k in self._contexts if k]
        for changes in extra[: max(0, len(extra) - keep)]:
            del self._contexts[changes]
        if len(extra) > keep:
            from ptqtui.memory import release

            release()

    def _inputs_with(self, changes: tuple[InputChange, ...]) -> LoadedInputs:
        """The inputs whose calibration source yields the samples with `changes` applied."""
        inputs = self.inputs
        if inputs is None or inputs.calibration is None:
            raise CannotEmulate("no calibration data to emulate input fixes on")
        source: Any = inputs.calibration
        for change in changes:
            if change.fix is InputFix.DROP_SAMPLES:
                kept = [g for g in source.files if not _matches(g, change.samples)]
                if len(kept) == len(source.files):
                    raise CannotEmulate(f"none of the samples to drop is in {source.dirs[0]}")
                source = _DroppedSource(source, kept)
                continue
            fixers = _fixers(inputs, change)
            if fixers is None:
                raise CannotEmulate(f"cannot emulate '{change.describe()}' on these inputs")
            source = _FixedSource(source, fixers)
        return dataclasses.replace(inputs, calibration=source)


def paired_se(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float | None:
    """Standard error of the per-sample difference b - a over the same samples (their common
    spread cancels); None below two finite differences."""
    diff = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    diff = diff[np.isfinite(diff)]
    if diff.size < 2:
        return None
    return float(np.std(diff, ddof=1) / math.sqrt(diff.size))


def _describe(changes: tuple[InputChange, ...]) -> str:
    return ", ".join(c.describe() for c in changes) or "no input fix"


# ---------------------------------------------------------------------- settings
OPTIMIZATION_ITEMS = {  # calibration_parameters.optimization item -> QuantSettings field
    "asymmetric": "asymmetric",
    "bias_correction": "bias_correction",
    "set_all_nodes_int16": "set_all_nodes_int16",
    "set_model_output_int8": "set_model_output_int8",
    "set_Softmax_input_int8": "softmax_input_int8",
    "set_Softmax_output_int8": "softmax_output_int8",
}


def settings_after(base: QuantSettings, remedy: Remedy) -> QuantSettings:
    """`base` with the remedy's config edits (those the simulator reads) and its settings
    delta applied, in that order."""
    out = base
    for edit in remedy.config:
        out = _edit_settings(out, edit)
    if remedy.settings is not None:
        out = remedy.settings.apply(out)
    return out


NORM_TYPE = "input_parameters.norm_type"
NO_PREPROCESS = "no_preprocess"


def input_changes(remedy: Remedy) -> tuple[InputChange, ...]:
    """The input changes a remedy makes on the data: its own, and the normalisation removed
    where a config edit sets norm_type no_preprocess (the same values reach the model)."""
    derived = tuple(
        InputChange(InputFix.REMOVE_NORMALISATION)
        for e in remedy.config
        if e.key == NORM_TYPE and e.new == NO_PREPROCESS and not e.remove
    )
    return remedy.inputs + tuple(c for c in derived if c not in remedy.inputs)


def simulates(edit: ConfigEdit) -> bool:
    """Whether the simulator reads the key `edit` changes."""
    group, _, name = edit.key.partition(".")
    if edit.rename:
        return False
    if group == "model_parameters":
        return name == "node_info" and edit.node is not None and bool(edit.fields)
    return group == "calibration_parameters" and name in (
        "calibration_type",
        "max_percentile",
        "per_channel",
        "optimization",
        "run_on_cpu",
    )


def _items(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    return [p.strip() for p in str(value).replace(";", ",").split(",") if p.strip()]


def _edit_settings(s: QuantSettings, edit: ConfigEdit) -> QuantSettings:
    if not simulates(edit):
        return s
    name = edit.key.partition(".")[2]
    new = edit.new
    if name == "node_info":
        fields = dict(edit.fields)
        on = fields.get("ON")
        dtype = fields.get("InputType")
        change = NodeChange(
            str(edit.node),
            Placement(on) if on in ("CPU", "BPU") else None,
            DType(dtype) if dtype in ("int8", "int16") else None,
        )
        return SettingsDelta(nodes=(change,)).apply(s)
    if name == "calibration_type":
        if edit.remove:
            return dataclasses.replace(s, calibration_type="default")
        if isinstance(new, str) and new in CALIBRATION_TYPES:
            return dataclasses.replace(s, calibration_type=new)
        return s
    if name == "max_percentile":
        if edit.remove:
            return dataclasses.replace(s, max_percentile=None)
        if isinstance(new, (int, float)) and not isinstance(new, bool) and 0.0 < new <= 1.0:
            return dataclasses.replace(s, max_percentile=None if new >= 1.0 else float(new))
        return s
    if name == "per_channel":
        if edit.remove:
            return dataclasses.replace(s, per_channel=False)
        return dataclasses.replace(s, per_channel=new) if isinstance(new, bool) else s
    if name == "run_on_cpu":
        if edit.append:
            return SettingsDelta(nodes=(NodeChange(str(new), Placement.CPU),)).apply(s)
        return s
    # optimization: the whole list set or removed, or one item added
    if edit.append:
        on = {OPTIMIZATION_ITEMS[i] for i in _items(new) if i in OPTIMIZATION_ITEMS}
        return dataclasses.replace(s, **dict.fromkeys(on, True))
    items = set() if edit.remove else set(_items(new))
    return dataclasses.replace(
        s, **{field: item in items for item, field in OPTIMIZATION_ITEMS.items()}
    )


# ---------------------------------------------------------------------- input fixes
Fixer = Callable[[np.ndarray], np.ndarray]


def _fixers(
    inputs: LoadedInputs, change: InputChange, *, inverse: bool = False
) -> dict[str, Fixer] | None:
    """Per calibration input name, the function that undoes the mistake `change` fixes
    (with `inverse`, the one that makes it); None when it cannot be emulated here."""
    out: dict[str, Fixer] = {}
    fix = change.fix
    for spec, lay in zip(inputs.specs, inputs.layouts, strict=True):
        if change.input is not None and lay.name != change.input:
            continue
        axis = 3 if lay.layout == "NHWC" else 1
        shape = lay.shape
        if fix is InputFix.SWAP_CHANNELS:
            if len(shape) != 4 or shape[axis] != 3:
                continue
            out[lay.name] = lambda x, a=axis: np.flip(np.asarray(x), axis=a).copy()
        elif fix in (InputFix.REMOVE_NORMALISATION, InputFix.ADD_NORMALISATION):
            if spec.mean is None and spec.scale is None:
                continue
            redo = (fix is InputFix.ADD_NORMALISATION) != inverse
            out[lay.name] = _normaliser(spec.mean, spec.scale, axis, len(shape), redo)
        elif fix in (InputFix.SCALE_X255, InputFix.SCALE_DIV255):
            factor = 255.0 if (fix is InputFix.SCALE_X255) != inverse else 1 / 255.0
            out[lay.name] = lambda x, f=factor: np.asarray(x, np.float32) * f
        elif fix in (InputFix.READ_NHWC, InputFix.READ_NCHW):
            if len(shape) != 4:
                continue
            if fix is InputFix.READ_NHWC and lay.layout == "NCHW":
                n, c, h, w = shape
                hwc, chw = (n, h, w, c), shape
            elif fix is InputFix.READ_NCHW and lay.layout == "NHWC":
                n, h, w, c = shape
                hwc, chw = shape, (n, c, h, w)
            else:
                continue
            out[lay.name] = _relayout(fix, hwc, chw, shape, inverse)
        else:
            return None
    return out or None


def _relayout(
    fix: InputFix,
    hwc: tuple[int, ...],
    chw: tuple[int, ...],
    shape: tuple[int, ...],
    inverse: bool,
) -> Fixer:
    """READ_NHWC: NHWC bytes read as NCHW (`shape` NCHW) read back as written; READ_NCHW the
    reverse. `inverse` makes the mistake instead."""
    if fix is InputFix.READ_NHWC:
        if inverse:  # NCHW data written as HWC bytes, read back as CHW
            return lambda x: np.asarray(x).transpose(0, 2, 3, 1).reshape(shape).copy()
        return lambda x: np.asarray(x).reshape(hwc).transpose(0, 3, 1, 2).copy()
    if inverse:  # NHWC data written as CHW bytes, read back as HWC
        return lambda x: np.asarray(x).transpose(0, 3, 1, 2).reshape(shape).copy()
    return lambda x: np.asarray(x).reshape(chw).transpose(0, 2, 3, 1).copy()


def _normaliser(
    mean: tuple[float, ...] | None,
    scale: tuple[float, ...] | None,
    axis: int,
    ndim: int,
    redo: bool,
) -> Fixer:
    """Undo `(x - mean) * scale` (or, with `redo`, apply it)."""
    m = np.asarray(mean if mean else (0.0,), np.float32)
    s = np.asarray(scale if scale else (1.0,), np.float32)
    if m.size > 1:
        shape = [1] * ndim
        shape[axis] = m.size
        m = m.reshape(shape)
    if s.size > 1:
        shape_s = [1] * ndim
        shape_s[axis] = s.size
        s = s.reshape(shape_s)

    def undo(x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float32) / s + m).astype(np.float32)

    def apply(x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float32) - m) * s).astype(np.float32)

    return apply if redo else undo


def _matches(group: tuple[Any, ...], names: tuple[str, ...]) -> bool:
    return any(p.name in names or str(p) in names for p in group)


def _dropped(inputs: LoadedInputs, change: InputChange) -> list[Any]:
    source = inputs.calibration
    if source is None:
        return []
    return [g for g in source.files if _matches(g, change.samples)]


class _Mistaken:
    """A preprocessor that first makes the pipeline's mistake on the data."""

    def __init__(self, pre: Any, mistake: Fixer | None) -> None:
        self.pre = pre
        self.mistake = mistake

    def __call__(self, data: np.ndarray) -> np.ndarray:
        x = self.mistake(data) if self.mistake is not None else data
        return self.pre(x) if self.pre is not None else np.asarray(x, np.float32)


class _FixedSource:
    """A calibration source whose samples come out with a fix applied (everything else is
    the wrapped source's)."""

    def __init__(self, source: Any, fixers: dict[str, Fixer]) -> None:
        self._source = source
        self._fixers = fixers

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    def __len__(self) -> int:
        return len(self._source)

    def __iter__(self) -> Iterator[Any]:
        return self.iter_samples()

    def _fix(self, sample: Any) -> Any:
        arrays = {
            k: (self._fixers[k](v) if k in self._fixers else v) for k, v in sample.arrays.items()
        }
        return dataclasses.replace(sample, arrays=arrays)

    def iter_samples(self, limit: int | None = None) -> Iterator[Any]:
        for sample in self._source.iter_samples(limit):
            yield self._fix(sample)

    def read(self, index: int) -> Any:
        return self._fix(self._source.read(index))


class _DroppedSource:
    """A calibration source without some of its samples (matched by file name)."""

    def __init__(self, source: Any, kept: list[Any]) -> None:
        self._source = source
        self._kept = kept
        self._keep = set(map(tuple, kept))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    @property
    def files(self) -> list[Any]:
        return self._kept

    def __len__(self) -> int:
        return len(self._kept)

    def __iter__(self) -> Iterator[Any]:
        return self.iter_samples()

    def iter_samples(self, limit: int | None = None) -> Iterator[Any]:
        count = 0
        for sample in self._source.iter_samples():
            if limit is not None and count >= limit:
                return
            if tuple(sample.files) in self._keep:
                count += 1
                yield sample

    def read(self, index: int) -> Any:
        return self._source.read(self._source.files.index(self._kept[index]))
