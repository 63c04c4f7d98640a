"""Load an ONNX model and build the graph view every other stage reads."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from ptqtui.errors import PtqInputError
from ptqtui.inputs.files import check_regular_file

# Ops that compute on the NPU and read int8 (or int16) activations. Data-movement ops (Reshape,
# Transpose, Flatten, Split, Slice, Pad...), order-preserving ops (MaxPool) and activations fused
# into the producing conv (Relu, Clip) pass quantized values through unchanged: quantizing
# their inputs again would double-count, so they get no point of their own.
QUANTIZED_OPS = frozenset(
    {
        "Conv",
        "ConvTranspose",
        "Gemm",
        "MatMul",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Concat",
        "AveragePool",
        "GlobalAveragePool",
        "Resize",
        "Upsample",
        "Sigmoid",
        "Tanh",
        "HardSigmoid",
        "HardSwish",
        "LeakyRelu",
        "PRelu",
        "Elu",
        "BatchNormalization",
        "InstanceNormalization",
        "LayerNormalization",
        "ReduceMean",
        "ReduceSum",
        "Softmax",
    }
)
# Ops that may open the model's own input normalisation: x*a+b with constants.
NORMALISATION_OPS = frozenset({"Sub", "Div", "Mul", "Add", "BatchNormalization"})

ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.UINT16: "uint16",
    onnx.TensorProto.INT16: "int16",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.BOOL: "bool",
}

MAX_MODEL_BYTES = 2**31  # protobuf's limit on one message: larger .onnx files cannot be valid

Dim = int | str | None  # a fixed size, a symbolic name, or unknown


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    shape: tuple[Dim, ...] | None
    dtype: str
    layout: str | None = None  # "NCHW" | "NHWC" for 4-D image-like inputs, else None

    @property
    def static_shape(self) -> tuple[int, ...] | None:
        """The shape with a dynamic batch taken as 1; None if another dim is unknown."""
        if self.shape is None:
            return None
        dims = []
        for i, d in enumerate(self.shape):
            if isinstance(d, int) and d > 0:
                dims.append(d)
            elif i == 0:
                dims.append(1)
            else:
                return None
        return tuple(dims)


@dataclass(frozen=True, slots=True)
class NodeView:
    index: int  # topological position
    name: str
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    quantized: bool  # the simulator quantizes this node's inputs


@dataclass(frozen=True, slots=True)
class NormalisationStep:
    node: str
    op_type: str
    constant: tuple[float, ...]  # the per-channel (or scalar) constant operand


@dataclass(frozen=True, slots=True)
class InputNormalisation:
    """Constants right after an input: the model computes (x - mean) * scale itself."""

    input: str
    steps: tuple[NormalisationStep, ...]
    mean: tuple[float, ...]  # as hb_mapper mean_value
    scale: tuple[float, ...]  # as hb_mapper scale_value


@dataclass(frozen=True)
class ModelGraph:
    path: Path
    model: onnx.ModelProto  # shape-inferred
    opset: int
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    nodes: tuple[NodeView, ...]  # topological order
    initializers: frozenset[str]
    producer: dict[str, str]  # tensor -> node name
    consumers: dict[str, tuple[str, ...]]  # tensor -> node names
    value_info: dict[str, TensorInfo]
    normalisation: tuple[InputNormalisation, ...]
    notes: tuple[str, ...]  # things worth saying that did not stop the load
    aliases: dict[str, str] = field(default_factory=dict)  # '<OpType>_<index>' -> name

    def resolve_node(self, name: str) -> str | None:
        """The node a user means by `name`: its name, or the older '<OpType>_<index>' alias."""
        if name in self.node_names:
            return name
        return self.aliases.get(name)

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)

    @property
    def quantized_nodes(self) -> tuple[NodeView, ...]:
        return tuple(n for n in self.nodes if n.quantized)

    def node(self, name: str) -> NodeView:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def input(self, name: str) -> TensorInfo:
        for t in self.inputs:
            if t.name == name:
                return t
        raise KeyError(name)

    def initializer(self, name: str) -> np.ndarray:
        for init in self.model.graph.initializer:
            if init.name == name:
                return numpy_helper.to_array(init)
        raise KeyError(name)

    def tail_nodes(self) -> tuple[NodeView, ...]:
        """Nodes producing a model output, in topological order."""
        outs = {o.name for o in self.outputs}
        return tuple(n for n in self.nodes if outs.intersection(n.outputs))


def load_model(path: str | Path) -> ModelGraph:
    """Load, check and shape-infer an ONNX model (external data too)."""
    path = Path(path)
    size = check_regular_file(path, "an .onnx model file")
    if size > MAX_MODEL_BYTES:
        raise PtqInputError(
            path,
            f"{size} bytes: larger than the 2 GB a single ONNX file can hold "
            "(bigger models keep their weights in external data files)",
        )
    try:
        model = onnx.load(str(path), load_external_data=True)
    except (OSError, FileNotFoundError) as exc:
        raise PtqInputError(path, f"cannot read the model or its external data: {exc}") from exc
    except Exception as exc:  # protobuf raises its own DecodeError and friends
        raise PtqInputError(path, f"not an ONNX model ({type(exc).__name__}: {exc})") from exc
    if not model.graph.node:
        raise PtqInputError(path, "not an ONNX model: the graph has no nodes")
    return build_graph(model, path)


def build_graph(model: onnx.ModelProto, path: Path | None = None) -> ModelGraph:
    path = path or Path("<memory>")
    notes: list[str] = []
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid model"
        refusal = _onnxruntime_refusal(model)
        if refusal is not None:
            raise PtqInputError(
                path, f"the ONNX checker rejects the model: {first}; onnxruntime: {refusal}"
            ) from exc
        # a nit the checker minds and onnxruntime does not (duplicate metadata_props keys,
        # as onnxruntime's own quant_pre_process can leave): the diagnosis goes on
        notes.append(f"the ONNX checker rejects the model ({first}); onnxruntime runs it")
    except ValueError as exc:  # > 2 GB protos cannot be checked in memory
        notes.append(f"checker skipped: {exc}")
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception as exc:  # shape inference failures are not fatal: shapes stay unknown
        notes.append(f"shape inference failed: {exc}")
        inferred = model
    graph = inferred.graph
    initializers = frozenset(i.name for i in graph.initializer)
    aliases: dict[str, str] = {}
    nodes = _name_nodes(graph, notes, aliases)
    ordered = _topological(nodes, initializers, {i.name for i in graph.input}, path)
    producer = {out: n.name for n in ordered for out in n.outputs if out}
    consumers: dict[str, list[str]] = {}
    for n in ordered:
        for t in n.inputs:
            if t:
                consumers.setdefault(t, []).append(n.name)
    value_info = {
        vi.name: _tensor_info(vi) for vi in (*graph.value_info, *graph.input, *graph.output)
    }
    inputs = tuple(
        _tensor_info(i, guess_layout=True) for i in graph.input if i.name not in initializers
    )
    outputs = tuple(_tensor_info(o) for o in graph.output)
    opset = next((o.version for o in inferred.opset_import if o.domain in ("", "ai.onnx")), 0)
    frozen_consumers = {k: tuple(v) for k, v in consumers.items()}
    consts = _constants(graph)
    normalisation = tuple(
        norm
        for norm in (_leading_normalisation(t, ordered, frozen_consumers, consts) for t in inputs)
        if norm is not None
    )
    return ModelGraph(
        path=path,
        model=inferred,
        opset=opset,
        inputs=inputs,
        outputs=outputs,
        nodes=ordered,
        initializers=initializers,
        producer=producer,
        consumers=frozen_consumers,
        value_info=value_info,
        normalisation=normalisation,
        notes=tuple(notes),
        aliases=aliases,
    )


def _onnxruntime_refusal(model: onnx.ModelProto) -> str | None:
    """Why onnxruntime cannot load the model, in one line; None when it can."""
    import onnxruntime as ort  # lazy: only a model the checker rejects gets here

    from ptqtui.ortlog import session_options

    try:
        ort.InferenceSession(
            model.SerializeToString(), session_options(), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime's errors have no common base class
        text = " ".join(str(exc).split())
        return text[:300] or type(exc).__name__
    return None


def converter_node_name(node: onnx.NodeProto, index: int, used: set[str]) -> str:
    """An unnamed node's name as the converter writes it: its first output tensor's name
    (hb_mapper's logs show such nodes as '127', '130'); '<OpType>_<index>' when that is taken."""
    first = node.output[0] if node.output else ""
    if first and first not in used:
        return first
    name = legacy_node_name(node, index)
    while name in used:
        name += "_"
    return name


def legacy_node_name(node: onnx.NodeProto, index: int) -> str:
    """The name earlier ptqtui versions gave an unnamed node; accepted as an alias."""
    return f"{node.op_type}_{index}"


def _name_nodes(
    graph: onnx.GraphProto, notes: list[str], aliases: dict[str, str]
) -> list[tuple[str, onnx.NodeProto]]:
    used = {node.name for node in graph.node if node.name}
    seen: set[str] = set()
    named = []
    unnamed = 0
    for i, node in enumerate(graph.node):
        name = node.name
        if not name or name in seen:
            unnamed += 1
            name = converter_node_name(node, i, used | seen)
            legacy = legacy_node_name(node, i)
            if legacy != name and legacy not in used:
                aliases[legacy] = name
        seen.add(name)
        named.append((name, node))
    if unnamed:
        notes.append(
            f"{unnamed} node(s) had no unique name; called by their output tensor here, as the "
            "converter does"
        )
    return named


def _topological(
    nodes: list[tuple[str, onnx.NodeProto]],
    initializers: frozenset[str],
    graph_inputs: set[str],
    path: Path,
) -> tuple[NodeView, ...]:
    producer = {}
    for idx, (_, node) in enumerate(nodes):
        for out in node.output:
            if out:
                producer[out] = idx
    deps: list[set[int]] = []
    for _, node in nodes:
        deps.append({producer[t] for t in node.input if t in producer})
    users: dict[int, list[int]] = {}
    for idx, d in enumerate(deps):
        for p in d:
            users.setdefault(p, []).append(idx)
    remaining = [len(d) for d in deps]
    ready = deque(i for i, r in enumerate(remaining) if r == 0)
    order: list[int] = []
    while ready:
        idx = ready.popleft()
        order.append(idx)
        for u in users.get(idx, ()):
            remaining[u] -= 1
            if remaining[u] == 0:
                ready.append(u)
    if len(order) != len(nodes):
        raise PtqInputError(path, "the graph has a cycle; not a valid ONNX model")
    views = []
    for pos, idx in enumerate(order):
        name, node = nodes[idx]
        views.append(
            NodeView(
                index=pos,
                name=name,
                op_type=node.op_type,
                inputs=tuple(node.input),
                outputs=tuple(node.output),
                quantized=node.domain in ("", "ai.onnx") and node.op_type in QUANTIZED_OPS,
            )
        )
    return tuple(views)


def _tensor_info(vi: onnx.ValueInfoProto, *, guess_layout: bool = False) -> TensorInfo:
    t = vi.type.tensor_type
    shape: tuple[Dim, ...] | None = None
    if t.HasField("shape"):
        shape = tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim
        )
    dtype = ONNX_DTYPES.get(t.elem_type, onnx.TensorProto.DataType.Name(t.elem_type).lower())
    layout = guess_image_layout(shape) if guess_layout else None
    return TensorInfo(vi.name, shape, dtype, layout)


