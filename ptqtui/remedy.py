"""`Remedy`: what to change, as data. The one language of change between rules, sweep rows,
plan steps, the TUI's what-ifs, the config patcher and the what-if service.

A remedy has three parts, any of which may be empty:
- `config`: edits of the user's YAML (key path, old value, new value, YAML line), for what
  the simulator cannot express as settings (an illegal value, the channel-order key, ...);
- `inputs`: input fixes from a closed set (`InputFix`): what the calibration data needs;
- `settings`: a `SettingsDelta` on the simulator's `QuantSettings` (method, percentile,
  per_channel, asymmetric, bias_correction, per-node dtype and placement).

Messages are for people only: code decides from these values. This module imports nothing
heavy (the Diagnosis records load without numpy or onnxruntime).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ptqtui.quant.scheme import QuantSettings

# A YAML value as a remedy carries it: a scalar, or a list of scalars (mean_value 123 116 103).
Value = str | int | float | bool | tuple[str | int | float | bool, ...] | None


class Placement(enum.Enum):
    """Where a node runs."""

    BPU = "BPU"
    CPU = "CPU"


class DType(enum.Enum):
    """The data type of a node's activation inputs."""

    INT8 = "int8"
    INT16 = "int16"
    FLOAT = "float"


class InputFix(enum.Enum):
    """What the calibration (and deployed) data needs; each undoes one pipeline mistake."""

    SWAP_CHANNELS = "swap-channels"  # BGR data for an RGB model, or the reverse
    SCALE_X255 = "scale-x255"  # 0..1 data where 0..255 is expected
    SCALE_DIV255 = "scale-div255"  # the reverse
    REMOVE_NORMALISATION = "remove-normalisation"  # data normalised before the config does
    ADD_NORMALISATION = "add-normalisation"  # raw data where the model expects normalised
    READ_NHWC = "read-nhwc"  # HWC bytes read as CHW: read them as they were written
    READ_NCHW = "read-nchw"  # the reverse
    DROP_SAMPLES = "drop-samples"  # leave the listed samples out

    @property
    def label(self) -> str:
        return _FIX_LABELS[self]


_FIX_LABELS = {
    InputFix.SWAP_CHANNELS: "swap channels",
    InputFix.SCALE_X255: "scale x255",
    InputFix.SCALE_DIV255: "scale /255",
    InputFix.REMOVE_NORMALISATION: "remove normalisation",
    InputFix.ADD_NORMALISATION: "add normalisation",
    InputFix.READ_NHWC: "read as NHWC",
    InputFix.READ_NCHW: "read as NCHW",
    InputFix.DROP_SAMPLES: "drop samples",
}


@dataclass(frozen=True, slots=True)
class ConfigEdit:
    """One change to the user's YAML.

    `new` None with `remove` removes the key; `append` adds `new` to a list-valued key
    (optimization, run_on_cpu); `rename` renames node `node` to `new`; `node` with `fields`
    sets a `node_info` entry's fields.
    """

    key: str  # dotted: "calibration_parameters.per_channel"
    new: Value = None
    old: Value = None  # as the config has it (None = unset)
    line: int | None = None  # YAML line of the key, when it is in the file
    node: str | None = None  # node_info entry, or the node a rename renames
    fields: tuple[tuple[str, str], ...] = ()  # node_info fields: (("ON", "CPU"),)
    append: bool = False
    rename: bool = False
    remove: bool = False

    def __post_init__(self) -> None:
        group, dot, name = self.key.partition(".")
        if not dot or not group or not name:
            raise ValueError(f"config key {self.key!r} is not 'group.key'")
        if self.remove and (self.append or self.rename):
            raise ValueError(f"{self.key}: a removal neither appends nor renames")

    def describe(self) -> str:
        """'group.key: old -> new', as people read a change."""
        where = f" {self.node}" if self.node else ""
        if self.fields:
            return f"{self.key}{where}: {', '.join(f'{k}: {v}' for k, v in self.fields)}"
        if self.append:
            return f"{self.key}: add {_text(self.new)}"
        if self.rename:
            return f"{self.key}: rename {self.node} -> {_text(self.new)}"
        new = "(remove)" if self.remove else _text(self.new)
        old = "(unset)" if self.old is None else _text(self.old)
        return f"{self.key}{where}: {old} -> {new}"


