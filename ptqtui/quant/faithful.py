"""Faithfulness: the simulator's fake-quant outputs against an int8 execution of the same scheme.

``export_qdq`` writes the scheme as a standard QDQ model with the simulator's own scales and
zero points: int8 weights and int32 biases as initializers behind DequantizeLinear, a
QuantizeLinear/DequantizeLinear pair on every quantized activation and output point. Run with
onnxruntime's graph optimisations on, the pairs fuse into its integer kernels (QLinearConv,
QGemm, ...): an int8 execution the simulator did not write.

Where a weighted node's output reaches an activation point through a Relu only, the export
also rounds the node's output with that point's parameters: ``Relu`` commutes with a
symmetric or zero-point rounding, so the values are unchanged, and onnxruntime can then fuse
the node into an integer kernel instead of leaving it in float.

``compare(..., kernels=False)`` runs the same export with basic optimisations only (every
Q/DQ as written, in float): it must equal the simulator, which checks placement, scales, zero
points and the weight and bias rounding. ``ulp_control`` measures how far float rounding
alone moves the comparison on a model (docs/thresholds.md, "Faithfulness").

Backend hazard: on x86 CPUs without VNNI, onnxruntime's u8s8 kernels add pairs of u8 x s8
products in int16 with saturation. With full 8-bit weights (per-channel weights use the whole
range in every channel) the sums saturate and the outputs drift from the exact integer result:
an onnxruntime artefact, not a quantization error of the model. ``reduce_range`` weights
(7 bits) cannot saturate. ``backend_agreement`` measures both, so the effect is reported as
what it is and never blamed on the model's layers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ptqtui.ortlog import session_options
from ptqtui.quant import metrics
from ptqtui.quant.qparams import activation_qparams, weight_qmax, weight_scales

if TYPE_CHECKING:
    from ptqtui.quant.calibrate import Calibration
    from ptqtui.quant.scheme import Scheme
    from ptqtui.quant.simulate import Simulator

PASS_THROUGH = frozenset({"Relu"})
MS_DOMAIN = "com.microsoft"
HEADS = frozenset({"Sigmoid", "Softmax"})  # squashing heads: compare their logits too


def export_qdq(
    sim: Simulator, cal: Calibration, scheme: Scheme, expose: Sequence[str] = ()
) -> onnx.ModelProto:
    """The scheme as a QDQ model (int8 points only; int16 and float points stay float); each
    activation point key of ``expose`` adds its rounded tensor as an output, named as the
    simulator names it (``Simulator.rounded_name``)."""
    graph = sim.graph
    per_channel = any(
        np.unique(np.asarray(v)).size > 1
        for k, v in cal.weights.items()
        if scheme.dtype(k) == "int8"
    )
    source = graph.model
    # below opset 13 the standard DequantizeLinear has no axis: per-channel weights use the
    # com.microsoft one (any opset, as the simulator's), so the model is not converted
    ms_weights = graph.opset < 13 and per_channel
    src = source.graph
    inits = {t.name: t for t in src.initializer}
    new_inits: list[onnx.TensorProto] = []
    rename_in: dict[str, str] = {}  # tensor -> rounded tensor for every consumer
    rename_pos: dict[tuple[str, int], str] = {}  # (node, input position) -> new tensor
    rename_out: dict[str, str] = {}  # output point: producer writes a raw name
    after: dict[str, list[onnx.NodeProto]] = {}  # tensor -> nodes to emit once it exists
    before: list[onnx.NodeProto] = []
    act_scale: dict[str, float] = {}

    def qdq(key: str, x: str, y: str, scale: float, zp: int) -> list[onnx.NodeProto]:
        s, z = f"{key}__s", f"{key}__zp"
        new_inits.append(numpy_helper.from_array(np.array(scale, np.float32), s))
        new_inits.append(numpy_helper.from_array(np.array(zp, np.int8), z))
        return [
            helper.make_node("QuantizeLinear", [x, s, z], [f"{key}__q"], name=f"{key}/Q"),
            helper.make_node("DequantizeLinear", [f"{key}__q", s, z], [y], name=f"{key}/DQ"),
        ]

    for i, p in enumerate(sim.points):
        if p.kind not in ("activation", "output") or scheme.dtype(p.key) != "int8":
            continue
        if p.key not in cal.activations:
            continue
        qp = activation_qparams(cal.activations[p.key], "int8")
        act_scale[p.key] = qp.scale
        key = f"__x{i}"
        if p.kind == "output":
            raw = f"{p.tensor}__raw{i}"
            rename_out[p.tensor] = raw
            after.setdefault(raw, []).extend(qdq(key, raw, p.tensor, qp.scale, qp.zero_point))
            continue
        y = sim.rounded_name(p.key) if p.key in expose else f"{p.tensor}__qdq{i}"
        rename_in[p.tensor] = y
        nodes = qdq(key, p.tensor, y, qp.scale, qp.zero_point)
        if p.tensor in graph.producer:
            after.setdefault(p.tensor, []).extend(nodes)
        else:
            before.extend(nodes)
        _round_before_relu(sim, p.tensor, key, qp.scale, qp.zero_point, rename_out, after, qdq)

    reduce = cal.reduce_range_weights
    for i, p in enumerate(sim.points):
        if p.kind != "weight" or scheme.dtype(p.key) != "int8":
            continue
        w = graph.initializers[p.tensor].astype(np.float32)
        scales = weight_scales(cal.weights[p.key], "int8", reduce)
        qmax = weight_qmax("int8", reduce)
        shape = [1] * w.ndim
        shape[p.axis] = p.channels
        q = np.clip(np.round(w / scales.reshape(shape)), -qmax, qmax).astype(np.int8)
        name = f"__w{i}"
        new_inits.append(numpy_helper.from_array(q, f"{name}__int8"))
        per_tensor = bool(np.all(scales == scales[0]))
        s = np.array(scales[0], np.float32) if per_tensor else scales
        new_inits.append(numpy_helper.from_array(s, f"{name}__s"))
        zp = np.zeros((), np.int8) if per_tensor else np.zeros(p.channels, np.int8)
        new_inits.append(numpy_helper.from_array(zp, f"{name}__zp"))
        attrs = {} if per_tensor else {"axis": p.axis}
        before.append(
            helper.make_node(
                "DequantizeLinear",
                [f"{name}__int8", f"{name}__s", f"{name}__zp"],
                [f"{name}__deq"],
                name=f"{name}/DQ",
                domain=MS_DOMAIN if ms_weights and not per_tensor else "",
                **attrs,
            )
        )
        rename_pos[(p.nodes[0], 1)] = f"{name}__deq"
        node = graph.nodes[p.nodes[0]]
        if node.bias_point is None or scheme.dtype(node.bias_point) == "float":
            continue
        in_key = node.act_points[0] if node.act_points else None
        if in_key not in act_scale:
            continue
        bp = graph.points[node.bias_point]
        b = graph.initializers[bp.tensor].astype(np.float32)
        delta = cal.bias_deltas.get(node.bias_point)
        if delta is not None:
            b = b + delta.astype(np.float32)
        bscale = (np.float32(act_scale[in_key]) * scales).astype(np.float32)
        bname = f"__b{i}"
        q_b = _int32(np.round(b.astype(np.float64) / bscale.astype(np.float64)))  # as round_bias
        new_inits.append(numpy_helper.from_array(q_b, f"{bname}__int32"))
        bzp = np.zeros((), np.int32) if per_tensor else np.zeros(bp.channels, np.int32)
        new_inits.append(
            numpy_helper.from_array(bscale[0] if per_tensor else bscale, f"{bname}__s")
        )
        new_inits.append(numpy_helper.from_array(bzp, f"{bname}__zp"))
        before.append(
            helper.make_node(
                "DequantizeLinear",
                [f"{bname}__int32", f"{bname}__s", f"{bname}__zp"],
                [f"{bname}__deq"],
                name=f"{bname}/DQ",
                domain=MS_DOMAIN if ms_weights and not per_tensor else "",
                **({} if per_tensor else {"axis": 0}),
            )
        )
        rename_pos[(node.name, 2)] = f"{bname}__deq"

    nodes: list[onnx.NodeProto] = list(before)
    for node in src.node:
        n = onnx.NodeProto()
        n.CopyFrom(node)
        for pos, t in enumerate(n.input):
            if (n.name, pos) in rename_pos:
                n.input[pos] = rename_pos[(n.name, pos)]
            elif t in rename_in and not n.name.startswith("__"):
                n.input[pos] = rename_in[t]
        for pos, t in enumerate(n.output):
            if t in rename_out:
                n.output[pos] = rename_out[t]
        nodes.append(n)
        for t in n.output:
            nodes.extend(after.get(t, ()))
    used = {t for n in nodes for t in n.input}
    kept = [t for name, t in inits.items() if name in used]
    extra = [
        helper.make_value_info(sim.rounded_name(k), onnx.TypeProto())
        for k in expose
        if sim.graph.points[k].tensor in rename_in
    ]
    g = helper.make_graph(
        nodes, src.name or "qdq", list(src.input), [*src.output, *extra], [*kept, *new_inits]
    )
    opsets = list(source.opset_import)
    if ms_weights and not any(o.domain == MS_DOMAIN for o in opsets):
        opsets.append(helper.make_opsetid(MS_DOMAIN, 1))
    model = helper.make_model(g, opset_imports=opsets)
    model.ir_version = graph.model.ir_version
    return model


def _round_before_relu(sim, tensor, key, scale, zp, rename_out, after, qdq) -> None:
    """If ``tensor`` is a Relu's output and the Relu reads a weighted node's output that
    nothing else reads, round that output too (same parameters: the values do not change)."""
    graph = sim.graph
    relu = graph.producer.get(tensor)
    if relu is None or graph.nodes[relu].op_type not in PASS_THROUGH:
        return
    x = graph.nodes[relu].inputs[0]
    producer = graph.producer.get(x)
    if producer is None or graph.nodes[producer].op_type not in ("Conv", "Gemm", "MatMul"):
        return
    readers = [n for n in graph.nodes.values() if x in n.inputs]
    if len(readers) != 1 or x in graph.outputs or x in rename_out:
        return
    raw = f"{x}__pre"
    rename_out[x] = raw
    after.setdefault(raw, []).extend(qdq(f"{key}_pre", raw, x, scale, zp))


@dataclass(frozen=True, slots=True)
class BackendAgreement:
    """Output cosine, simulator vs onnxruntime's integer kernels on the same scheme."""

    cosine_reduce_range: float  # 7-bit weights: no int16 saturation possible
    cosine_full_range: float  # 8-bit weights: exposed to u8s8 saturation without VNNI
    samples: int

    @property
    def saturation_loss(self) -> float:
        """Cosine lost to the backend alone (0 on CPUs with VNNI or on ARM)."""
        return self.cosine_reduce_range - self.cosine_full_range