def guess_image_layout(shape: tuple[Dim, ...] | None) -> str | None:
    """NCHW or NHWC from where a small channel dimension sits; None when unclear."""
    if shape is None or len(shape) != 4:
        return None
    c1, c3 = shape[1], shape[3]
    small = (1, 3, 4)
    spatial = (shape[2], shape[3]) if c1 in small else (shape[1], shape[2])
    if not all(isinstance(d, int) and d > 4 for d in spatial):
        return None  # 1x16x1x1 and the like: a feature vector, not an image
    if c1 in small and c3 not in small:
        return "NCHW"
    if c3 in small and c1 not in small:
        return "NHWC"
    return None


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(attr.t)
    return consts


def _leading_normalisation(
    tensor: TensorInfo,
    nodes: tuple[NodeView, ...],
    consumers: dict[str, tuple[str, ...]],
    consts: dict[str, np.ndarray],
) -> InputNormalisation | None:
    """Follow a single-consumer chain of x*a+b ops from the input; None if there is none."""
    by_name = {n.name: n for n in nodes}
    channels = _channels(tensor)
    a = np.ones(channels or 1, dtype=np.float64)
    b = np.zeros(channels or 1, dtype=np.float64)
    steps: list[NormalisationStep] = []
    current = tensor.name
    while True:
        users = consumers.get(current, ())
        if len(users) != 1:
            break
        node = by_name[users[0]]
        if node.op_type not in NORMALISATION_OPS:
            break
        affine = _affine_of(node, current, consts, channels)
        if affine is None:
            break
        mul, add, constant = affine
        a, b = a * mul, b * mul + add
        steps.append(NormalisationStep(node.name, node.op_type, constant))
        current = node.outputs[0]
    if not steps or np.any(a == 0):
        return None
    mean = tuple(float(round(v, 6)) for v in (-b / a))
    scale = tuple(float(round(v, 8)) for v in a)
    return InputNormalisation(tensor.name, tuple(steps), mean, scale)