@dataclass(frozen=True, slots=True)
class InputChange:
    """An input fix, for one model input (None: every input it applies to)."""

    fix: InputFix
    input: str | None = None
    samples: tuple[str, ...] = ()  # DROP_SAMPLES: the files to leave out

    def describe(self) -> str:
        what = self.fix.label
        if self.samples:
            what += f" ({len(self.samples)} samples)"
        return f"{what} of {self.input}" if self.input else what


@dataclass(frozen=True, slots=True)
class NodeChange:
    """A node's placement and/or dtype (None: as it was); int16 is the node's activation
    inputs and its output, as node_info InputType/OutputType int16 write it."""

    node: str
    placement: Placement | None = None
    dtype: DType | None = None

    def __post_init__(self) -> None:
        if not self.node:
            raise ValueError("a node change without a node name")
        if self.placement is Placement.CPU and self.dtype is DType.INT16:
            raise ValueError(f"{self.node}: a node runs on the CPU or in int16, not both")


# QuantSettings fields of the int8 outputs (PTQ306), also SettingsDelta fields
OUTPUT_FLAGS = ("set_model_output_int8", "softmax_input_int8", "softmax_output_int8")


@dataclass(frozen=True, slots=True)
class SettingsDelta:
    """A change of the simulator's `QuantSettings`; None fields keep the current value.

    `max_percentile` 1.0 means plain max (the percentile cleared).
    """

    calibration_type: str | None = None
    max_percentile: float | None = None
    per_channel: bool | None = None
    asymmetric: bool | None = None
    bias_correction: bool | None = None
    nodes: tuple[NodeChange, ...] = ()
    # int8 model outputs and Softmax (the optimization items of the same names)
    set_model_output_int8: bool | None = None
    softmax_input_int8: bool | None = None
    softmax_output_int8: bool | None = None

    def is_empty(self) -> bool:
        return self == SettingsDelta()

    def apply(self, settings: QuantSettings) -> QuantSettings:
        """`settings` with this delta applied. A node moved to the CPU leaves int16; a node
        moved to int16 or back to the BPU leaves `run_on_cpu`."""
        from ptqtui.quant.scheme import NodeOverride

        changes: dict[str, object] = {}
        if self.calibration_type is not None:
            changes["calibration_type"] = self.calibration_type
        if self.max_percentile is not None:
            changes["max_percentile"] = None if self.max_percentile >= 1.0 else self.max_percentile
        for flag in ("per_channel", "asymmetric", "bias_correction", *OUTPUT_FLAGS):
            value = getattr(self, flag)
            if value is not None:
                changes[flag] = value
        if self.nodes:
            overrides = {o.node: o for o in settings.node_overrides}
            cpu = list(settings.run_on_cpu)
            bpu = list(settings.run_on_bpu)
            for change in self.nodes:
                prev = overrides.get(change.node)
                on = prev.on if prev else None
                in_dtype = prev.input_dtype if prev else None
                out_dtype = prev.output_dtype if prev else None
                if change.placement is not None:
                    on = change.placement.value
                    if change.placement is Placement.CPU:
                        in_dtype = out_dtype = None
                        if change.node in bpu:
                            bpu.remove(change.node)
                    elif change.node in cpu:
                        cpu.remove(change.node)
                if change.dtype is not None:
                    in_dtype = change.dtype.value if change.dtype is not DType.FLOAT else None
                    # a node in int16 writes int16 too (node_info InputType and OutputType)
                    out_dtype = "int16" if change.dtype is DType.INT16 else None
                    if change.dtype is DType.INT16:
                        if on == "CPU":
                            on = "BPU"
                        if change.node in cpu:
                            cpu.remove(change.node)
                overrides[change.node] = NodeOverride(change.node, on, in_dtype, out_dtype)
            changes["node_overrides"] = tuple(overrides.values())
            changes["run_on_cpu"] = tuple(cpu)
            changes["run_on_bpu"] = tuple(bpu)
        return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]

    def describe(self) -> str:
        parts: list[str] = []
        if self.calibration_type is not None:
            parts.append(f"calibration_type {self.calibration_type}")
        if self.max_percentile is not None:
            parts.append(f"max_percentile {self.max_percentile:g}")
        for flag in ("per_channel", "asymmetric", "bias_correction"):
            value = getattr(self, flag)
            if value is not None:
                parts.append(f"{flag} {'on' if value else 'off'}")
        for flag in OUTPUT_FLAGS:
            value = getattr(self, flag)
            if value is not None:
                parts.append(f"{flag} {'on' if value else 'off'}")
        for n in self.nodes:
            what = [n.placement.value] if n.placement else []
            what += [n.dtype.value] if n.dtype else []
            parts.append(f"{n.node} {'/'.join(what)}")
        return ", ".join(parts)


