"""Quantization settings (what the config asks for) and schemes (a dtype for every point).

Modelling choices, where the hb_mapper reference leaves room:
- Model outputs stay float unless ``set_model_output_int8``: hb_mapper's last BPU node writes a
  high-precision (int32 / dequantized) output by default, and the option is how a user asks
  for int8 outputs (reference §1 ``optimization``).
- Softmax runs in float (CPU) unless ``softmax_input_int8`` / ``softmax_output_int8`` ask for
  int8 input / output (X5 ``set_Softmax_input_int8`` / ``set_Softmax_output_int8``).
- An activation point sits on a tensor and is shared by its consumers: its dtype is the widest
  asked for by a quantized consumer (its ``InputType``) or by its producer (``OutputType``).
  When every consumer runs on the CPU, the tensor still leaves the NPU in int8 (int16) if an
  NPU node produced it (through data-movement ops), unless it is a model output (the last
  NPU node writes high precision unless ``set_model_output_int8``); float otherwise.
- ``set_all_nodes_int16`` and ``int16`` node types widen activations; weights stay int8 and
  biases int32 (at ``s_in * s_w``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ptqtui.quant.graph import FLOAT_BY_DEFAULT, QuantGraph

log = logging.getLogger(__name__)

CALIBRATION_TYPES = ("default", "mix", "kl", "max", "load", "skip")
DTYPES = ("int8", "int16", "float")
POINT_DTYPES = ("int8", "int16", "int32", "float")
PLACEMENTS = ("BPU", "CPU")
_WIDTH = {"float": 0, "int8": 1, "int16": 2}


@dataclass(frozen=True, slots=True)
class NodeOverride:
    """One ``node_info`` entry: placement and/or data types of a node."""

    node: str
    on: str | None = None  # "CPU" | "BPU" | None
    input_dtype: str | None = None  # "int8" | "int16" | None
    output_dtype: str | None = None  # "int8" | "int16" | None

    def __post_init__(self) -> None:
        if not self.node:
            raise ValueError("node_info entry without a node name")
        if self.on is not None and self.on not in PLACEMENTS:
            raise ValueError(f"node_info {self.node}: ON must be CPU or BPU, not {self.on!r}")
        for what, v in (("InputType", self.input_dtype), ("OutputType", self.output_dtype)):
            if v is not None and v not in ("int8", "int16"):
                raise ValueError(f"node_info {self.node}: {what} must be int8 or int16, not {v!r}")


@dataclass(frozen=True, slots=True)
class QuantSettings:
    """The calibration and quantization options of a hb_mapper config, typed."""

    calibration_type: str = "default"
    max_percentile: float | None = None  # None = 1.0 (plain max)
    per_channel: bool = False  # weights per output channel
    asymmetric: bool = False  # activations with a zero point
    bias_correction: bool = False
    node_overrides: tuple[NodeOverride, ...] = ()
    run_on_cpu: tuple[str, ...] = ()
    run_on_bpu: tuple[str, ...] = ()
    set_all_nodes_int16: bool = False
    set_model_output_int8: bool = False
    softmax_input_int8: bool = False
    softmax_output_int8: bool = False

    def __post_init__(self) -> None:
        if self.calibration_type not in CALIBRATION_TYPES:
            allowed = ", ".join(CALIBRATION_TYPES)
            raise ValueError(f"calibration_type {self.calibration_type!r} is not one of {allowed}")
        if self.max_percentile is not None and not 0.0 < self.max_percentile <= 1.0:
            raise ValueError(f"max_percentile {self.max_percentile} is not in (0, 1]")
        for name in ("node_overrides", "run_on_cpu", "run_on_bpu"):
            if not isinstance(getattr(self, name), tuple):
                raise ValueError(f"{name} must be a tuple")
        both = set(self.run_on_cpu) & set(self.run_on_bpu)
        if both:
            raise ValueError(f"nodes in both run_on_cpu and run_on_bpu: {', '.join(sorted(both))}")

    def describe(self) -> str:
        """Short label, as a sweep row shows it: 'max p=0.99995 per_channel'."""
        parts = [self.calibration_type]
        if self.max_percentile is not None and self.max_percentile < 1.0:
            parts.append(f"p={self.max_percentile:g}")
        parts += [
            flag for flag in ("per_channel", "asymmetric", "bias_correction") if getattr(self, flag)
        ]
        return " ".join(parts)


@dataclass(frozen=True)
class Scheme:
    """A dtype for every quantization point, and a placement for every node."""

    dtypes: Mapping[str, str] = field(hash=False)  # point key -> int8 | int16 | int32 | float
    placement: Mapping[str, str] = field(default_factory=dict, hash=False)  # node -> BPU | CPU
    unmatched: tuple[str, ...] = ()  # node names from the settings that the model lacks

    def dtype(self, key: str) -> str:
        return self.dtypes.get(key, "float")

    def active(self) -> tuple[str, ...]:
        """Points that are quantized (not float)."""
        return tuple(k for k, v in self.dtypes.items() if v != "float")

    def only(self, keys: Iterable[str]) -> Scheme:
        """The same dtypes on ``keys``, every other point float."""
        keep = set(keys)
        return Scheme(
            {k: (v if k in keep else "float") for k, v in self.dtypes.items()},
            self.placement,
            self.unmatched,
        )

    def without(self, keys: Iterable[str]) -> Scheme:
        """The same scheme with ``keys`` float."""
        drop = set(keys)
        return Scheme(
            {k: ("float" if k in drop else v) for k, v in self.dtypes.items()},
            self.placement,
            self.unmatched,
        )

    def with_dtypes(self, updates: Mapping[str, str]) -> Scheme:
        for k, v in updates.items():
            if v not in POINT_DTYPES:
                raise ValueError(f"point {k}: dtype {v!r} is not one of {POINT_DTYPES}")
        return Scheme({**self.dtypes, **updates}, self.placement, self.unmatched)

    def key(self) -> tuple[tuple[str, str], ...]:
        """Hashable identity (for caches)."""
        return tuple(sorted(self.dtypes.items()))


def build_scheme(graph: QuantGraph, settings: QuantSettings | None = None) -> Scheme:
    """Give every point of ``graph`` the dtype that ``settings`` ask for."""
    s = settings or QuantSettings()
    overrides = {o.node: o for o in s.node_overrides}
    known = set(graph.nodes)
    named = [*overrides, *s.run_on_cpu, *s.run_on_bpu]
    unmatched = tuple(dict.fromkeys(n for n in named if n not in known))
    if unmatched:
        # said once, as a note of the analysis and as PTQ203; not on every scheme built
        log.debug("nodes named in the config but absent from the model: %s", ", ".join(unmatched))

    softmax_bpu = s.softmax_input_int8 or s.softmax_output_int8
    placement: dict[str, str] = {}
    in_dtype: dict[str, str] = {}
    out_dtype: dict[str, str] = {}
    for node in graph.nodes.values():
        if not node.quantized:
            continue
        on = "BPU"
        if node.op_type in FLOAT_BY_DEFAULT and not softmax_bpu:
            on = "CPU"
        if node.name in s.run_on_cpu:
            on = "CPU"
        if node.name in s.run_on_bpu:
            on = "BPU"
        o = overrides.get(node.name)
        if o is not None and o.on is not None:
            on = o.on  # node_info wins over run_on_cpu / run_on_bpu (reference §1)
        placement[node.name] = on
        base = "int16" if s.set_all_nodes_int16 else "int8"
        if node.op_type == "Softmax":
            base = (
                "int8" if s.softmax_input_int8 else ("int16" if s.set_all_nodes_int16 else "float")
            )
        in_dtype[node.name] = (
            (o.input_dtype if o and o.input_dtype else base) if on == "BPU" else "float"
        )
        if o is not None and o.output_dtype is not None and on == "BPU":
            out_dtype[node.name] = o.output_dtype

    dtypes: dict[str, str] = {}
    for key, p in graph.points.items():
        if p.kind == "activation":
            widths = [in_dtype.get(n, "float") for n in p.nodes]
            # the producer's OutputType, looking through Relu/Reshape/... (fused into it)
            producer = _npu_source(graph, p.tensor, placement)
            if producer in out_dtype and any(w != "float" for w in widths):
                widths.append(out_dtype[producer])
            dtype = max(widths, key=_WIDTH.__getitem__, default="float")
            if dtype == "float" and p.tensor not in graph.outputs:
                # read only on the CPU: an NPU producer still writes it in int8 (or int16)
                source = _npu_source(graph, p.tensor, placement)
                if source is not None:
                    dtype = out_dtype.get(source, "int16" if s.set_all_nodes_int16 else "int8")
            dtypes[key] = dtype
        elif p.kind == "weight":
            dtypes[key] = "int8" if placement.get(p.nodes[0]) == "BPU" else "float"
        elif p.kind == "bias":
            dtypes[key] = "int32" if placement.get(p.nodes[0]) == "BPU" else "float"
        else:  # output
            producer = p.nodes[0]
            node = graph.nodes[producer]
            on_bpu = placement.get(producer) == "BPU"
            if node.op_type == "Softmax":
                want = "int8" if s.softmax_output_int8 else "float"
            else:
                want = "int8" if s.set_model_output_int8 else "float"
            if producer in out_dtype and (want != "float" or s.set_model_output_int8):
                want = out_dtype[producer]
            if p.tensor not in graph.outputs and node.op_type != "Softmax":
                want = "float"
            dtypes[key] = want if on_bpu else "float"
    return Scheme(dtypes, placement, unmatched)


def _npu_source(graph: QuantGraph, tensor: str, placement: dict[str, str]) -> str | None:
    """The NPU node whose output ``tensor`` is, looking through the ops that only move or
    clamp data (Relu, Reshape, Flatten, MaxPool... run inside the NPU segment)."""
    seen = 0
    while seen < 64:
        seen += 1
        name = graph.producer.get(tensor)
        if name is None:
            return None
        node = graph.nodes[name]
        if node.quantized:
            return name if placement.get(name) == "BPU" else None
        data = [t for t in node.inputs[:1] if t and t not in graph.initializers]
        if not data:
            return None
        tensor = data[0]
    return None


def node_points(
    graph: QuantGraph, scheme: Scheme, node: str, target: str = "both"
) -> tuple[str, ...]:
    """A node's own points under ``scheme``: its activation inputs and/or weight and bias
    (``QuantGraph.node_points``), plus, for activations, the outputs it hands to CPU-only
    consumers in int8 (the NPU boundary rounding that belongs to the producer)."""
    keys = list(graph.node_points(node, target))
    if target in ("activation", "both"):
        for key, p in graph.points.items():
            if p.kind != "activation" or scheme.dtype(key) == "float" or key in keys:
                continue
            cpu_only = all(scheme.placement.get(n) != "BPU" for n in p.nodes)
            if cpu_only and _npu_source(graph, p.tensor, dict(scheme.placement)) == node:
                keys.append(key)
    return tuple(keys)


def widen_node(graph: QuantGraph, scheme: Scheme, node: str) -> Scheme:
    """``scheme`` with ``node`` at int16 as ``node_info`` InputType/OutputType int16 asks: its
    int8 activation inputs, the int8 points on its own outputs (read by its consumers, or a
    model output) and the int8 tensors it hands to the CPU all widen to int16; weights stay
    int8 and float points stay float (the converter widens only what it quantizes)."""
    keys = set(node_points(graph, scheme, node, "activation"))
    placement = dict(scheme.placement)
    for key, p in graph.points.items():
        if p.kind in ("activation", "output") and _npu_source(graph, p.tensor, placement) == node:
            keys.add(key)
    return scheme.with_dtypes({k: "int16" for k in sorted(keys) if scheme.dtype(k) == "int8"})