def _channels(tensor: TensorInfo) -> int | None:
    if tensor.shape is None or len(tensor.shape) != 4:
        return None
    dim = tensor.shape[1] if tensor.layout != "NHWC" else tensor.shape[3]
    return dim if isinstance(dim, int) and dim > 0 else None


def _per_channel(value: np.ndarray, channels: int | None) -> np.ndarray | None:
    """A constant broadcast over channels as a 1-D vector, or None if it varies otherwise."""
    flat = np.asarray(value, dtype=np.float64)
    if flat.size == 1:
        return np.full(channels or 1, float(flat.reshape(-1)[0]))
    squeezed = flat.reshape(-1)
    if channels is not None and squeezed.size == channels:
        return squeezed
    return None


def _affine_of(
    node: NodeView, x: str, consts: dict[str, np.ndarray], channels: int | None
) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]] | None:
    """(mul, add, constant) such that node(x) = x * mul + add per channel."""
    if node.op_type == "BatchNormalization":
        try:
            scale, bias, mean, var = (consts[t] for t in node.inputs[1:5])
        except KeyError:
            return None
        eps = 1e-5
        mul = np.asarray(scale, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
        add = np.asarray(bias, np.float64) - np.asarray(mean, np.float64) * mul
        return mul, add, tuple(float(v) for v in np.asarray(mean).reshape(-1))
    if len(node.inputs) != 2:
        return None
    other = node.inputs[1] if node.inputs[0] == x else node.inputs[0]
    if other not in consts:
        return None
    c = _per_channel(consts[other], channels)
    if c is None:
        return None
    ones, zeros = np.ones_like(c), np.zeros_like(c)
    x_first = node.inputs[0] == x
    if node.op_type == "Sub":
        if not x_first:
            return -ones, c, tuple(c)
        return ones, -c, tuple(c)
    if node.op_type == "Add":
        return ones, c, tuple(c)
    if node.op_type == "Mul":
        return c, zeros, tuple(c)
    if node.op_type == "Div" and x_first and np.all(c != 0):
        return 1.0 / c, zeros, tuple(c)
    return None
