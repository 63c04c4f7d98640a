"""The fake-quant simulator: one rewritten graph, one onnxruntime session, every what-if a run.

Every quantization point becomes a small chain whose parameters are graph inputs::

    y = Where(on, Clip(Round(x / s), lo, hi) * s, x)

``on`` switches the point between quantized and exactly float; ``s``, ``lo``, ``hi`` carry the
scale and the integer bounds (with the zero point folded in). This is the arithmetic of
``DequantizeLinear(QuantizeLinear(x))`` (round half to even, saturation), written with opset 11
ops so that int8 and int16 are the same chain with other bounds: a dtype, a threshold or a
calibration method changes by feeding other values, never by re-exporting the model or opening
a new session. Weights and biases go through the same chain inside the graph; each bias also
gets an additive correction input (bias correction). Graph optimisation is off, so every
tensor keeps the model's name and any of them can be fetched.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import TensorProto, helper

from ptqtui.quant.graph import Point, QuantGraph
from ptqtui.quant.qparams import activation_qparams, weight_qmax, weight_scales
from ptqtui.quant.scheme import QuantSettings, Scheme, build_scheme

if TYPE_CHECKING:
    from ptqtui.quant.calibrate import Calibration

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
        values = self.session.run(names, feeds)
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
                s, lo, hi = 1.0, -1.0, 1.0
                if cal is not None and p.key in cal.activations:
                    qp = activation_qparams(cal.activations[p.key], dtype if on else "int8")
                    s, lo, hi = qp.scale, qp.lo, qp.hi
                    act_scale[p.key] = s
                feeds[f"__q{i}_s"] = np.array(s, np.float32)
                feeds[f"__q{i}_lo"] = np.array(lo, np.float32)
                feeds[f"__q{i}_hi"] = np.array(hi, np.float32)
            elif p.kind == "weight":
                shape = _channel_shape(p, self.graph.initializers[p.tensor].ndim)
                wdtype = dtype if on else "int8"
                reduce = bool(cal is not None and cal.reduce_range_weights)
                if cal is not None and p.key in cal.weights:
                    s = weight_scales(cal.weights[p.key], wdtype, reduce)
                else:
                    s = np.ones(p.channels, np.float32)
                qmax = weight_qmax(wdtype, reduce)
                feeds[f"__q{i}_s"] = s.reshape(shape)
                feeds[f"__q{i}_lo"] = np.array(-qmax, np.float32)
                feeds[f"__q{i}_hi"] = np.array(qmax, np.float32)
        # biases last: their scale is s_in * s_w of the owner node
        for i, p in enumerate(self.points):
            if p.kind != "bias":
                continue
            node = self.graph.nodes[p.nodes[0]]
            bias_scale = np.ones(p.channels, np.float32)
            if cal is not None and node.weight_point is not None and node.act_points:
                s_in = act_scale.get(node.act_points[0], 1.0)
                s_w = feeds[f"__q{self._index[node.weight_point]}_s"].reshape(-1)
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


def _channel_shape(p: Point, ndim: int) -> list[int]:
    shape = [1] * ndim
    shape[p.axis] = p.channels
    return shape


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

    def chain(i: int, x: str, y: str, s_shape: list[int] | None) -> list[onnx.NodeProto]:
        on, s, lo, hi = f"__q{i}_on", f"__q{i}_s", f"__q{i}_lo", f"__q{i}_hi"
        new_inputs.append(helper.make_tensor_value_info(on, boolean, []))
        new_inputs.append(helper.make_tensor_value_info(s, f32, s_shape or []))
        new_inputs.append(helper.make_tensor_value_info(lo, f32, []))
        new_inputs.append(helper.make_tensor_value_info(hi, f32, []))
        p = f"__q{i}"
        return [
            helper.make_node("Div", [x, s], [f"{p}_div"], name=f"{p}/Div"),
            helper.make_node("Round", [f"{p}_div"], [f"{p}_round"], name=f"{p}/Round"),
            helper.make_node("Clip", [f"{p}_round", lo, hi], [f"{p}_clip"], name=f"{p}/Clip"),
            helper.make_node("Mul", [f"{p}_clip", s], [f"{p}_fq"], name=f"{p}/Mul"),
            helper.make_node("Where", [on, f"{p}_fq", x], [y], name=f"{p}/Where"),
        ]

    for i, p in enumerate(graph.points.values()):
        if p.kind == "output":
            raw = f"{p.tensor}__raw{i}"
            producer_rename[p.tensor] = raw
            after.setdefault(p.tensor, []).extend(chain(i, raw, p.tensor, None))
    for i, p in enumerate(graph.points.values()):
        if p.kind == "activation":
            y = f"{p.tensor}__q{i}"
            consumer_rename[p.tensor] = y
            nodes = chain(i, p.tensor, y, None)
            if p.tensor in graph.producer:
                after.setdefault(p.tensor, []).extend(nodes)
            else:
                before.extend(nodes)
        elif p.kind == "weight":
            ndim = graph.initializers[p.tensor].ndim
            y = f"{p.tensor}__wq{i}"
            before.extend(chain(i, p.tensor, y, _channel_shape(p, ndim)))
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
        initializer=list(g.initializer),
    )
    model = helper.make_model(new_graph, opset_imports=list(src.opset_import))
    model.ir_version = src.ir_version
    return model
