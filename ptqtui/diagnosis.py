"""`diagnose()` and the `Diagnosis` every front end renders (versioned JSON both ways)."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import math
import threading
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ptqtui import __version__
from ptqtui.advise.results import Plan
from ptqtui.analysis.results import Analysis
from ptqtui.check.findings import Finding, Severity
from ptqtui.errors import PtqInputError
from ptqtui.progress import ProgressCallback, check_cancel, report
from ptqtui.request import Request

if typing.TYPE_CHECKING:  # the records load fast (ptqtui view); the pipeline only when it runs
    from ptqtui.check.engine import RuleRun
    from ptqtui.check.registry import Rule
    from ptqtui.inputs.resolve import LoadedInputs

SCHEMA = "ptqtui.diagnosis/1"


@dataclass(frozen=True, slots=True)
class FileRef:
    role: str  # "model", "config", "calibration", "evaluation"
    path: str
    sha256: str | None = None  # files only
    detail: str | None = None  # "100 .bin files", "10 classes, 300 images"


@dataclass(frozen=True, slots=True)
class InputSummary:
    name: str
    shape: str  # "1x3x64x64"
    dtype: str
    layout: str | None
    type_train: str | None
    type_rt: str | None
    norm_type: str | None
    mean: tuple[float, ...] | None
    scale: tuple[float, ...] | None
    cal_dtype: str


@dataclass(frozen=True, slots=True)
class ModelSummary:
    name: str
    opset: int
    inputs: tuple[InputSummary, ...]
    outputs: tuple[str, ...]
    nodes: int
    quantized_nodes: int
    op_counts: tuple[tuple[str, int], ...]  # most frequent first
    normalisation: tuple[str, ...]  # "images: Sub(mean) then Div(std) = mean 123.7 ..., scale ..."


@dataclass(frozen=True, slots=True)
class DataSummary:
    directory: str
    samples: int
    kinds: tuple[str, ...]
    skipped: tuple[str, ...]  # "notes.txt: not a sample file (.txt)"
    size_mismatches: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Skipped:
    what: str  # rule code or analysis name
    reason: str


@dataclass(frozen=True)
class Diagnosis:
    version: str
    seed: int
    title: str | None
    files: tuple[FileRef, ...]
    model: ModelSummary
    config_generation: str | None
    calibration: DataSummary | None
    evaluation: DataSummary | None
    findings: tuple[Finding, ...]
    skipped: tuple[Skipped, ...]
    notes: tuple[str, ...] = field(default=())
    analysis: Analysis | None = None  # what the simulator measured
    plan: Plan | None = None  # the ordered steps, with their measured effects

    def findings_at_least(self, severity: Severity) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity.at_least(severity))

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **_encode(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Diagnosis:
        """Read back what `to_json` wrote; raises ValueError on anything else."""
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not a {SCHEMA} document (schema: {found!r})")
        body = {k: v for k, v in data.items() if k != "schema"}
        try:
            return _decode(cls, body)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed {SCHEMA} document: {exc}") from None


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _decode(kind: Any, value: Any) -> Any:
    """Rebuild `kind` (a dataclass, Enum, tuple[...] or Optional) from JSON data."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if value is None:
            return None
        return _decode(options[0], value)
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in value)
        return tuple(_decode(a, v) for a, v in zip(args, value, strict=True))
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        known = {f.name for f in dataclasses.fields(kind)}
        return kind(**{k: _decode(hints[k], v) for k, v in value.items() if k in known})
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(value)
    if kind is float:
        if value is None:
            return math.nan
        return float(value)
    return value


def diagnose(
    request: Request,
    rules: Sequence[Rule] | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    on_sim: Callable[[Any], None] | None = None,
) -> Diagnosis:
    """Load the inputs, simulate, run the rules (default: every installed one), plan.

    `on_sim` receives the simulator context (analysis.context.SimContext) so a front end can
    re-measure what-ifs after the diagnosis without building it again.
    """
    from ptqtui.check.context import Context
    from ptqtui.check.engine import run_rules
    from ptqtui.check.registry import load_rules
    from ptqtui.inputs.resolve import load_inputs

    if rules is None:
        rules = load_rules(request.rule_dirs)
    report(progress, "loading inputs", 0, 1)
    inputs = load_inputs(request)
    check_cancel(cancel)
    report(progress, "loading inputs", 1, 1)
    # `_sim` (analysis.context.SimContext) re-measures what-ifs: for Context's `sim` fact
    analysis, sim = _analyse(inputs, progress, cancel)
    if request.check_backend and analysis is not None and sim is not None:
        report(progress, "backend check", 0, 1)
        analysis = dataclasses.replace(analysis, backend=sim.backend_record())
        report(progress, "backend check", 1, 1)
    if sim is not None and on_sim is not None:
        on_sim(sim)
    context = Context.from_inputs(inputs, analysis=analysis, sim=sim)
    rule_run = run_rules(context, rules, progress=progress, cancel=cancel)
    plan = _plan(inputs, rule_run, analysis, sim, progress, cancel)
    return dataclasses.replace(summarise(inputs, rule_run), analysis=analysis, plan=plan)


