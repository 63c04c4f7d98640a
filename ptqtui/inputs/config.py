"""Parse a hb_mapper makertbin YAML into typed facts, keeping the line of every key.

Wrong types, illegal values, unknown and missing keys are not errors here: they are recorded
as `ConfigProblem`s with their line for the config rules to report. Only a file that cannot be
read as YAML raises `PtqInputError`.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ptqtui.errors import PtqInputError
from ptqtui.inputs import schema, yamltext
from ptqtui.inputs.files import read_bounded
from ptqtui.inputs.hb_compile import (
    QuantConfig,
    QuantConfigError,
    derived_norm_type,
    read_quant_config,
)
from ptqtui.inputs.schema import KeySpec

# Problem kinds, as the config rules group them.
TYPE = "type"
VALUE = "value"
UNKNOWN_KEY = "unknown-key"
MISSING_KEY = "missing-key"
INCONSISTENT = "inconsistent"
UNSUPPORTED = "unsupported"
DEPRECATED = "deprecated"

MAX_CONFIG_BYTES = 4 * 1024 * 1024  # a mapper YAML is a few kB; refuse to parse a huge file


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    kind: str  # one of the kinds above
    key: str  # dotted: "calibration_parameters.calibration_type"
    line: int | None  # 1-based YAML line
    message: str  # "calibration_type 'klx' is not one of default, mix, kl, max, load, skip"
    suggestion: str | None = None  # closest known key or node name


@dataclass(frozen=True, slots=True)
class NodeSetting:
    """One `node_info` entry (or `run_on_cpu`/`run_on_bpu` name)."""

    node: str
    line: int | None
    on: str | None = None  # "BPU" | "CPU"
    input_type: str | None = None  # "int8" | "int16", every input
    input_types: tuple[tuple[int, str], ...] = ()  # InputTypeN: (N, dtype)
    output_type: str | None = None  # every output
    source: str = "node_info"  # "node_info" | "run_on_cpu" | "run_on_bpu"


@dataclass(frozen=True, slots=True)
class InputSpec:
    """Everything the config says about one model input, lists resolved per input."""

    index: int
    name: str | None
    type_train: str | None = None
    layout_train: str | None = None
    type_rt: str | None = None
    layout_rt: str | None = None
    space_and_range: str = "regular"
    shape: tuple[int | None, ...] | None = None  # None entries are dynamic ('?')
    norm_type: str | None = None
    mean: tuple[float, ...] | None = None
    scale: tuple[float, ...] | None = None
    cal_data_dir: Path | None = None
    cal_data_type: str | None = None  # as declared
    cal_dtype: str = "uint8"  # effective: declared, else from the _f32 suffix
    cal_dtype_conflict: bool = False  # declared type disagrees with the dir suffix


@dataclass(frozen=True, slots=True)
class MapperConfig:
    path: Path
    generation: str  # "makertbin" | "hb_compile"
    values: dict[str, Any]  # dotted key -> value as written (after YAML typing)
    lines: dict[str, int]  # dotted key -> 1-based line
    inputs: tuple[InputSpec, ...]
    node_settings: tuple[NodeSetting, ...]
    optimization: tuple[str, ...]
    problems: tuple[ConfigProblem, ...]
    model_path: Path | None = None
    working_dir: Path | None = None
    quant_config: QuantConfig | None = None  # hb_compile's calibration_parameters.quant_config

    def line_of(self, key: str) -> int | None:
        return self.lines.get(key)

    def get(self, key: str, default: Any = None) -> Any:
        """The checked value of a dotted key, else the schema default, else `default`."""
        if key in self.values:
            return self.values[key]
        group, _, name = key.partition(".")
        spec = schema.SCHEMAS.get(self.generation, schema.SCHEMA).get(group, {}).get(name)
        if spec is not None and spec.default is not None:
            return spec.default
        return default

    @property
    def march(self) -> str | None:
        return self.values.get("model_parameters.march")

    @property
    def calibration_type(self) -> str:
        return str(self.get("calibration_parameters.calibration_type"))

    @property
    def max_percentile(self) -> float | None:
        return self.values.get("calibration_parameters.max_percentile")

    @property
    def per_channel(self) -> bool:
        return bool(self.get("calibration_parameters.per_channel"))

    @property
    def run_on_cpu(self) -> tuple[str, ...]:
        return tuple(self.values.get("calibration_parameters.run_on_cpu", ()))

    @property
    def run_on_bpu(self) -> tuple[str, ...]:
        return tuple(self.values.get("calibration_parameters.run_on_bpu", ()))

    def has_optimization(self, item: str) -> bool:
        return item in self.optimization

    def where(self, key: str) -> str:
        """'mapper.yaml line 12' for evidence and messages."""
        line = self.line_of(key)
        return f"{self.path.name} line {line}" if line else self.path.name

    def problems_of(self, *kinds: str) -> tuple[ConfigProblem, ...]:
        return tuple(p for p in self.problems if not kinds or p.kind in kinds)


@dataclass
class _Parse:
    path: Path
    values: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)  # dotted key -> YAML value, unchecked
    nodes: dict[str, yaml.Node] = field(default_factory=dict)  # dotted key -> value node
    generation: str = "makertbin"  # "hb_compile" for march nash-*: its schema is read
    specs: dict[str, dict[str, KeySpec]] = field(default_factory=lambda: schema.SCHEMA)
    quant_config: QuantConfig | None = None

    def problem(self, kind: str, key: str, message: str, suggestion: str | None = None) -> None:
        line = self.lines.get(key) or self.lines.get(key.partition(".")[0])
        self.problems.append(ConfigProblem(kind, key, line, message, suggestion))


def load_config(path: str | Path) -> MapperConfig:
    """Read and check a makertbin YAML; raises PtqInputError only if it cannot be read."""
    path = Path(path)
    text = _read_text(path)
    root = yamltext.compose(text, path)
    parse = _Parse(path)
    if root is None:
        raise PtqInputError(path.name, "the file is empty, not a hb_mapper config")
    if not isinstance(root, yaml.MappingNode):
        raise PtqInputError(
            path.name,
            "not a hb_mapper config: the top level is a "
            f"{_node_kind(root)}, expected the groups model_parameters, input_parameters, ...",
            line=root.start_mark.line + 1,
        )
    parse.generation = _peek_generation(root)
    parse.specs = schema.SCHEMAS[parse.generation]
    try:
        _collect(parse, root)
    except PtqInputError as exc:  # _construct knows the line, not the file
        raise PtqInputError(path.name, exc.problem, line=exc.line) from None
    generation = _detect_generation(parse)
    _check_groups(parse)
    for group, keys in parse.specs.items():
        for name, spec in keys.items():
            key = f"{group}.{name}"
            if key in parse.raw:
                _check_value(parse, key, name, spec, parse.raw[key])
    _check_required(parse)
    optimization = _optimization_items(parse)
    nodes = _node_settings(parse)
    inputs = _input_specs(parse)
    if generation == "hb_compile":
        _read_quant_config(parse)
    return _finish(parse, generation, inputs=inputs, nodes=nodes, optimization=optimization)


def _peek_generation(root: yaml.MappingNode) -> str:
    """'hb_compile' when model_parameters.march is nash-*, read before the keys are checked."""
    for key_node, value_node in root.value:
        if _construct(key_node) != "model_parameters" or not isinstance(
            value_node, yaml.MappingNode
        ):
            continue
        for sub_key, sub_value in value_node.value:
            if _construct(sub_key) == "march" and isinstance(sub_value, yaml.ScalarNode):
                march = str(sub_value.value).strip().lower()
                if march.startswith(schema.HB_COMPILE_MARCH_PREFIX):
                    return "hb_compile"
    return "makertbin"


def _read_quant_config(parse: _Parse) -> None:
    """hb_compile's quant_config, typed; what ptqtui does not simulate is named (PTQ206)."""
    key = "calibration_parameters.quant_config"
    if key not in parse.raw or parse.raw[key] is None:
        return
    try:
        parse.quant_config = read_quant_config(parse.raw[key], parse.path)
    except QuantConfigError as exc:
        parse.problem(VALUE, key, str(exc))
        return
    for where, why in parse.quant_config.unsupported:
        parse.problem(
            UNSUPPORTED,
            key,
            f"quant_config {where}: {why}; the simulation goes on without it",
        )


