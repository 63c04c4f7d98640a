"""The fake-quant simulator: one rewritten graph, one onnxruntime session, every what-if a run.

Every activation and output point becomes a gated QuantizeLinear/DequantizeLinear pair whose
parameters are graph inputs::

    y = If(on, then=If(wide, then=DQ16(Q16(x, s, zp16)), else=DQ8(Q8(x, s, zp8))), else=x)

``on`` switches the point between quantized and exactly float (the float branch is an
Identity: a switched-off point costs no arithmetic), ``wide`` picks int16 over int8, ``s`` and
the zero points come from the calibration. int16 uses the ``com.microsoft`` Q/DQ, which
onnxruntime implements for int8 and int16 and per-axis scales at any opset (the standard ops
need opset 21 for int16 and 13 for an axis). Weights are a
gated per-channel int8 Q/DQ (``axis`` = the output-channel axis; per-tensor is the same scale
in every channel); biases round to ``s_in * s_w`` in int32 (Div/Round/Mul) after an additive
correction input (bias correction). A dtype, a threshold or a calibration method changes by
feeding other values, never by re-exporting the model or opening a new session. Graph
optimisation is off, so every tensor keeps the model's name and any of them can be fetched.

The rewritten graph is loaded twice, once, when the simulator is built: ``session`` exposes
every tensor (observation, node table), ``lean_session`` only the model outputs (every
what-if measured at the outputs: sensitivity, curve, sweep), because exposed tensors cannot
share memory and cost a mobile CNN about 40 % of a pass. No what-if ever opens a session.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ptqtui.quant.graph import Point, QuantGraph
from ptqtui.quant.qparams import activation_qparams, weight_scales
from ptqtui.quant.scheme import QuantSettings, Scheme, build_scheme

if TYPE_CHECKING:
    from ptqtui.quant.calibrate import Calibration

MS_DOMAIN = "com.microsoft"
_FEED_CACHE = 16  # (scheme, calibration) feed dicts kept
_REF_CACHE = 4096  # float reference outputs kept (model outputs only: small)


class Simulator:
    """Owns the fake-quant graph of one model and the onnxruntime session that runs it."""

    def __init__(
        self,
        model: onnx.ModelProto,
        calibration: Calibration | None = None,
        *,
        intra_op_threads: int | None = None,
    ) -> None:
        import onnxruntime as ort  # lazily: the TUI imports this module and must start fast

        self.graph = QuantGraph(model)
        self.calibration = calibration
        self.points: tuple[Point, ...] = tuple(self.graph.points.values())
        self._index = {p.key: i for i, p in enumerate(self.points)}
        self.fq_model = build_fakequant_model(self.graph)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.log_severity_level = 3
        if intra_op_threads:
            opts.intra_op_num_threads = intra_op_threads
        self.session = ort.InferenceSession(
            self.fq_model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
        self.available = frozenset(o.name for o in self.session.get_outputs())
        # The same graph exposing only the model outputs: a tensor that is a graph output is
        # allocated afresh on every run and never shares memory, which costs a MobileNetV2
        # about 40 % of a pass. Every what-if measured at the model outputs runs here.
        lean = onnx.ModelProto()
        lean.CopyFrom(self.fq_model)
        del lean.graph.output[len(self.graph.outputs) :]
        self.lean_session = ort.InferenceSession(
            lean.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
        self._lean_outputs = frozenset(self.graph.outputs)
        self._feeds: OrderedDict[Hashable, tuple[object, dict[str, np.ndarray]]] = OrderedDict()
        self._refs: OrderedDict[Hashable, dict[str, np.ndarray]] = OrderedDict()
        self._float_feeds = self._make_feeds(None, None)
        self.forward_passes = 0  # runs so far: analyses report their cost in these

    # ------------------------------------------------------------------ names
    @property
    def inputs(self) -> tuple[str, ...]:
        return self.graph.inputs

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.graph.outputs

    def observed_tensors(self) -> list[str]:
        """Tensors whose ranges calibration needs: every activation and output point."""
        return list(
            dict.fromkeys(p.tensor for p in self.points if p.kind in ("activation", "output"))
        )

    def rounded_name(self, key: str) -> str:
        """Name of the tensor an activation point hands to its consumers (rounded when on)."""
        p = self.graph.points[key]
        if p.kind == "output":
            return p.tensor
        if p.kind != "activation":
            raise ValueError(f"{key} is not an activation or output point")
        return f"{p.tensor}__q{self._index[key]}"

    def scheme(self, settings: QuantSettings | None = None) -> Scheme:
        """The scheme ``settings`` ask for on this model."""
        return build_scheme(self.graph, settings)

    # ------------------------------------------------------------------ running
    def run(
        self,
        inputs: Mapping[str, np.ndarray],
        scheme: Scheme | None = None,
        *,
        calibration: Calibration | None = None,
        outputs: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Outputs (model outputs unless ``outputs`` names others) under ``scheme``.

        ``scheme=None`` runs the float model; ``calibration`` defaults to the simulator's.
        """
        names = list(outputs) if outputs is not None else list(self.outputs)
        missing = [n for n in names if n not in self.available]
        if missing:
            raise KeyError(f"tensors not exposed by the simulator: {', '.join(missing[:5])}")
        feeds = dict(self._feeds_for(scheme, calibration))
        for name in self.inputs:
            feeds[name] = np.asarray(inputs[name])
        session = self.lean_session if set(names) <= self._lean_outputs else self.session
        values = session.run(names, feeds)
        self.forward_passes += 1
        return dict(zip(names, values, strict=True))

    def run_float(
        self, inputs: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        return self.run(inputs, None, outputs=outputs)

    def reference(
        self, inputs: Mapping[str, np.ndarray], *, key: Hashable | None = None
    ) -> dict[str, np.ndarray]:
        """Float model outputs of one sample, computed once and cached (by ``key`` or content)."""
        k = key if key is not None else sample_digest(inputs)
        hit = self._refs.get(k)
        if hit is not None:
            self._refs.move_to_end(k)
            return hit
        values = self.run_float(inputs)
        self._refs[k] = values
        if len(self._refs) > _REF_CACHE:
            self._refs.popitem(last=False)
        return values

    # ------------------------------------------------------------------ feeds
    def _feeds_for(
        self, scheme: Scheme | None, calibration: Calibration | None
    ) -> dict[str, np.ndarray]:
        if scheme is None:
            return self._float_feeds
        cal = calibration if calibration is not None else self.calibration
        if cal is None and scheme.active():
            raise ValueError("a quantized scheme needs a calibration")
        key = (id(cal), scheme.key())
        hit = self._feeds.get(key)
        if hit is not None and hit[0] is cal:
            self._feeds.move_to_end(key)
            return hit[1]
        feeds = self._make_feeds(scheme, cal)
        self._feeds[key] = (cal, feeds)
        if len(self._feeds) > _FEED_CACHE:
            self._feeds.popitem(last=False)
        return feeds

    def _make_feeds(self, scheme: Scheme | None, cal: Calibration | None) -> dict[str, np.ndarray]:
        feeds: dict[str, np.ndarray] = {}
        act_scale: dict[str, float] = {}
        for i, p in enumerate(self.points):
            dtype = scheme.dtype(p.key) if scheme is not None else "float"
            on = dtype != "float"
            if on and p.kind in ("activation", "output"):
                # a point calibration never saw (no sample reached it) cannot be rounded
                on = cal is not None and p.key in cal.activations
            feeds[f"__q{i}_on"] = np.array(on)
            if p.kind in ("activation", "output"):
                s, zp = 1.0, 0
                if on and cal is not None:
                    qp = activation_qparams(cal.activations[p.key], dtype)
                    s, zp = qp.scale, qp.zero_point
                    act_scale[p.key] = s
                elif cal is not None and p.key in cal.activations:
                    act_scale[p.key] = activation_qparams(cal.activations[p.key], "int8").scale
                wide = dtype == "int16"
                feeds[f"__q{i}_wide"] = np.array(wide)
                feeds[f"__q{i}_s"] = np.array(s, np.float32)
                feeds[f"__q{i}_zp8"] = np.array(0 if wide else zp, np.int8)
                feeds[f"__q{i}_zp16"] = np.array(zp if wide else 0, np.int16)
            elif p.kind == "weight":
                reduce = bool(cal is not None and cal.reduce_range_weights)
                if cal is not None and p.key in cal.weights:
                    s = weight_scales(cal.weights[p.key], "int8", reduce)
                else:
                    s = np.ones(p.channels, np.float32)
                feeds[f"__q{i}_s"] = s
        # biases last: their scale is s_in * s_w of the owner node
        for i, p in enumerate(self.points):
            if p.kind != "bias":
                continue
            node = self.graph.nodes[p.nodes[0]]
            bias_scale = np.ones(p.channels, np.float32)
            if cal is not None and node.weight_point is not None and node.act_points:
                s_in = act_scale.get(node.act_points[0], 1.0)
                s_w = feeds[f"__q{self._index[node.weight_point]}_s"]
                bias_scale = (s_in * s_w).astype(np.float32)
            feeds[f"__q{i}_s"] = np.maximum(bias_scale, np.float32(1e-30))
            delta = None if cal is None else cal.bias_deltas.get(p.key)
            feeds[f"__q{i}_d"] = (
                np.zeros(p.channels, np.float32) if delta is None else delta.astype(np.float32)
            )
        return feeds


def sample_digest(inputs: Mapping[str, np.ndarray]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(inputs):
        a = np.ascontiguousarray(inputs[name])
        h.update(name.encode())
        h.update(str(a.shape).encode() + a.dtype.str.encode())
        h.update(a.data)
    return h.hexdigest()


def build_fakequant_model(graph: QuantGraph) -> onnx.ModelProto:
    """The float model with one switchable fake-quant chain per point (see module docstring)."""
    src = graph.model
    g = src.graph
    new_inputs: list[onnx.ValueInfoProto] = []
    before: list[onnx.NodeProto] = []  # chains on graph inputs, weights and biases
    after: dict[str, list[onnx.NodeProto]] = {}  # producer tensor -> chains to emit after it
    consumer_rename: dict[str, str] = {}  # activation tensor -> its fake-quant output
    producer_rename: dict[str, str] = {}  # output-point tensor -> the producer's raw name
    node_input_rename: dict[tuple[str, int], str] = {}  # (node, input position) -> new name
    f32, boolean = TensorProto.FLOAT, TensorProto.BOOL
    zero_points: list[onnx.TensorProto] = []

    def branch(name: str, nodes: list[onnx.NodeProto], out: str) -> onnx.GraphProto:
        return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(out, f32, None)])

    def qdq(p: str, x: str, s: str, zp: str, domain: str, **axis: int) -> list[onnx.NodeProto]:
        return [
            helper.make_node(
                "QuantizeLinear", [x, s, zp], [f"{p}_q"], name=f"{p}/Q", domain=domain, **axis
            ),
            helper.make_node(
                "DequantizeLinear",
                [f"{p}_q", s, zp],
                [f"{p}_dq"],
                name=f"{p}/DQ",
                domain=domain,
                **axis,
            ),
        ]

    def chain(i: int, x: str, y: str) -> list[onnx.NodeProto]:
        """Activation or output point: gated int8 / int16 Q/DQ."""
        on, wide, s = f"__q{i}_on", f"__q{i}_wide", f"__q{i}_s"
        zp8, zp16 = f"__q{i}_zp8", f"__q{i}_zp16"
        new_inputs.append(helper.make_tensor_value_info(on, boolean, []))
        new_inputs.append(helper.make_tensor_value_info(wide, boolean, []))
        new_inputs.append(helper.make_tensor_value_info(s, f32, []))
        new_inputs.append(helper.make_tensor_value_info(zp8, TensorProto.INT8, []))
        new_inputs.append(helper.make_tensor_value_info(zp16, TensorProto.INT16, []))
        p = f"__q{i}"
        g8 = branch(f"{p}_int8", qdq(f"{p}_8", x, s, zp8, MS_DOMAIN), f"{p}_8_dq")
        g16 = branch(f"{p}_int16", qdq(f"{p}_16", x, s, zp16, MS_DOMAIN), f"{p}_16_dq")
        pick = helper.make_node(
            "If", [wide], [f"{p}_fq"], name=f"{p}/IfWide", then_branch=g16, else_branch=g8
        )
        quant = branch(f"{p}_on", [pick], f"{p}_fq")
        flt = branch(
            f"{p}_off", [helper.make_node("Identity", [x], [f"{p}_id"], name=f"{p}/Id")], f"{p}_id"
        )
        return [
            helper.make_node("If", [on], [y], name=f"{p}/If", then_branch=quant, else_branch=flt)
        ]

    def weight_chain(i: int, p: Point, x: str, y: str) -> list[onnx.NodeProto]:
        """Weight point: gated symmetric int8 Q/DQ per output channel."""
        on, s, zp = f"__q{i}_on", f"__q{i}_s", f"__q{i}_zp"
        new_inputs.append(helper.make_tensor_value_info(on, boolean, []))
        new_inputs.append(helper.make_tensor_value_info(s, f32, [p.channels]))
        zero_points.append(numpy_helper.from_array(np.zeros(p.channels, np.int8), zp))
        q = f"__q{i}"
        quant = branch(f"{q}_on", qdq(f"{q}_w", x, s, zp, MS_DOMAIN, axis=p.axis), f"{q}_w_dq")
        flt = branch(
            f"{q}_off", [helper.make_node("Identity", [x], [f"{q}_id"], name=f"{q}/Id")], f"{q}_id"
        )
        return [
            helper.make_node("If", [on], [y], name=f"{q}/If", then_branch=quant, else_branch=flt)
        ]

    for i, p in enumerate(graph.points.values()):
        if p.kind == "output":
            raw = f"{p.tensor}__raw{i}"
            producer_rename[p.tensor] = raw
            after.setdefault(p.tensor, []).extend(chain(i, raw, p.tensor))
    for i, p in enumerate(graph.points.values()):
        if p.kind == "activation":
            y = f"{p.tensor}__q{i}"
            consumer_rename[p.tensor] = y
            nodes = chain(i, p.tensor, y)
            if p.tensor in graph.producer:
                after.setdefault(p.tensor, []).extend(nodes)
            else:
                before.extend(nodes)
        elif p.kind == "weight":
            y = f"{p.tensor}__wq{i}"
            before.extend(weight_chain(i, p, p.tensor, y))
            node_input_rename[(p.nodes[0], 1)] = y
        elif p.kind == "bias":
            on, s, d = f"__q{i}_on", f"__q{i}_s", f"__q{i}_d"
            new_inputs.append(helper.make_tensor_value_info(on, boolean, []))
            new_inputs.append(helper.make_tensor_value_info(s, f32, [p.channels]))
            new_inputs.append(helper.make_tensor_value_info(d, f32, [p.channels]))
            q = f"__q{i}"
            before += [
                helper.make_node("Add", [p.tensor, d], [f"{q}_corr"], name=f"{q}/Add"),
                helper.make_node("Div", [f"{q}_corr", s], [f"{q}_div"], name=f"{q}/Div"),
                helper.make_node("Round", [f"{q}_div"], [f"{q}_round"], name=f"{q}/Round"),
                helper.make_node("Mul", [f"{q}_round", s], [f"{q}_fq"], name=f"{q}/Mul"),
                helper.make_node(
                    "Where", [on, f"{q}_fq", f"{q}_corr"], [f"{q}_out"], name=f"{q}/Where"
                ),
            ]
            node_input_rename[(p.nodes[0], 2)] = f"{q}_out"

    nodes: list[onnx.NodeProto] = list(before)
    for node in g.node:
        n = onnx.NodeProto()
        n.CopyFrom(node)
        for pos, t in enumerate(n.input):
            renamed = node_input_rename.get((n.name, pos))
            if renamed is not None:
                n.input[pos] = renamed
            elif t in consumer_rename:
                n.input[pos] = consumer_rename[t]
        for pos, t in enumerate(n.output):
            if t in producer_rename:
                n.output[pos] = producer_rename[t]
        nodes.append(n)
        for t in node.output:
            nodes.extend(after.get(t, ()))

    exposed = list(
        dict.fromkeys(
            [
                *graph.outputs,
                *(p.tensor for p in graph.points.values() if p.kind in ("activation", "output")),
                *graph.point_node_outputs(),
                *consumer_rename.values(),
            ]
        )
    )
    outputs = [o for o in g.output]
    have = {o.name for o in outputs}
    for t in exposed:
        if t not in have and t not in graph.initializers:
            outputs.append(
                helper.make_tensor_value_info(t, graph.elem_types.get(t, TensorProto.FLOAT), None)
            )
    new_graph = helper.make_graph(
        nodes,
        g.name or "fakequant",
        [*g.input, *new_inputs],
        outputs,
        initializer=[*g.initializer, *zero_points],
    )
    opsets = [o for o in src.opset_import if o.domain != MS_DOMAIN]
    opsets.append(helper.make_opsetid(MS_DOMAIN, 1))
    model = helper.make_model(new_graph, opset_imports=opsets)
    model.ir_version = src.ir_version
    return model
