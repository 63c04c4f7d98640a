"""Tiny onnx.helper models and samples for the quant and analysis tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _init(name: str, a: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name=name)


def small_cnn(
    seed: int = 0,
    *,
    wide_channel: float | None = None,
    opset: int = 13,
    head_bias: float = 0.0,
) -> onnx.ModelProto:
    """x[N,3,8,8] -> Conv(8) -> Relu -> depthwise Conv -> Relu -> Add(skip) -> Concat
    -> GlobalAveragePool -> Flatten -> Gemm(5) -> Softmax.

    ``wide_channel`` scales channel 0 of the depthwise weight (a per-tensor weight hazard);
    ``head_bias`` is added to the Gemm's bias (a bias far above ``s_in * s_w``).
    """
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.3, (8, 3, 3, 3))
    b1 = rng.normal(0, 0.1, 8)
    wd = rng.normal(0, 0.3, (8, 1, 3, 3))
    if wide_channel is not None:
        wd[0] *= wide_channel
    w3 = rng.normal(0, 0.3, (5, 16))
    b3 = rng.normal(0, 0.1, 5) + head_bias * np.arange(1, 6) / 5
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "wd"], ["c2"], name="dw", pads=[1, 1, 1, 1], group=8),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Add", ["r1", "r2"], ["a"], name="add"),
        helper.make_node("Concat", ["a", "r1"], ["cat"], name="concat", axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "w3", "b3"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["prob"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "small_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 5])],
        initializer=[
            _init("w1", w1),
            _init("b1", b1),
            _init("wd", wd),
            _init("w3", w3),
            _init("b3", b3),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def identity_conv(weight: np.ndarray) -> onnx.ModelProto:
    """y = Conv(x, weight) with 1x1 kernels and no bias (for per-channel weight tests)."""
    cout, cin = weight.shape[:2]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, 2, 2])],
        initializer=[_init("w", weight)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def samples(
    n: int, seed: int = 1, shape: tuple[int, ...] = (1, 3, 8, 8)
) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(0, 1, shape).astype(np.float32)} for _ in range(n)]
