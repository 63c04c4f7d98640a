"""Models the benchmarks run: a MobileNetV2-sized network built with onnx.helper (random
weights: time and memory do not depend on them) and the demo model when it exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
DEMO_MODEL = ROOT / "demo_data" / "model.onnx"

# MobileNetV2 (t, c, n, s): expansion, output channels, repeats, first stride
MBV2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
        (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip


def mobilenet_v2(size: int = 224, seed: int = 0) -> onnx.ModelProto:
    """MobileNetV2 1.0 topology (BN folded, ReLU6 as Clip), 3.5 M parameters, 1000 classes."""
    rng = np.random.default_rng(seed)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    count = [0]

    def const(name: str, a: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(a.astype(np.float32), name))
        return name

    def conv(x: str, cin: int, cout: int, k: int, stride: int, group: int, act: bool) -> str:
        count[0] += 1
        i = count[0]
        fan_in = cin // group * k * k
        w = rng.normal(0, np.sqrt(2.0 / fan_in), (cout, cin // group, k, k))
        b = rng.normal(0, 0.05, cout)
        y = f"conv{i}"
        pad = k // 2
        nodes.append(
            helper.make_node(
                "Conv",
                [x, const(f"w{i}", w), const(f"b{i}", b)],
                [y],
                name=f"Conv_{i}",
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=[pad] * 4,
                group=group,
            )
        )
        if not act:
            return y
        nodes.append(
            helper.make_node("Clip", [y, "relu6_lo", "relu6_hi"], [f"relu{i}"], name=f"Relu6_{i}")
        )
        return f"relu{i}"

    const("relu6_lo", np.array(0.0))
    const("relu6_hi", np.array(6.0))
    x = conv("images", 3, 32, 3, 2, 1, True)
    cin = 32
    for t, c, n, s in MBV2:
        for r in range(n):
            stride = s if r == 0 else 1
            hidden = cin * t
            y = x
            if t != 1:
                y = conv(y, cin, hidden, 1, 1, 1, True)
            y = conv(y, hidden, hidden, 3, stride, hidden, True)
            y = conv(y, hidden, c, 1, 1, 1, False)
            if stride == 1 and cin == c:
                out = f"add{count[0]}"
                nodes.append(helper.make_node("Add", [x, y], [out], name=f"Add_{count[0]}"))
                y = out
            x, cin = y, c
    x = conv(x, cin, 1280, 1, 1, 1, True)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"], name="GlobalAveragePool"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="Flatten"))
    w = rng.normal(0, np.sqrt(1.0 / 1280), (1000, 1280))
    nodes.append(
        helper.make_node(
            "Gemm",
            ["flat", const("fc_w", w), const("fc_b", np.zeros(1000))],
            ["logits"],
            name="Gemm_fc",
            transB=1,
        )
    )
    nodes.append(helper.make_node("Softmax", ["logits"], ["prob"], name="Softmax", axis=1))
    graph = helper.make_graph(
        nodes,
        "mobilenet_v2",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 1000])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def demo_model() -> onnx.ModelProto | None:
    return onnx.load(DEMO_MODEL) if DEMO_MODEL.exists() else None


def random_samples(model: onnx.ModelProto, n: int, seed: int = 0):
    """``n`` samples for the model's first input, generated one at a time (bounded memory)."""
    inp = model.graph.input[0]
    shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {inp.name: rng.normal(0, 1, shape).astype(np.float32)}
