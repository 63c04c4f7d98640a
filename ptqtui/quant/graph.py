"""Which nodes of a float ONNX graph an int8 NPU quantizes, and where its quantization points are.

A *quantization point* is a place where the simulator can round a tensor to a grid:
- ``activation``: a float tensor read by a quantized node (one point per tensor, shared by
  all its quantized consumers, as a calibration node sits on a tensor in hb_mapper);
- ``weight`` / ``bias``: the weight and bias initializers of Conv, ConvTranspose, Gemm, MatMul;
- ``output``: a model output or a Softmax output (int8 only when the config asks for it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from ptqtui.errors import PtqInputError
from ptqtui.inputs.model import QUANTIZED_OPS, converter_node_name

# Ops whose float placement is the converter's default (Softmax runs on CPU on X3 unless the
# optimization flags set_Softmax_input_int8 / set_Softmax_output_int8 move it to int8).
FLOAT_BY_DEFAULT = frozenset({"Softmax"})
# Ops whose only data input is input 0 (the others are shapes, scales, sizes, axes).
DATA_INPUT_0_ONLY = frozenset({"Resize", "Upsample", "ReduceMean", "ReduceSum", "Pad", "Clip"})
WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})

FLOAT_TYPES = frozenset({onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE})


@dataclass(frozen=True, slots=True)
class Point:
    """One switchable quantization point."""

    key: str  # "act:<tensor>", "w:<node>", "b:<node>", "out:<tensor>"
    kind: str  # "activation" | "weight" | "bias" | "output"
    tensor: str  # the tensor (or initializer) it rounds
    nodes: tuple[str, ...]  # quantized consumers (activation) or owner node (weight, bias)
    channels: int = 0  # weight/bias: output channels
    axis: int = 0  # weight: output-channel axis of the initializer


@dataclass(frozen=True, slots=True)
class QNode:
    """A node of the graph, as the simulator sees it."""

    name: str
    op_type: str
    index: int  # topological position in the model
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    quantized: bool  # has quantization points (placement decided by the scheme)
    act_points: tuple[str, ...] = ()
    weight_point: str | None = None
    bias_point: str | None = None


class QuantGraph:
    """The float model (normalised: named nodes, Constant nodes folded) and its points."""

    def __init__(self, model: onnx.ModelProto) -> None:
        opset = _default_opset(model)
        if opset < 11:
            raise PtqInputError(None, f"model opset {opset} is below 11; re-export with opset 11+")
        model = _normalise(model)
        self.model = model
        self.opset = opset
        g = model.graph
        self.initializers: dict[str, np.ndarray] = {
            i.name: numpy_helper.to_array(i) for i in g.initializer
        }
        self.inputs = tuple(i.name for i in g.input if i.name not in self.initializers)
        self.outputs = tuple(o.name for o in g.output)
        self.elem_types = _elem_types(model)
        self.points: dict[str, Point] = {}
        self.nodes: dict[str, QNode] = {}
        self.producer: dict[str, str] = {}
        consumers: dict[str, list[str]] = {}
        for node in g.node:
            for t in node.output:
                self.producer[t] = node.name
        for index, node in enumerate(g.node):
            quantized = node.op_type in QUANTIZED_OPS
            acts: list[str] = []
            wp = bp = None
            if quantized:
                for pos, t in enumerate(node.input):
                    if not t or t in self.initializers:
                        continue
                    if node.op_type in DATA_INPUT_0_ONLY and pos > 0:
                        continue
                    et = self.elem_types.get(t)
                    if et is not None and et not in FLOAT_TYPES:
                        continue
                    acts.append("act:" + t)
                    consumers.setdefault(t, []).append(node.name)
                wp, bp = self._weight_points(node)
            self.nodes[node.name] = QNode(
                name=node.name,
                op_type=node.op_type,
                index=index,
                inputs=tuple(node.input),
                outputs=tuple(node.output),
                quantized=quantized,
                act_points=tuple(dict.fromkeys(acts)),
                weight_point=wp,
                bias_point=bp,
            )
        for t, users in consumers.items():
            key = "act:" + t
            self.points[key] = Point(key, "activation", t, tuple(dict.fromkeys(users)))
        out_tensors = list(self.outputs)
        for node in g.node:
            if node.op_type == "Softmax":
                out_tensors.append(node.output[0])
        for t in dict.fromkeys(out_tensors):
            if t in self.producer:
                key = "out:" + t
                self.points[key] = Point(key, "output", t, (self.producer[t],))

    def _weight_points(self, node: onnx.NodeProto) -> tuple[str | None, str | None]:
        if node.op_type not in WEIGHTED_OPS or len(node.input) < 2:
            return None, None
        w_name = node.input[1]
        w = self.initializers.get(w_name)
        if w is None or w.dtype.kind != "f" or w.ndim < 2:
            return None, None
        axis = _weight_axis(node, w.ndim)
        channels = int(w.shape[axis])
        wkey = "w:" + node.name
        self.points[wkey] = Point(wkey, "weight", w_name, (node.name,), channels, axis)
        bkey = None
        if node.op_type in ("Conv", "ConvTranspose", "Gemm") and len(node.input) > 2:
            b = self.initializers.get(node.input[2])
            if b is not None and b.ndim == 1 and b.shape[0] == channels:
                bkey = "b:" + node.name
                self.points[bkey] = Point(bkey, "bias", node.input[2], (node.name,), channels)
        return wkey, bkey

    # ------------------------------------------------------------------ queries
    def quantized_nodes(self) -> list[QNode]:
        """Nodes with at least one point, in topological order."""
        return [
            n
            for n in self.nodes.values()
            if n.quantized and (n.act_points or n.weight_point is not None)
        ]

    def node_points(self, node: str, target: str = "both") -> tuple[str, ...]:
        """The points that belong to one node: its input activations and/or weight and bias."""
        n = self.nodes[node]
        keys: list[str] = []
        if target in ("activation", "both"):
            keys += n.act_points
        if target in ("weight", "both"):
            keys += [k for k in (n.weight_point, n.bias_point) if k is not None]
        return tuple(keys)

    def point_node_outputs(self) -> list[str]:
        """Every tensor produced by a quantized node (what the node table compares)."""
        return [t for n in self.quantized_nodes() for t in n.outputs if t]


def _default_opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return 0


def _weight_axis(node: onnx.NodeProto, ndim: int) -> int:
    if node.op_type == "Conv":
        return 0
    if node.op_type == "ConvTranspose":
        return 1
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return ndim - 1  # MatMul: [.., K, N]


def _normalise(model: onnx.ModelProto) -> onnx.ModelProto:
    """Copy with every node named and Constant nodes folded into initializers."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    used = {n.name for n in g.node if n.name}
    keep = []
    for i, node in enumerate(g.node):
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            attr = next((a for a in node.attribute if a.name == "value"), None)
            if attr is not None:
                t = onnx.TensorProto()
                t.CopyFrom(attr.t)
                t.name = node.output[0]
                g.initializer.append(t)
                continue
        if not node.name:
            node.name = converter_node_name(node, i, used)  # as inputs.model names it
            used.add(node.name)
        keep.append(node)
    inits = {t.name: t for t in g.initializer}
    for node in keep:
        # a zero bias changes no float result and gives bias correction a place to go
        w = inits.get(node.input[1]) if len(node.input) > 1 else None
        if node.op_type not in ("Conv", "ConvTranspose", "Gemm") or w is None:
            continue
        if len(node.input) > 2 and node.input[2]:
            continue
        if node.op_type == "Gemm" and (len(w.dims) != 2 or len(node.input) < 2):
            continue
        axis = _weight_axis(node, len(w.dims))
        if node.op_type == "ConvTranspose":
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            channels = w.dims[1] * group
        else:
            channels = w.dims[axis]
        zero = numpy_helper.from_array(
            np.zeros(channels, dtype=np.float32), name=f"{node.name}__zero_bias"
        )
        g.initializer.append(zero)
        while len(node.input) < 3:
            node.input.append("")
        node.input[2] = zero.name
    del g.node[:]
    g.node.extend(keep)
    return m


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # shape inference is a help, not a requirement: unknown types stay unknown
        inferred = model
    types: dict[str, int] = {}
    g = inferred.graph
    for vi in [*g.input, *g.value_info, *g.output]:
        if vi.type.HasField("tensor_type"):
            types[vi.name] = vi.type.tensor_type.elem_type
    for init in g.initializer:
        types[init.name] = init.data_type
    return types
