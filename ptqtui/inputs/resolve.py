"""Put config, flags and model together: one `InputSpec` per model input, samples, eval set."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ptqtui.errors import PtqInputError, UsageError
from ptqtui.inputs.config import MapperConfig, load_config
from ptqtui.inputs.data import EvalSet, InputLayout, SampleSource, load_eval_set, open_samples
from ptqtui.inputs.mapper_log import MapperLog, find_mapper_log, load_mapper_log
from ptqtui.inputs.model import ModelGraph, TensorInfo, load_model
from ptqtui.inputs.preprocess import Preprocessor
from ptqtui.inputs.task_labels import TaskLabels, load_task_labels
from ptqtui.request import InputFlags, Request

from .config import InputSpec


@dataclass
class LoadedInputs:
    request: Request
    config: MapperConfig | None
    graph: ModelGraph
    specs: tuple[InputSpec, ...]  # one per model input, in the model's order
    layouts: tuple[InputLayout, ...]
    calibration: SampleSource | None
    eval_set: EvalSet | None
    preprocessors: tuple[Preprocessor, ...] | None
    notes: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # fact -> why it is unavailable
    mapper_log: MapperLog | None = None  # the converter's log, given or found
    task_labels: TaskLabels | None = None  # --eval-dir with boxes, masks or text labels


def load_inputs(request: Request) -> LoadedInputs:
    """Load everything a diagnosis reads; raises PtqInputError for unreadable inputs only."""
    config = load_config(request.config) if request.config else None
    model_path = _model_path(request, config)
    graph = load_model(model_path)
    notes: list[str] = []
    missing: dict[str, str] = {}
    specs = _specs_for_model(graph, config, request.flags, notes)
    layouts = tuple(_layout(spec, tensor) for spec, tensor in zip(specs, graph.inputs, strict=True))
    calibration = _open_calibration(request, specs, layouts, missing)
    # boxes, masks or text lines (docs/tasks.md "With labels"); else classification labels
    task_labels = load_task_labels(request.eval_dir) if request.eval_dir else None
    eval_set = load_eval_set(request.eval_dir) if request.eval_dir and not task_labels else None
    if eval_set is None and task_labels is None:
        missing["eval_set"] = "no --eval-dir with labelled images"
    preprocessors = _preprocessors(specs, layouts, config, missing)
    mapper_log = _mapper_log(request, config, notes, missing)
    conflict = _shape_conflict(layouts, graph)
    if conflict is not None:
        # the converter refuses such a config (PTQ202 says so); feeding the samples to the
        # model would only end in onnxruntime's own error
        preprocessors = None
        missing["preprocessing"] = missing["analysis"] = conflict
    return LoadedInputs(
        request,
        config,
        graph,
        specs,
        layouts,
        calibration,
        eval_set,
        preprocessors,
        notes,
        missing,
        mapper_log,
        task_labels,
    )


def _mapper_log(
    request: Request, config: MapperConfig | None, notes: list[str], missing: dict[str, str]
) -> MapperLog | None:
    """--mapper-log (unreadable: exit 2), else the log next to the config or in its working_dir."""
    if request.mapper_log is not None:
        return load_mapper_log(request.mapper_log)
    found = find_mapper_log(config.path, config.working_dir) if config is not None else None
    if found is None:
        missing["mapper_log"] = "no converter log (--mapper-log hb_mapper_makertbin.log)"
        return None
    try:
        log = load_mapper_log(found)
    except PtqInputError as exc:
        notes.append(f"converter log {found} found but not read: {exc.problem}")
        missing["mapper_log"] = f"the converter log found ({found}) is not readable"
        return None
    notes.append(f"read the converter's log found at {found} (--mapper-log to choose another)")
    return log


def _model_path(request: Request, config: MapperConfig | None) -> Path:
    if request.model is not None:
        return request.model
    if config is not None and config.model_path is not None:
        return config.model_path
    if config is not None and config.get("model_parameters.caffe_model"):
        raise PtqInputError(
            config.path.name,
            "names a Caffe model; ptqtui reads ONNX models: give MODEL.onnx on the command line",
            line=config.line_of("model_parameters.caffe_model"),
        )
    if config is not None:
        raise UsageError(
            f"{config.path.name} names no onnx_model; give MODEL.onnx on the command line"
        )
    raise UsageError(
        "give MODEL.onnx, or -c CONFIG.yaml whose model_parameters.onnx_model names it"
    )


def _specs_for_model(
    graph: ModelGraph, config: MapperConfig | None, flags: InputFlags, notes: list[str]
) -> tuple[InputSpec, ...]:
    """Match config inputs to model inputs by name (or order), then apply the flags."""
    configured = list(config.inputs) if config is not None else []
    specs = []
    by_name = {s.name: s for s in configured if s.name}
    for i, tensor in enumerate(graph.inputs):
        spec = by_name.get(tensor.name)
        if spec is None and i < len(configured) and not configured[i].name:
            spec = configured[i]
        if spec is None and i < len(configured) and len(configured) == len(graph.inputs):
            spec = configured[i]
        if spec is None:
            spec = InputSpec(index=i, name=tensor.name)
        spec = replace(spec, index=i, name=tensor.name)
        specs.append(_apply_flags(spec, flags, tensor, notes, has_config=config is not None))
    return tuple(specs)


def _apply_flags(
    spec: InputSpec, flags: InputFlags, tensor: TensorInfo, notes: list[str], *, has_config: bool
) -> InputSpec:
    changes: dict[str, object] = {}
    pairs = {
        "type_train": flags.input_type_train,
        "type_rt": flags.input_type_rt,
        "layout_train": flags.layout,
        "mean": flags.mean,
        "scale": flags.scale,
        "shape": flags.input_shape,
    }
    for name, value in pairs.items():
        if value is not None:
            if has_config and getattr(spec, name) not in (None, value):
                notes.append(f"--{name.replace('_', '-')} overrides the config for {tensor.name}")
            changes[name] = value
    if flags.cal_data_type is not None:
        changes["cal_data_type"] = flags.cal_data_type
        changes["cal_dtype"] = flags.cal_data_type
    if not has_config and (flags.mean is not None or flags.scale is not None):
        has_mean, has_scale = flags.mean is not None, flags.scale is not None
        changes["norm_type"] = (
            "data_mean_and_scale"
            if has_mean and has_scale
            else ("data_mean" if has_mean else "data_scale")
        )
    spec = replace(spec, **changes)
    if spec.layout_train is None and tensor.layout is not None:
        spec = replace(spec, layout_train=tensor.layout)
    if not has_config and spec.type_train is None:
        spec = replace(spec, type_train="featuremap" if tensor.layout is None else "rgb")
        notes.append(
            f"input {tensor.name}: no config and no --input-type-train; assumed {spec.type_train}"
        )
    if not has_config and spec.norm_type is None:
        spec = replace(spec, norm_type="no_preprocess")
    if not has_config and spec.cal_data_type is None and tensor.layout is None:
        spec = replace(spec, cal_dtype="float32")
    return spec


def _layout(spec: InputSpec, tensor: TensorInfo) -> InputLayout:
    shape = _static_shape(spec, tensor)
    return InputLayout(
        name=tensor.name,
        dtype=spec.cal_dtype,
        shape=shape,
        layout=spec.layout_train or tensor.layout,
        color=spec.type_train,
    )


def _static_shape(spec: InputSpec, tensor: TensorInfo) -> tuple[int, ...]:
    """The shape of one calibration file: input_shape, else the model's (batch 1 if dynamic)."""
    if spec.shape is not None:
        dims = list(spec.shape)
        model_shape = tensor.shape or ()
        for i, d in enumerate(dims):
            if d is None:
                fixed = model_shape[i] if i < len(model_shape) else None
                dims[i] = fixed if isinstance(fixed, int) and fixed > 0 else (1 if i == 0 else None)
        if all(isinstance(d, int) for d in dims):
            return tuple(int(d) for d in dims)  # type: ignore[arg-type]
    # A dynamic spatial size cannot be guessed: () tells the loader that .bin files
    # cannot be shaped, and it records them as mismatches instead.
    return tensor.static_shape or ()


