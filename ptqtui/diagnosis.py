"""`diagnose()` / `run_diagnosis()` and the `Diagnosis` every front end renders (versioned JSON
both ways)."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ptqtui import __version__
from ptqtui.advise.results import Plan
from ptqtui.analysis.converter import ConverterEvidence
from ptqtui.analysis.results import Analysis, AnalysisStage, SampleThumbnail
from ptqtui.budget import NOT_MEASURED, BudgetRecord, Deadline, OutOfTime
from ptqtui.check.findings import Finding, Severity
from ptqtui.errors import PtqInputError
from ptqtui.jsoncodec import decode as _decode
from ptqtui.jsoncodec import encode as _encode
from ptqtui.progress import ProgressCallback, check_cancel, report
from ptqtui.request import Request

if typing.TYPE_CHECKING:  # the records load fast (ptqtui view); the pipeline only when it runs
    from ptqtui.analysis.context import SimContext
    from ptqtui.analysis.whatif import WhatIf
    from ptqtui.check.context import Context
    from ptqtui.check.engine import RuleRun
    from ptqtui.check.registry import Rule
    from ptqtui.inputs.resolve import LoadedInputs

SCHEMA = "ptqtui.diagnosis/2"  # /2: findings carry a typed `remedy`; `yaml_change` is gone
READABLE = ("ptqtui.diagnosis/1", SCHEMA)  # /1 reads as /2 without remedies (old fields dropped)


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
    converter: ConverterEvidence | None = None  # the converter's log beside the simulator
    thumbnails: tuple[SampleThumbnail, ...] = ()  # samples findings point at, small PNGs
    budget: BudgetRecord | None = None  # --time-budget: its floor and what it left out

    def findings_at_least(self, severity: Severity) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity.at_least(severity))

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **_encode(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Diagnosis:
        """Read back what `to_json` wrote (or a /1 document); raises ValueError on anything
        else."""
        if not isinstance(data, dict) or data.get("schema") not in READABLE:
            found = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not a {' or '.join(READABLE)} document (schema: {found!r})")
        body = {k: v for k, v in data.items() if k != "schema"}
        try:
            return _decode(cls, body)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed {SCHEMA} document: {exc}") from None


@dataclass(frozen=True, slots=True)
class DiagnosisRun:
    """What one run hands a front end: the Diagnosis, and the what-if service it measured
    with (None when the simulator did not run), for what-ifs after the diagnosis."""

    diagnosis: Diagnosis
    whatif: WhatIf | None = None


@dataclass(frozen=True, slots=True)
class Partial:
    """What a running diagnosis knows so far: the summary, the findings of the rules that need
    no simulation, the analyses finished; `pending` the analyses still to come (then the
    rules that need them, and the plan)."""

    diagnosis: Diagnosis
    pending: tuple[AnalysisStage, ...]


PartialCallback = Callable[[Partial], None]
PENDING = "being measured"  # why a rule waits, in a partial result
ANALYSIS_SHARE = 0.75  # of a --time-budget: the analyses; the rules and the plan the rest
MIN_PLAN_SECONDS = 0.001  # the plan's budget when nothing is left: no what-if fits


def diagnose(
    request: Request,
    rules: Sequence[Rule] | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Diagnosis:
    """Load the inputs, simulate, run the rules (default: every installed one), plan."""
    return run_diagnosis(request, rules, progress=progress, cancel=cancel).diagnosis


def run_diagnosis(
    request: Request,
    rules: Sequence[Rule] | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    on_partial: PartialCallback | None = None,
) -> DiagnosisRun:
    """`diagnose`, and the what-if service (over the simulator the analyses calibrated) that
    measured the plan, so a front end re-measures what-ifs without building it again.

    `on_partial` receives results as they come: the summary and the findings that need no
    simulation first, then the Diagnosis again as each analysis finishes. A `--time-budget`
    counts from here: those rules run first, the analyses take ANALYSIS_SHARE of what is left,
    the plan's what-ifs what remains after the rules that need the simulation.
    """
    from ptqtui.check.registry import load_rules
    from ptqtui.inputs.resolve import load_inputs

    deadline = (
        None
        if request.time_budget is None
        else Deadline(request.time_budget, since=request.budget_from)
    )
    if rules is None:
        rules = load_rules(request.rule_dirs)
    report(progress, "loading inputs", 0, 1)
    inputs = load_inputs(request)
    check_cancel(cancel)
    report(progress, "loading inputs", 1, 1)
    early = None
    if on_partial is not None or deadline is not None:  # the budget counts their time too
        early = _early(inputs, rules, on_partial, progress, cancel, deadline)
    analysis_budget = None
    if deadline is not None:
        analysis_budget = max(0.01, ANALYSIS_SHARE * deadline.left())
    analysis, sim, unavailable = _analyse(
        inputs, progress, cancel, analysis_budget, _on_stage(early, on_partial), deadline
    )
    if request.check_backend and analysis is not None and sim is not None:
        report(progress, "backend check", 0, 1)
        analysis = dataclasses.replace(analysis, backend=sim.backend_record())
        report(progress, "backend check", 1, 1)
    missing = {} if unavailable is None else {"analysis": unavailable}
    return conclude(
        inputs,
        analysis,
        sim,
        rules,
        missing,
        progress=progress,
        cancel=cancel,
        deadline=deadline,
        facts=early[1] if early is not None else None,
    )


def _early(
    inputs: LoadedInputs,
    rules: Sequence[Rule],
    on_partial: PartialCallback | None,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    deadline: Deadline | None = None,
) -> tuple[Diagnosis, Context]:
    """The summary and the findings of the rules that need no simulation, handed on at once;
    the context keeps their facts for the final run of the rules."""
    from ptqtui.check.context import Context
    from ptqtui.check.engine import run_rules

    runs = "analysis" not in inputs.missing  # else the inputs say why it will not
    waiting = {"analysis": PENDING, "sim": PENDING} if runs else {}
    context = Context.from_inputs(inputs, missing=waiting)
    rule_run = run_rules(context, rules, progress=progress, cancel=cancel, deadline=deadline)
    diagnosis = summarise(inputs, rule_run)
    pending = tuple(AnalysisStage) if runs else ()
    if on_partial is not None:
        on_partial(Partial(diagnosis, pending))
    return diagnosis, context


def _on_stage(
    early: tuple[Diagnosis, Context] | None, on_partial: PartialCallback | None
) -> Callable[[AnalysisStage, Analysis], None] | None:
    """The analyses' per-stage callback: each stage's Analysis so far as a Partial."""
    if early is None or on_partial is None:
        return None
    diagnosis = early[0]

    def on_stage(stage: AnalysisStage, analysis: Analysis) -> None:
        on_partial(Partial(dataclasses.replace(diagnosis, analysis=analysis), analysis.pending))

    return on_stage


def conclude(
    inputs: LoadedInputs,
    analysis: Analysis | None,
    sim: SimContext | None,
    rules: Sequence[Rule],
    missing: dict[str, str],
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    deadline: Deadline | None = None,
    facts: Context | None = None,
) -> DiagnosisRun:
    """What follows the simulation: the rules, the plan measured on the what-if service, the
    converter's table, the thumbnails, and the Diagnosis that holds them. `deadline` (default:
    the request's time budget from now) is checked by every measurement here: the rules'
    what-ifs, the plan's, the converter's thresholds, the thumbnails; `facts`: a context whose
    facts the rules reuse."""
    if deadline is None and inputs.request.time_budget is not None:
        deadline = Deadline(inputs.request.time_budget, since=inputs.request.budget_from)
    if sim is not None:
        sim.deadline = deadline
    try:
        return _conclude(inputs, analysis, sim, rules, missing, progress, cancel, deadline, facts)
    finally:
        if sim is not None:
            sim.deadline = None  # what-ifs after the diagnosis (the TUI's) are the user's time


def _conclude(
    inputs: LoadedInputs,
    analysis: Analysis | None,
    sim: SimContext | None,
    rules: Sequence[Rule],
    missing: dict[str, str],
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    deadline: Deadline | None,
    facts: Context | None,
) -> DiagnosisRun:
    from ptqtui.check.context import Context
    from ptqtui.check.engine import run_rules

    if deadline is not None and analysis is not None:
        _time_passes(deadline, analysis)
    context = Context.from_inputs(inputs, analysis=analysis, sim=sim, missing=missing)
    if facts is not None:
        context.adopt_facts(facts)
    rule_run = run_rules(context, rules, progress=progress, cancel=cancel, deadline=deadline)
    whatif = None
    if sim is not None:
        from ptqtui.analysis.whatif import WhatIf

        whatif = WhatIf(sim, inputs, cancel=cancel)
    categories = {r.code: r.info.category for r in rules}
    budget = inputs.request.time_budget
    if deadline is not None:
        # once anything was not measured, the plan's what-ifs would choose on missing
        # measurements: it measures nothing more (its steps say "not measured")
        budget = MIN_PLAN_SECONDS if deadline.not_measured else deadline.left()
        budget = max(MIN_PLAN_SECONDS, budget)
    plan = _plan(inputs, rule_run, categories, analysis, whatif, budget, progress, cancel)
    if deadline is not None and plan is not None and plan.cut_short:
        deadline.missed("the plan's tuning steps")
    converter = None
    if inputs.mapper_log is not None:
        from ptqtui.analysis.converter import compare

        converter = compare(inputs.mapper_log, analysis)
        try:
            converter = _with_workdir_thresholds(converter, inputs, sim)
        except OutOfTime as out:
            inputs.notes.append(f"converter thresholds {NOT_MEASURED}")
            if deadline is not None:
                deadline.missed(out.what.replace("what-if", "converter thresholds"))
    from ptqtui.analysis.thumbnails import sample_thumbnails  # lazy: numpy, cv2

    diagnosis = dataclasses.replace(
        summarise(inputs, rule_run, missing=missing),
        analysis=analysis,
        plan=plan,
        converter=converter,
        thumbnails=sample_thumbnails(rule_run.findings, inputs, deadline),
        budget=deadline.record() if deadline is not None else None,
    )
    return DiagnosisRun(diagnosis, whatif)


# The analyses whose passes are what a what-if runs (batched fake-quant passes): the pass cost
# the later consumers of the budget estimate with (calibration and the node table, which
# exposes every tensor, cost more a pass)
WHATIF_LIKE = (  # the task metric's passes are timed by the analysis itself
    AnalysisStage.SENSITIVITY,
    AnalysisStage.CURVE,
    AnalysisStage.SWEEP,
)


def _time_passes(deadline: Deadline, analysis: Analysis) -> None:
    """Re-estimate the pass cost from the analyses' passes actually timed."""
    for t in analysis.timings:
        if t.stage in {s.value for s in WHATIF_LIKE} and t.passes:
            deadline.timed(t.passes, t.seconds)