def cpu_has_vnni() -> bool | None:
    """Whether this CPU has VNNI (x86 ``avx512_vnni`` / ``avx_vnni``); None where unknown."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return None
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    return "vnni" in text


def int8_session(
    model: onnx.ModelProto, threads: int | None = None, *, kernels: bool = True
):  # -> ort.InferenceSession
    """onnxruntime on ``model``: with every graph optimisation (the QDQ pairs fuse into integer
    kernels) or, ``kernels=False``, the basic ones only (every QuantizeLinear/DequantizeLinear
    runs as written, in float: the same arithmetic as the simulator's)."""
    import onnxruntime as ort

    opts = session_options()
    level = ort.GraphOptimizationLevel
    opts.graph_optimization_level = level.ORT_ENABLE_ALL if kernels else level.ORT_ENABLE_BASIC
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


@dataclass(frozen=True, slots=True)
class Agreement:
    """Mean cosine of two executions of one scheme, at the outputs and at the logits."""

    outputs: float
    logits: float | None  # the input of a final Sigmoid/Softmax (None: no such head)
    per_sample: tuple[float, ...] = ()  # output cosine of each sample (all outputs' mean)
    logits_per_sample: tuple[float, ...] = ()


def logit_points(sim: Simulator) -> tuple[str, ...]:
    """Activation points read by a model output's Sigmoid or Softmax: the logits, where a
    rounding flip is not yet amplified by the squashing function."""
    keys = []
    for out in sim.outputs:
        producer = sim.graph.producer.get(out)
        node = sim.graph.nodes.get(producer) if producer is not None else None
        if node is None or node.op_type not in HEADS or not node.inputs:
            continue
        key = f"act:{node.inputs[0]}"
        p = sim.graph.points.get(key)
        if p is not None and p.kind == "activation":
            keys.append(key)
    return tuple(keys)


def compare(
    sim: Simulator,
    cal: Calibration,
    scheme: Scheme,
    samples: Sequence[Mapping[str, np.ndarray]],
    *,
    kernels: bool = True,
) -> Agreement:
    """The simulator vs onnxruntime running the QDQ export: with its integer kernels, or
    (``kernels=False``) as float QDQ ops, which must agree to float precision."""
    expose = tuple(k for k in logit_points(sim) if k in cal.activations)
    session = int8_session(export_qdq(sim, cal, scheme, expose), kernels=kernels)
    logits = [sim.rounded_name(k) for k in expose]
    names = [o.name for o in session.get_outputs()]
    logits = [t for t in logits if t in names]
    return _agreement(
        samples,
        lambda s: sim.run(s, scheme, calibration=cal, outputs=[*sim.outputs, *logits]),
        lambda s: dict(
            zip(
                [*sim.outputs, *logits],
                session.run([*sim.outputs, *logits], {k: s[k] for k in sim.inputs}),
                strict=True,
            )
        ),
        list(sim.outputs),
        logits,
    )


def ulp_control(
    sim: Simulator,
    cal: Calibration,
    scheme: Scheme,
    samples: Sequence[Mapping[str, np.ndarray]],
    seed: int = 0,
) -> Agreement:
    """The simulator against itself with every activation range moved by one float32 ulp (a
    random direction per tensor): a requantization scale off in its last bit, the size of
    the difference between an integer kernel's fixed-point rescale and the float one, so what
    float rounding alone does to the same comparison on this model."""
    rng = np.random.default_rng(seed)

    def ulp(v: float, up: bool) -> float:
        return float(np.nextafter(np.float32(v), np.float32(np.inf if up else -np.inf)))

    moved = {}
    for k, r in cal.activations.items():
        up = bool(rng.random() < 0.5)
        moved[k] = dataclasses.replace(r, lo=ulp(r.lo, not up), hi=ulp(r.hi, up))
    other = cal.replace(activations=moved)
    logits = [sim.rounded_name(k) for k in logit_points(sim) if k in cal.activations]
    names = [*sim.outputs, *logits]
    return _agreement(
        samples,
        lambda s: sim.run(s, scheme, calibration=cal, outputs=names),
        lambda s: sim.run(s, scheme, calibration=other, outputs=names),
        list(sim.outputs),
        logits,
    )


def _agreement(samples, ours, theirs, outputs, logits) -> Agreement:
    out, lg = [], []
    for s in samples:
        a, b = ours(s), theirs(s)
        out.append(metrics.nanmean([metrics.cosine(a[n], b[n]) for n in outputs]))
        if logits:
            lg.append(metrics.nanmean([metrics.cosine(a[n], b[n]) for n in logits]))
    return Agreement(
        metrics.nanmean(out), metrics.nanmean(lg) if lg else None, tuple(out), tuple(lg)
    )


def agreement(
    sim: Simulator,
    cal: Calibration,
    scheme: Scheme,
    samples: Sequence[Mapping[str, np.ndarray]],
) -> float:
    """Mean output cosine of the simulator vs onnxruntime's int8 execution of the export."""
    return compare(sim, cal, scheme, samples).outputs


def backend_agreement(
    sim: Simulator,
    cal: Calibration,
    scheme: Scheme,
    samples: Sequence[Mapping[str, np.ndarray]],
) -> BackendAgreement:
    reduced = agreement(sim, cal.replace(reduce_range_weights=True), scheme, samples)
    full = agreement(sim, cal.replace(reduce_range_weights=False), scheme, samples)
    return BackendAgreement(reduced, full, len(samples))


def _int32(q: np.ndarray) -> np.ndarray:
    """Saturate to int32 as a 32-bit bias register does (a dead channel's tiny weight scale
    can put its bias beyond it), in float64: float32 rounds 2**31 - 1 up to 2**31, which
    the cast then wraps to -2**31, flipping a saturated positive bias to the most negative."""
    info = np.iinfo(np.int32)
    q = np.nan_to_num(np.asarray(q, np.float64), posinf=info.max, neginf=info.min)
    return np.clip(q, info.min, info.max).astype(np.int32)