def _shape_conflict(layouts: tuple[InputLayout, ...], graph: ModelGraph) -> str | None:
    """Why samples of the configured shape cannot be fed to the model, or None."""
    for lay, tensor in zip(layouts, graph.inputs, strict=True):
        model = tensor.shape
        if not lay.shape or model is None:
            continue
        fixed = [d if isinstance(d, int) and d > 0 else None for d in model]
        if len(lay.shape) != len(fixed) or any(
            m is not None and m != d for d, m in zip(lay.shape, fixed, strict=True)
        ):
            mine = "x".join(map(str, lay.shape))
            theirs = "x".join("?" if d is None else str(d) for d in fixed)
            return (
                f"input {lay.name}: samples of shape {mine} ({lay.layout or 'layout unknown'}) "
                f"do not fit the model's input {theirs}; correct input_shape or "
                "input_layout_train (PTQ202)"
            )
    return None


def _open_calibration(
    request: Request,
    specs: tuple[InputSpec, ...],
    layouts: tuple[InputLayout, ...],
    missing: dict[str, str],
) -> SampleSource | None:
    if request.cal_dirs:
        dirs = request.cal_dirs
    else:
        dirs = tuple(s.cal_data_dir for s in specs if s.cal_data_dir is not None)
        if len(dirs) != len(specs):
            dirs = ()
    if not dirs:
        missing["calibration"] = "no calibration data: give --cal-dir or cal_data_dir in the config"
        return None
    for lay in layouts:
        if not lay.shape:
            raise PtqInputError(
                None,
                f"input {lay.name} has a dynamic shape; give input_shape in the config or "
                "--input-shape (e.g. 1x3x224x224) to read calibration files",
            )
    return open_samples(dirs, layouts, request.read_mode)


def _preprocessors(
    specs: tuple[InputSpec, ...],
    layouts: tuple[InputLayout, ...],
    config: MapperConfig | None,
    missing: dict[str, str],
) -> tuple[Preprocessor, ...] | None:
    out = []
    for spec, lay in zip(specs, layouts, strict=True):
        channels = None
        if len(lay.shape) == 4:
            channels = lay.shape[3] if lay.layout == "NHWC" else lay.shape[1]
        try:
            out.append(
                Preprocessor(
                    spec.name or lay.name,
                    spec.type_train,
                    lay.layout,
                    spec.norm_type,
                    spec.mean,
                    spec.scale,
                    channels,
                )
            )
        except PtqInputError as exc:
            where = config.path.name if config is not None else "flags"
            missing["preprocessing"] = f"{where}: {exc.problem}"
            return None
    return tuple(out)