def settings_delta(old: QuantSettings, new: QuantSettings) -> SettingsDelta:
    """The delta that turns `old` into `new` (calibration fields and node placements/dtypes)."""
    changes: dict[str, object] = {}
    if new.calibration_type != old.calibration_type:
        changes["calibration_type"] = new.calibration_type
    if (new.max_percentile or 1.0) != (old.max_percentile or 1.0):
        changes["max_percentile"] = new.max_percentile or 1.0
    for flag in ("per_channel", "asymmetric", "bias_correction", *OUTPUT_FLAGS):
        if getattr(new, flag) != getattr(old, flag):
            changes[flag] = getattr(new, flag)
    nodes: list[NodeChange] = []
    names = dict.fromkeys(
        [o.node for o in (*old.node_overrides, *new.node_overrides)]
        + [*old.run_on_cpu, *new.run_on_cpu]
    )
    for name in names:
        was_on, was_dtype = _node_state(old, name)
        on, dtype = _node_state(new, name)
        if (was_on, was_dtype) == (on, dtype):
            continue
        nodes.append(
            NodeChange(
                name,
                Placement(on) if on != was_on else None,
                DType(dtype) if dtype != was_dtype and on != "CPU" else None,
            )
        )
    return SettingsDelta(nodes=tuple(nodes), **changes)  # type: ignore[arg-type]


def _node_state(s: QuantSettings, node: str) -> tuple[str, str]:
    override = next((o for o in s.node_overrides if o.node == node), None)
    on = "CPU" if node in s.run_on_cpu else "BPU"
    if override is not None and override.on is not None:
        on = override.on
    dtype = "int8"
    if override is not None and override.input_dtype is not None:
        dtype = override.input_dtype
    return on, dtype


@dataclass(frozen=True, slots=True)
class Remedy:
    """What to change: config edits, input fixes and a settings delta (each may be empty)."""

    config: tuple[ConfigEdit, ...] = ()
    inputs: tuple[InputChange, ...] = ()
    settings: SettingsDelta | None = None

    def is_empty(self) -> bool:
        return (
            not self.config
            and not self.inputs
            and (self.settings is None or self.settings.is_empty())
        )

    @property
    def fixes(self) -> tuple[InputFix, ...]:
        return tuple(dict.fromkeys(c.fix for c in self.inputs))

    def then(self, other: Remedy) -> Remedy:
        """This remedy followed by `other` (later settings fields win)."""
        return Remedy(
            self.config + other.config,
            self.inputs + other.inputs,
            _merge(self.settings, other.settings),
        )

    def describe(self) -> str:
        parts = [e.describe() for e in self.config] + [c.describe() for c in self.inputs]
        if self.settings is not None and not self.settings.is_empty():
            parts.append(self.settings.describe())
        return "; ".join(parts)


def _merge(a: SettingsDelta | None, b: SettingsDelta | None) -> SettingsDelta | None:
    if a is None or b is None:
        return a if b is None else b
    fields = {
        f.name: getattr(b, f.name) if getattr(b, f.name) is not None else getattr(a, f.name)
        for f in dataclasses.fields(SettingsDelta)
        if f.name != "nodes"
    }
    later = {n.node for n in b.nodes}
    nodes = tuple(n for n in a.nodes if n.node not in later) + b.nodes
    return SettingsDelta(nodes=nodes, **fields)  # type: ignore[arg-type]


def _text(value: Value) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return " ".join(_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