def _plan(
    inputs: LoadedInputs,
    rule_run: RuleRun,
    analysis: Analysis | None,
    sim: Any,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> Plan | None:
    """The ordered steps, measured on the simulator where it ran."""
    from ptqtui.advise.plan import plan_for_inputs

    check_cancel(cancel)
    return plan_for_inputs(
        rule_run.findings,
        analysis,
        sim,
        inputs,
        target_cosine=inputs.request.target_cosine,
        time_budget=inputs.request.time_budget,
        progress=progress,
        cancel=cancel,
    )


def _analyse(
    inputs: LoadedInputs, progress: ProgressCallback | None, cancel: threading.Event | None
) -> tuple[Analysis | None, Any]:
    """The simulator's analyses; when they cannot run, the reason goes to `inputs.missing`
    (shown as Skipped("analysis", reason), and rules needing the analysis are skipped)."""
    from ptqtui.analysis.run import AnalysisUnavailable, run_analysis  # lazy: onnx, numpy

    request = inputs.request
    try:
        return run_analysis(
            inputs,
            sensitivity_samples=request.sensitivity_samples,
            time_budget=request.time_budget,
            seed=request.seed,
            progress=progress,
            cancel=cancel,
        )
    except AnalysisUnavailable as exc:
        inputs.missing["analysis"] = str(exc)
    except PtqInputError as exc:
        inputs.missing["analysis"] = exc.one_line()
    return None, None


def summarise(inputs: LoadedInputs, rule_run: RuleRun | None = None) -> Diagnosis:
    graph = inputs.graph
    request = inputs.request
    files = [FileRef("model", str(graph.path), sha256_of(graph.path))]
    if inputs.config is not None:
        files.append(FileRef("config", str(inputs.config.path), sha256_of(inputs.config.path)))
    calibration = None
    if inputs.calibration is not None:
        source = inputs.calibration
        calibration = DataSummary(
            directory="; ".join(str(d) for d in source.dirs),
            samples=len(source),
            kinds=source.kinds,
            skipped=tuple(f"{i.file.name}: {i.problem}" for i in source.skipped),
            size_mismatches=tuple(m.describe() for m in source.mismatches),
        )
        files.append(FileRef("calibration", calibration.directory, None, f"{len(source)} samples"))
    evaluation = None
    if inputs.eval_set is not None:
        ev = inputs.eval_set
        evaluation = DataSummary(
            directory=str(ev.directory),
            samples=len(ev),
            kinds=(f"{len(ev.classes)} classes",),
            skipped=tuple(f"{i.file.name}: {i.problem}" for i in ev.skipped),
            size_mismatches=(),
        )
        files.append(
            FileRef(
                "evaluation",
                str(ev.directory),
                None,
                f"{len(ev)} images, {len(ev.classes)} classes",
            )
        )
    skipped = tuple(Skipped(what, why) for what, why in inputs.missing.items())
    if rule_run is not None:
        skipped += tuple(Skipped(s.code, s.reason) for s in rule_run.skipped)
    return Diagnosis(
        version=__version__,
        seed=request.seed,
        title=request.title,
        files=tuple(files),
        model=_model_summary(inputs),
        config_generation=inputs.config.generation if inputs.config else None,
        calibration=calibration,
        evaluation=evaluation,
        findings=rule_run.findings if rule_run is not None else (),
        skipped=skipped,
        notes=tuple(inputs.notes) + tuple(graph.notes),
    )


def _model_summary(inputs: LoadedInputs) -> ModelSummary:
    graph = inputs.graph
    counts: dict[str, int] = {}
    for n in graph.nodes:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    ins = tuple(
        InputSummary(
            name=t.name,
            shape="x".join(str(d) if d is not None else "?" for d in (t.shape or ())),
            dtype=t.dtype,
            layout=spec.layout_train or t.layout,
            type_train=spec.type_train,
            type_rt=spec.type_rt,
            norm_type=spec.norm_type,
            mean=spec.mean,
            scale=spec.scale,
            cal_dtype=spec.cal_dtype,
        )
        for t, spec in zip(graph.inputs, inputs.specs, strict=True)
    )
    norms = tuple(
        f"{n.input}: {' then '.join(s.op_type for s in n.steps)} "
        f"(mean {' '.join(f'{v:g}' for v in n.mean)}, scale {' '.join(f'{v:g}' for v in n.scale)})"
        for n in graph.normalisation
    )
    return ModelSummary(
        name=graph.path.name,
        opset=graph.opset,
        inputs=ins,
        outputs=tuple(o.name for o in graph.outputs),
        nodes=len(graph.nodes),
        quantized_nodes=len(graph.quantized_nodes),
        op_counts=tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        normalisation=norms,
    )


def sha256_of(path: Path, chunk: int = 1 << 20) -> str | None:
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
        return digest.hexdigest()
    except OSError:
        return None