def _with_workdir_thresholds(converter: Any, inputs: LoadedInputs, sim: Any) -> Any:
    """The converter's own thresholds (its working_dir's *_calibrated_model.onnx) measured in
    the simulator; said in the notes when the file cannot be read."""
    from ptqtui.analysis.converter import measure_converter_thresholds
    from ptqtui.inputs.workdir import find_artifacts

    config = inputs.config
    if sim is None or config is None or config.working_dir is None:
        return converter
    prefix = config.get("model_parameters.output_model_file_prefix")
    found = find_artifacts(config.working_dir, str(prefix) if prefix else None)
    if found is None or found.calibrated is None:
        return converter
    try:
        return measure_converter_thresholds(converter, sim, found.calibrated)
    except PtqInputError as exc:
        inputs.notes.append(f"converter thresholds not read: {exc.one_line()}")
        return converter


def _plan(
    inputs: LoadedInputs,
    rule_run: RuleRun,
    categories: Mapping[str, str],
    analysis: Analysis | None,
    whatif: WhatIf | None,
    time_budget: float | None,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> Plan | None:
    """The ordered steps, measured on the simulator where it ran."""
    from ptqtui.advise.plan import build_plan

    check_cancel(cancel)
    return build_plan(
        rule_run.findings,
        analysis,
        whatif,
        inputs.config,
        categories=categories,
        target_cosine=inputs.request.target_cosine,
        time_budget=time_budget,
        progress=progress,
        cancel=cancel,
    )


def _analyse(
    inputs: LoadedInputs,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    time_budget: float | None = None,
    on_stage: Callable[[AnalysisStage, Analysis], None] | None = None,
    deadline: Deadline | None = None,
) -> tuple[Analysis | None, SimContext | None, str | None]:
    """The simulator's analyses and its context, or why they cannot run (shown as
    Skipped("analysis", reason); rules needing the analysis are skipped)."""
    from ptqtui.analysis.run import AnalysisUnavailable, run_analysis  # lazy: onnx, numpy

    request = inputs.request
    if "analysis" in inputs.missing:  # the inputs already say why it cannot run
        return None, None, inputs.missing["analysis"]
    try:
        analysis, sim = run_analysis(
            inputs,
            sensitivity_samples=request.sensitivity_samples,
            time_budget=time_budget,
            seed=request.seed,
            progress=progress,
            cancel=cancel,
            cache_dir=request.cache_dir,
            cache_limit=request.cache_limit_mb << 20,
            on_stage=on_stage,
            deadline=deadline,
        )
    except AnalysisUnavailable as exc:
        return None, None, str(exc)
    except PtqInputError as exc:
        return None, None, exc.one_line()
    return analysis, sim, None


def summarise(
    inputs: LoadedInputs,
    rule_run: RuleRun | None = None,
    *,
    missing: Mapping[str, str] | None = None,
) -> Diagnosis:
    """The Diagnosis of the loaded inputs and the rules' findings; `missing` adds facts that
    could not be had beyond the inputs' own (fact -> why)."""
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
    unavailable = {**inputs.missing, **(missing or {})}
    skipped = tuple(Skipped(what, why) for what, why in unavailable.items())
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
