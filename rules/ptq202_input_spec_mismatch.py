"""PTQ202: the config's inputs (count, names, shape, layout, mean/scale values) vs the model."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from ptqtui.rules._remedies import edit

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.inputs.model import guess_image_layout
from ptqtui.remedy import ConfigEdit, Remedy

if TYPE_CHECKING:
    from ptqtui.check.context import Context
    from ptqtui.inputs.config import InputSpec, MapperConfig
    from ptqtui.inputs.model import ModelGraph, TensorInfo

RULE = RuleInfo(
    code="PTQ202",
    name="input-spec-mismatch",
    category="config",
    severity=Severity.MAJOR,
    title="The config's inputs do not match the model's (count, name, shape, layout, mean/scale)",
    why="The converter refuses the model, or reads calibration data and runtime frames with the "
    "wrong shape or layout, which scrambles every input the model sees.",
    fix="Make input_name, input_shape, input_layout_train and the number of mean_value/"
    "scale_value values agree with the model's inputs.",
    needs=("config",),
    example="[major] PTQ202 input_shape 1x3x224x224 of input images does not match the model's "
    "1x3x64x64 (mapper.yaml line 14)\n  change: input_parameters.input_shape: 1x3x224x224 -> "
    "1x3x64x64",
)

THREE_CHANNEL_TYPES = ("rgb", "bgr", "yuv444")  # input_type_train values with 3 channels
EVEN_SIZE_TYPES = ("nv12", "yuv444")  # runtime types that need even H and W (reference §1)


def check(ctx: Context) -> list[Finding]:
    config = ctx.config
    if config.generation != "makertbin":
        return []
    graph = ctx.maybe("graph")
    findings: list[Finding] = []
    pairs: list[tuple[InputSpec, TensorInfo | None]] = [(s, None) for s in config.inputs]
    if graph is not None:
        findings += _count_and_names(ctx, config, graph)
        pairs = _match(config, graph)
    for spec, tensor in pairs:
        findings += _spec_findings(ctx, config, spec, tensor)
    return findings


def _label(spec: InputSpec, tensor: TensorInfo | None) -> str:
    return tensor.name if tensor is not None else (spec.name or f"#{spec.index}")


def _fmt_shape(shape: tuple[object, ...] | None) -> str:
    if shape is None:
        return "?"
    return "x".join("?" if d is None or isinstance(d, str) else str(d) for d in shape)


def _count_and_names(ctx: Context, config: MapperConfig, graph: ModelGraph) -> list[Finding]:
    out = []
    model_names = [t.name for t in graph.inputs]
    named = [s.name for s in config.inputs if s.name]
    key = "input_parameters.input_name"
    for spec in config.inputs:
        name = spec.name
        if name and name not in model_names:
            close = difflib.get_close_matches(name, model_names, n=1, cutoff=0.5)
            hint = f"; closest: {close[0]}" if close else ""
            out.append(
                RULE.finding(
                    f"input_name {name!r} is not an input of {graph.path.name} "
                    f"(inputs: {', '.join(model_names)}){hint}",
                    Evidence("input name", name, ", ".join(model_names), config.where(key)),
                    fix="Use the model's input names, in the order of the other per-input keys.",
                    remedy=_remedy(_per_input_edit(ctx, config, key, spec, name, close[0]))
                    if close
                    else None,
                )
            )
    count = len(config.inputs)
    if count != len(model_names) and (named or count > 1 or len(model_names) > 1):
        out.append(
            RULE.finding(
                f"the config describes {count} input(s), {graph.path.name} has "
                f"{len(model_names)} ({', '.join(model_names)})",
                Evidence("number of inputs", str(count), str(len(model_names)), config.where(key)),
                fix="List every model input in input_name and give every per-input key one "
                "value per input, separated by ';'.",
            )
        )
    return out


def _match(config: MapperConfig, graph: ModelGraph) -> list[tuple[InputSpec, TensorInfo | None]]:
    by_name = {t.name: t for t in graph.inputs}
    pairs: list[tuple[InputSpec, TensorInfo | None]] = []
    for i, spec in enumerate(config.inputs):
        tensor = by_name.get(spec.name) if spec.name else None
        if tensor is None and not spec.name and i < len(graph.inputs):
            tensor = graph.inputs[i]
        pairs.append((spec, tensor))
    return pairs


def _channels(shape: tuple[int | None, ...] | None, layout: str | None) -> int | None:
    if shape is None or len(shape) != 4 or layout not in ("NCHW", "NHWC"):
        return None
    return shape[1] if layout == "NCHW" else shape[3]


def _spec_findings(
    ctx: Context, config: MapperConfig, spec: InputSpec, tensor: TensorInfo | None
) -> list[Finding]:
    out = []
    label = _label(spec, tensor)
    shape_key = "input_parameters.input_shape"
    layout_key = "input_parameters.input_layout_train"
    model_shape = tensor.shape if tensor is not None else None
    if spec.shape is not None and model_shape is not None:
        wrong = len(spec.shape) != len(model_shape) or any(
            isinstance(m, int) and m > 0 and c is not None and c != m
            for c, m in zip(spec.shape, model_shape, strict=False)
        )
        if wrong:
            out.append(
                RULE.finding(
                    f"input_shape {_fmt_shape(spec.shape)} of input {label} does not match the "
                    f"model's {_fmt_shape(model_shape)} ({config.where(shape_key)})",
                    Evidence(
                        f"shape of input {label}",
                        _fmt_shape(spec.shape),
                        _fmt_shape(model_shape),
                        config.where(shape_key),
                    ),
                    remedy=_remedy(_shape_edit(ctx, config, spec, model_shape)),
                )
            )
    model_layout = tensor.layout if tensor is not None else None
    if spec.layout_train and model_layout and spec.layout_train != model_layout:
        out.append(
            RULE.finding(
                f"input_layout_train {spec.layout_train} of input {label}, but the model's input "
                f"{_fmt_shape(model_shape)} is {model_layout}",
                Evidence(
                    f"layout of input {label}",
                    spec.layout_train,
                    model_layout,
                    config.where(layout_key),
                ),
                fix="input_layout_train is the layout of the model's input as trained; "
                "input_layout_rt is the runtime one.",
                remedy=_remedy(
                    _per_input_edit(ctx, config, layout_key, spec, spec.layout_train, model_layout)
                ),
            )
        )
    elif (
        spec.layout_train
        and spec.shape is not None
        and tensor is None
        and spec.type_train != "featuremap"  # a featuremap's layout cannot be guessed
    ):
        guessed = guess_image_layout(spec.shape)
        if guessed and guessed != spec.layout_train:
            out.append(
                RULE.finding(
                    f"input_shape {_fmt_shape(spec.shape)} of input {label} is {guessed}, but "
                    f"input_layout_train says {spec.layout_train}",
                    Evidence(
                        f"layout of input {label}",
                        spec.layout_train,
                        guessed,
                        config.where(layout_key),
                    ),
                )
            )
    shape = spec.shape if spec.shape is not None else _static(model_shape)
    layout = spec.layout_train or model_layout
    channels = _channels(shape, layout)
    if channels is not None:
        out += _channel_findings(config, spec, label, channels)
    if spec.type_rt in EVEN_SIZE_TYPES and shape is not None and len(shape) == 4:
        h, w = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
        if any(isinstance(d, int) and d % 2 for d in (h, w)):
            out.append(
                RULE.finding(
                    f"input {label} is {h}x{w}, but input_type_rt {spec.type_rt} needs an even "
                    "height and width",
                    Evidence(
                        f"size of input {label}",
                        f"{h}x{w}",
                        "even height and width",
                        config.where("input_parameters.input_type_rt"),
                    ),
                    fix="Resize the model input to even sizes or use input_type_rt rgb/bgr.",
                )
            )
    return out


def _static(shape: tuple[object, ...] | None) -> tuple[int | None, ...] | None:
    if shape is None:
        return None
    return tuple(d if isinstance(d, int) and d > 0 else None for d in shape)


def _channel_findings(
    config: MapperConfig, spec: InputSpec, label: str, channels: int
) -> list[Finding]:
    out = []
    for key, values in (
        ("input_parameters.mean_value", spec.mean),
        ("input_parameters.scale_value", spec.scale),
    ):
        if values is None or len(values) in (1, channels):
            continue
        name = key.rpartition(".")[2]
        out.append(
            RULE.finding(
                f"{name} has {len(values)} values for input {label}, which has {channels} "
                f"channel(s) ({config.where(key)})",
                Evidence(
                    f"{name} of input {label}",
                    " ".join(f"{v:g}" for v in values),
                    f"1 or {channels} values",
                    config.where(key),
                ),
                fix=f"Give {name} one value, or one per channel separated by spaces.",
            )
        )
    want = 3 if spec.type_train in THREE_CHANNEL_TYPES else 1 if spec.type_train == "gray" else None
    if want is not None and channels != want:
        key = "input_parameters.input_type_train"
        out.append(
            RULE.finding(
                f"input_type_train {spec.type_train} of input {label} needs {want} channel(s), "
                f"the input has {channels}",
                Evidence(f"channels of input {label}", str(channels), str(want), config.where(key)),
                fix="Use input_type_train featuremap for non-image inputs, gray for 1 channel.",
            )
        )
    return out


def _fixed_shape(model_shape: tuple[object, ...] | None) -> tuple[int, ...] | None:
    """The model's shape with a dynamic batch as 1; None when another dimension is dynamic."""
    if model_shape is None or not all(isinstance(d, int) and d > 0 for d in model_shape[1:]):
        return None
    return tuple(d if isinstance(d, int) and d > 0 else 1 for d in model_shape)


def _shape_edit(
    ctx: Context, config: MapperConfig, spec: InputSpec, model_shape: tuple[object, ...] | None
) -> ConfigEdit | None:
    fixed = _fixed_shape(model_shape)
    if fixed is None:
        return None
    key = "input_parameters.input_shape"
    return _per_input_edit(ctx, config, key, spec, _fmt_shape(spec.shape), _fmt_shape(fixed))


def _per_input_edit(
    ctx: Context, config: MapperConfig, key: str, spec: InputSpec, old: str, new: str
) -> ConfigEdit | None:
    """Set this input's part of a per-input key; with several inputs the key holds one value
    per input separated by ';', so the edit rewrites the whole value as written."""
    if len(config.inputs) <= 1:
        return edit(config, key, old, new)
    written = ctx.config_value_text(key)
    if written is None:
        return None
    parts = [p.strip() for p in written.split(";")]
    if spec.index >= len(parts):
        return None
    parts[spec.index] = new
    return edit(config, key, written, ";".join(parts))


def _remedy(change: ConfigEdit | None) -> Remedy | None:
    return Remedy(config=(change,)) if change is not None else None