def _read_text(path: Path) -> str:
    data = read_bounded(path, MAX_CONFIG_BYTES, "a hb_mapper YAML file")
    if b"\x00" in data:
        raise PtqInputError(path, "binary data, not a YAML text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PtqInputError(path, f"not UTF-8 text (byte {exc.start})") from exc


def _construct(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    except yaml.MarkedYAMLError as exc:  # e.g. a list as a mapping key
        mark = exc.problem_mark or exc.context_mark
        raise PtqInputError(
            None,
            f"invalid YAML: {exc.problem or exc.context or 'cannot be read'}",
            line=mark.line + 1 if mark is not None else None,
        ) from None
    finally:
        loader.dispose()


def _node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    if isinstance(node, yaml.SequenceNode):
        return "list"
    return "scalar"


def _collect(parse: _Parse, root: yaml.MappingNode) -> None:
    """Record every group and key with its line; unknown groups and keys become problems."""
    known_groups = (*schema.GROUPS, *schema.OPTIONAL_GROUPS)
    for key_node, value_node in root.value:
        group = str(_construct(key_node))
        line = key_node.start_mark.line + 1
        if group in parse.lines:
            parse.problem(INCONSISTENT, group, f"group {group} appears twice; the last one wins")
        parse.lines[group] = line
        if group not in known_groups:
            if group in schema.HB_COMPILE_KEYS:
                parse.raw[group] = _construct(value_node)
                continue
            parse.problem(
                UNKNOWN_KEY,
                group,
                f"unknown group {group!r}",
                _closest(group, known_groups),
            )
            continue
        if yamltext.is_null(value_node):
            parse.raw[group] = None
            continue
        if not isinstance(value_node, yaml.MappingNode):
            parse.problem(
                TYPE, group, f"{group} must be a mapping of keys, not a {_node_kind(value_node)}"
            )
            continue
        parse.raw[group] = {}
        known = parse.specs[group]
        for sub_key_node, sub_value_node in value_node.value:
            name = str(_construct(sub_key_node))
            key = f"{group}.{name}"
            if key in parse.lines:
                parse.problem(
                    INCONSISTENT, key, f"{name} appears twice in {group}; the last one wins"
                )
            parse.lines[key] = sub_key_node.start_mark.line + 1
            parse.nodes[key] = sub_value_node
            parse.raw[key] = _construct(sub_value_node)
            if name not in known:
                other = _other_group_of(name)
                if name in schema.HB_COMPILE_KEYS:
                    continue
                if other is not None:
                    parse.problem(
                        UNKNOWN_KEY, key, f"{name} belongs in {other}, not in {group}", other
                    )
                else:
                    parse.problem(
                        UNKNOWN_KEY, key, f"unknown key {name!r} in {group}", _closest(name, known)
                    )


def _other_group_of(name: str) -> str | None:
    for group, keys in schema.SCHEMA.items():
        if name in keys:
            return group
    return None


def _closest(name: str, candidates: Any) -> str | None:
    found = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


def _detect_generation(parse: _Parse) -> str:
    if parse.generation == "hb_compile":
        return "hb_compile"  # read with its own schema (schema.HB_COMPILE_SCHEMA)
    newer = [k for k in parse.raw if k.rpartition(".")[2] in schema.HB_COMPILE_KEYS]
    for key in newer:
        parse.problem(
            UNSUPPORTED,
            key,
            f"{key.rpartition('.')[2]} belongs to the newer hb_compile config, which ptqtui does "
            "not support yet; it is ignored",
        )
    return "makertbin"


def _check_groups(parse: _Parse) -> None:
    for group in schema.GROUPS:
        if group not in parse.lines:
            parse.problems.append(ConfigProblem(MISSING_KEY, group, None, f"missing group {group}"))


def _check_required(parse: _Parse) -> None:
    for group, keys in parse.specs.items():
        if group not in schema.GROUPS or group not in parse.lines:
            continue
        for name, spec in keys.items():
            key = f"{group}.{name}"
            if spec.required and key not in parse.raw:
                parse.problems.append(
                    ConfigProblem(
                        MISSING_KEY, key, parse.lines.get(group), f"{group} is missing {name}"
                    )
                )
    if "model_parameters" in parse.lines:
        has_onnx = "model_parameters.onnx_model" in parse.raw
        caffe = [k for k in ("caffe_model", "prototxt") if f"model_parameters.{k}" in parse.raw]
        if has_onnx and caffe:
            parse.problem(
                INCONSISTENT,
                "model_parameters.onnx_model",
                "onnx_model and caffe_model/prototxt are mutually exclusive",
            )
        elif not has_onnx and len(caffe) != 2:
            missing = (
                "caffe_model, prototxt"
                if not caffe
                else ({"caffe_model", "prototxt"} - set(caffe)).pop()
            )
            parse.problems.append(
                ConfigProblem(
                    MISSING_KEY,
                    "model_parameters.onnx_model",
                    parse.lines.get("model_parameters"),
                    f"model_parameters names no model: missing onnx_model (or {missing})",
                )
            )
    cal_type = parse.values.get("calibration_parameters.calibration_type", "default")
    if (
        "calibration_parameters" in parse.lines
        and cal_type not in ("load", "skip")
        and "calibration_parameters.cal_data_dir" not in parse.raw
    ):
        parse.problems.append(
            ConfigProblem(
                MISSING_KEY,
                "calibration_parameters.cal_data_dir",
                parse.lines.get("calibration_parameters"),
                "calibration_parameters is missing cal_data_dir"
                f" (needed by calibration_type {cal_type})",
            )
        )


def _check_value(parse: _Parse, key: str, name: str, spec: KeySpec, value: Any) -> None:
    """Type-check one value; store it in `values` when usable."""
    if spec.deprecated:
        parse.problem(DEPRECATED, key, f"{name} is deprecated: {spec.deprecated}")
    if value is None or (isinstance(value, str) and not value.strip()):
        if spec.required:  # an empty optional key means "take it from the model", as written
            parse.problem(VALUE, key, f"{name} has no value")
        return
    reader = _READERS[spec.kind]
    try:
        parse.values[key] = reader(parse, key, name, spec, value)
    except _Invalid as bad:
        parse.problem(bad.kind, key, bad.message, bad.suggestion)


class _Invalid(Exception):
    def __init__(self, kind: str, message: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.suggestion = suggestion


def _describe(value: Any) -> str:
    return (
        type(value).__name__
        if not isinstance(value, (dict, list))
        else ("mapping" if isinstance(value, dict) else "list")
    )


def _as_text(name: str, value: Any) -> str:
    if isinstance(value, (bool, dict, list)):
        raise _Invalid(TYPE, f"{name} must be text, not {_describe(value)} {value!r}")
    return str(value)


def _read_str(parse: _Parse, key: str, name: str, spec: KeySpec, value: Any) -> str:
    text = _as_text(name, value).strip()
    if not text:
        raise _Invalid(VALUE, f"{name} is empty")
    return text


def _read_path(parse: _Parse, key: str, name: str, spec: KeySpec, value: Any) -> str:
    return _read_str(parse, key, name, spec, value)


def _read_bool(parse: _Parse, key: str, name: str, spec: KeySpec, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _Invalid(TYPE, f"{name} must be True or False, not {value!r}")


def _read_number(name: str, spec: KeySpec, value: Any, kind: type) -> Any:
    if isinstance(value, bool):
        raise _Invalid(TYPE, f"{name} must be a number, not {value!r}")
    try:
        number = kind(value) if not isinstance(value, str) else kind(float(value.strip()))
        if kind is int and isinstance(value, float) and value != int(value):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise _Invalid(
            TYPE, f"{name} must be {'an integer' if kind is int else 'a number'}, not {value!r}"
        ) from None
    if (spec.low is not None and number < spec.low) or (
        spec.high is not None and number > spec.high
    ):
        raise _Invalid(VALUE, f"{name} {value!r} is outside {_fmt(spec.low)}..{_fmt(spec.high)}")
    return number


def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else str(x)


def _read_int(parse: _Parse, key: str, name: str, spec: KeySpec, value: Any) -> int:
    return _read_number(name, spec, value, int)


def _read_float(parse: _Parse, key: str, name: str, spec: KeySpec, value: Any) -> float:
    return _read_number(name, spec, value, float)


def _check_enum(name: str, text: str, allowed: tuple[str, ...]) -> str:
    if text in allowed:
        return text
    for option in allowed:  # the converter is case-sensitive; say so when only case differs
        if option.lower() == text.lower():
            raise _Invalid(VALUE, f"{name} {text!r} must be written {option!r}", option)
    raise _Invalid(
        VALUE,
        f"{name} {text!r} is not one of {', '.join(allowed)}",
        _closest(text, allowed),
    )


def _read_enum(parse: _Parse, key: str, name: str, spec: KeySpec, value: Any) -> str:
    return _check_enum(name, _as_text(name, value).strip(), spec.allowed)


def _read_names(parse: _Parse, key: str, name: str, spec: KeySpec, value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(yamltext.split_items(_as_text(name, value)))


def _per_input_texts(name: str, value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value]
    text = _as_text(name, value)
    return [item.strip() for item in text.split(";")] if text.strip() else []


def _read_per_input_enum(
    parse: _Parse, key: str, name: str, spec: KeySpec, value: Any
) -> tuple[str, ...]:
    items = [t for t in _per_input_texts(name, value) if t]
    if not items:
        raise _Invalid(VALUE, f"{name} is empty")
    return tuple(_check_enum(name, item, spec.allowed) for item in items)


def _read_per_input_path(
    parse: _Parse, key: str, name: str, spec: KeySpec, value: Any
) -> tuple[str, ...]:
    items = [t for t in _per_input_texts(name, value) if t]
    if not items:
        raise _Invalid(VALUE, f"{name} is empty")
    return tuple(items)


_DIM = re.compile(r"^(\d+|\?|-1)$")


def parse_shape(text: str) -> tuple[int | None, ...]:
    """'1x3x224x224' -> (1, 3, 224, 224); '?' or -1 is a dynamic dimension (None)."""
    dims = [d.strip() for d in re.split(r"[xX*,]", text.strip())]
    if not dims or not all(_DIM.match(d) for d in dims):
        raise ValueError(text)
    shape = tuple(None if d in ("?", "-1") else int(d) for d in dims)
    if any(d == 0 for d in shape):
        raise ValueError(text)
    return shape


def _read_shapes(
    parse: _Parse, key: str, name: str, spec: KeySpec, value: Any
) -> tuple[tuple[int | None, ...], ...]:
    shapes = []
    for item in _per_input_texts(name, value):
        try:
            shapes.append(parse_shape(item))
        except ValueError:
            raise _Invalid(VALUE, f"{name} {item!r} is not a shape like 1x3x224x224") from None
    if not shapes:
        raise _Invalid(VALUE, f"{name} is empty")
    return tuple(shapes)


def _read_numbers(
    parse: _Parse, key: str, name: str, spec: KeySpec, value: Any
) -> tuple[tuple[float, ...] | None, ...]:
    if isinstance(value, bool):
        raise _Invalid(TYPE, f"{name} must be numbers, not {value!r}")
    if isinstance(value, (int, float)):
        return ((float(value),),)
    per_input: list[tuple[float, ...] | None] = []
    items = value if isinstance(value, list) else _as_text(name, value).split(";")
    for item in items:
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            per_input.append((float(item),))
            continue
        text = str(item).strip()
        if text in ("None", "none", ""):
            per_input.append(None)
            continue
        try:
            per_input.append(tuple(float(x) for x in text.replace(",", " ").split()))
        except ValueError:
            raise _Invalid(
                TYPE,
                f"{name} {text!r} is not a list of numbers separated by spaces",
            ) from None
    if all(p is None for p in per_input):
        raise _Invalid(VALUE, f"{name} holds no number")
    return tuple(per_input)


def _read_optimization(
    parse: _Parse, key: str, name: str, spec: KeySpec, value: Any
) -> tuple[str, ...]:
    if isinstance(value, list):
        items = [str(v).strip() for v in value]
    else:
        items = [i.strip() for i in re.split(r"[,;]", _as_text(name, value))]
    items = [i for i in items if i]
    for item in items:
        if item not in schema.OPTIMIZATION_ITEMS and not schema.OPTIMIZATION_OP_PATTERN.match(item):
            raise _Invalid(
                VALUE,
                f"optimization item {item!r} is not known "
                "(set_model_output_int8, set_Softmax_input_int8, set_all_nodes_int16, "
                "asymmetric, bias_correction, set_<OpType>_input_int16, ...)",
                _closest(item, schema.OPTIMIZATION_ITEMS),
            )
    return tuple(items)


def _read_mapping(parse: _Parse, key: str, name: str, spec: KeySpec, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(TYPE, f'{name} must be a mapping like {{"data": "ddr"}}, not {value!r}')
    return {str(k): v for k, v in value.items()}


def _read_node_info(parse: _Parse, key: str, name: str, spec: KeySpec, value: Any) -> Any:
    if isinstance(value, (dict, str)):
        return value
    raise _Invalid(
        TYPE,
        "node_info must be a mapping of node names or a 'node:int16;...' string,"
        f" not {_describe(value)}",
    )


def _read_any(parse: _Parse, key: str, name: str, spec: KeySpec, value: Any) -> Any:
    return value


_READERS = {
    schema.STR: _read_str,
    schema.PATH: _read_path,
    schema.BOOL: _read_bool,
    schema.INT: _read_int,
    schema.FLOAT: _read_float,
    schema.ENUM: _read_enum,
    schema.NAMES: _read_names,
    schema.PER_INPUT_ENUM: _read_per_input_enum,
    schema.PER_INPUT_PATH: _read_per_input_path,
    schema.SHAPES: _read_shapes,
    schema.NUMBERS: _read_numbers,
    schema.OPTIMIZATION: _read_optimization,
    schema.MAPPING: _read_mapping,
    schema.NODE_INFO: _read_node_info,
    schema.ANY: _read_any,
}


def _optimization_items(parse: _Parse) -> tuple[str, ...]:
    return tuple(parse.values.get("calibration_parameters.optimization", ()))


def _node_settings(parse: _Parse) -> tuple[NodeSetting, ...]:
    settings: list[NodeSetting] = []
    key = "model_parameters.node_info"
    value = parse.values.get(key)
    if isinstance(value, str):
        settings.extend(_node_info_string(parse, key, value))
    elif isinstance(value, dict):
        settings.extend(_node_info_mapping(parse, key, value))
    for source in ("run_on_cpu", "run_on_bpu"):
        list_key = f"calibration_parameters.{source}"
        place = "CPU" if source == "run_on_cpu" else "BPU"
        for node in parse.values.get(list_key, ()):
            settings.append(NodeSetting(node, parse.lines.get(list_key), on=place, source=source))
    return tuple(settings)


def _node_info_string(parse: _Parse, key: str, text: str) -> list[NodeSetting]:
    out = []
    line = parse.lines.get(key)
    for item in yamltext.split_items(text):
        node, dtype = yamltext.node_item(item)
        if not node:
            parse.problem(VALUE, key, f"node_info item {item!r} is not 'node_name:int16'")
            continue
        if dtype not in schema.NODE_DTYPES:
            parse.problem(
                VALUE, key, f"node_info type {dtype!r} for {node.strip()} is not one of int8, int16"
            )
            continue
        out.append(
            NodeSetting(node.strip(), line, input_type=dtype, output_type=dtype, source="node_info")
        )
    return out


def _node_info_mapping(parse: _Parse, key: str, value: dict[str, Any]) -> list[NodeSetting]:
    out = []
    node_lines = _mapping_key_lines(parse.nodes.get(key))
    for raw_node, fields in value.items():
        node = str(raw_node)
        line = node_lines.get(node, parse.lines.get(key))
        if not isinstance(fields, dict):
            parse.problems.append(
                ConfigProblem(
                    TYPE,
                    key,
                    line,
                    f"node_info entry {node} must be a mapping"
                    " like {'ON': 'BPU', 'InputType': 'int16'}",
                )
            )
            continue
        on = input_type = output_type = None
        input_types: list[tuple[int, str]] = []
        bad = False
        for field_name, field_value in fields.items():
            field_name = str(field_name)
            text = str(field_value).strip()
            indexed = schema.NODE_INPUT_TYPE_PATTERN.match(field_name)
            allowed = schema.NODE_INFO_PLACES if field_name == "ON" else schema.NODE_DTYPES
            if field_name not in schema.NODE_INFO_FIELDS and not indexed:
                hint = (
                    " (OutputType applies to every output; OutputTypeN is not supported)"
                    if field_name.startswith("OutputType")
                    else ""
                )
                parse.problems.append(
                    ConfigProblem(
                        UNKNOWN_KEY,
                        key,
                        line,
                        f"node_info field {field_name!r} of {node} is not one of ON, InputType, "
                        f"InputTypeN, OutputType{hint}",
                        _closest(field_name, schema.NODE_INFO_FIELDS),
                    )
                )
                bad = True
                continue
            if text not in allowed:
                parse.problems.append(
                    ConfigProblem(
                        VALUE,
                        key,
                        line,
                        f"node_info {field_name} {text!r} of {node}"
                        f" is not one of {', '.join(allowed)}",
                        _closest(text, allowed),
                    )
                )
                bad = True
                continue
            if field_name == "ON":
                on = text
            elif field_name == "InputType":
                input_type = text
            elif field_name == "OutputType":
                output_type = text
            elif indexed:
                input_types.append((int(indexed.group(1)), text))
        if bad and on is None and input_type is None and output_type is None and not input_types:
            continue
        out.append(NodeSetting(node, line, on, input_type, tuple(sorted(input_types)), output_type))
    return out


def _mapping_key_lines(node: yaml.Node | None) -> dict[str, int]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(_construct(k)): k.start_mark.line + 1 for k, _ in node.value}


def _input_specs(parse: _Parse) -> tuple[InputSpec, ...]:
    """Resolve every per-input key into one InputSpec per model input."""
    lists: dict[str, tuple[Any, ...]] = {}
    for key in schema.PER_INPUT_KEYS:
        if key in parse.values:
            lists[key] = tuple(parse.values[key])
    names = lists.get("input_parameters.input_name", ())
    count = len(names) if names else max((len(v) for v in lists.values()), default=1)
    count = max(count, 1)
    for key, items in lists.items():
        if key == "input_parameters.input_name" or len(items) in (count,):
            continue
        if len(items) == 1 and key in (
            "calibration_parameters.cal_data_type",
            "input_parameters.input_space_and_range",
        ):
            continue  # one value applies to every input
        short = key.rpartition(".")[2]
        what = f"input_name names {count} inputs" if names else f"other keys list {count} inputs"
        parse.problem(
            INCONSISTENT,
            key,
            f"{short} lists {len(items)} value(s) but {what}; use ';' between inputs",
        )

    def pick(key: str, i: int) -> Any:
        items = lists.get(key, ())
        if len(items) == 1 and key in (
            "calibration_parameters.cal_data_type",
            "input_parameters.input_space_and_range",
        ):
            return items[0]
        return items[i] if i < len(items) else None

    specs = []
    for i in range(count):
        norm_type = pick("input_parameters.norm_type", i)
        mean = pick("input_parameters.mean_value", i)
        scale = pick("input_parameters.scale_value", i)
        if parse.generation == "hb_compile":  # std_value instead of scale; norm_type derived
            std = pick("input_parameters.std_value", i)
            if scale is not None and std is not None:
                parse.problem(
                    INCONSISTENT,
                    "input_parameters.std_value",
                    "scale_value and std_value are mutually exclusive (hb_compile): keep one",
                )
            elif std is not None and all(v != 0 for v in std):
                scale = tuple(1.0 / v for v in std)
            if norm_type is None:
                norm_type = derived_norm_type(mean, scale)
        cal_dir_text = pick("calibration_parameters.cal_data_dir", i)
        cal_dir = _beside(parse.path, cal_dir_text) if cal_dir_text else None
        declared = pick("calibration_parameters.cal_data_type", i)
        suffix_f32 = bool(cal_dir_text) and cal_dir_text.rstrip("/\\").endswith("_f32")
        implied = "float32" if suffix_f32 else "uint8"
        shape = pick("input_parameters.input_shape", i)
        specs.append(
            InputSpec(
                index=i,
                name=names[i] if i < len(names) else None,
                type_train=pick("input_parameters.input_type_train", i),
                layout_train=pick("input_parameters.input_layout_train", i),
                type_rt=pick("input_parameters.input_type_rt", i),
                layout_rt=pick("input_parameters.input_layout_rt", i),
                space_and_range=pick("input_parameters.input_space_and_range", i) or "regular",
                shape=shape,
                norm_type=norm_type,
                mean=mean,
                scale=scale,
                cal_data_dir=cal_dir,
                cal_data_type=declared,
                cal_dtype=declared or implied,
                cal_dtype_conflict=declared is not None and declared != implied,
            )
        )
        _check_norm(parse, specs[-1], count)
    return tuple(specs)


def _check_norm(parse: _Parse, spec: InputSpec, count: int) -> None:
    label = f" for input {spec.name or spec.index}" if count > 1 else ""
    for name, values in (("mean_value", spec.mean), ("scale_value", spec.scale)):
        key = f"input_parameters.{name}"
        if values is not None and not all(math.isfinite(v) for v in values):
            parse.problem(VALUE, key, f"{name} holds a value that is not a finite number{label}")
        elif name == "scale_value" and values is not None and 0.0 in values:
            channels = ", ".join(str(i) for i, v in enumerate(values) if v == 0.0)
            parse.problem(
                VALUE,
                key,
                f"scale_value 0 multiplies input channel {channels}{label} by zero: the model "
                "sees a constant there, whatever the image",
            )
    for name in schema.NORM_NEEDS.get(spec.norm_type or "", ()):
        if getattr(spec, "mean" if name == "mean_value" else "scale") is None:
            key = f"input_parameters.{name}"
            line = parse.lines.get(key) or parse.lines.get("input_parameters.norm_type")
            parse.problems.append(
                ConfigProblem(
                    MISSING_KEY, key, line, f"norm_type {spec.norm_type} needs {name}{label}"
                )
            )


def _finish(
    parse: _Parse,
    generation: str,
    *,
    inputs: tuple[InputSpec, ...],
    nodes: tuple[NodeSetting, ...],
    optimization: tuple[str, ...],
) -> MapperConfig:
    model_text = parse.values.get("model_parameters.onnx_model")
    working = parse.values.get("model_parameters.working_dir", "model_output")
    return MapperConfig(
        path=parse.path,
        generation=generation,
        values=dict(parse.values),
        lines=dict(parse.lines),
        inputs=inputs,
        node_settings=nodes,
        optimization=optimization,
        problems=tuple(parse.problems),
        model_path=_beside(parse.path, model_text) if model_text else None,
        working_dir=_beside(parse.path, str(working)),
        quant_config=parse.quant_config,
    )


def _beside(config_path: Path, relative: str) -> Path:
    """A path from the config, read relative to the YAML's directory as the converter does."""
    return Path(os.path.normpath(config_path.parent / relative))
