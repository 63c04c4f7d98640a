from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from ptqtui.rules import ptq001_channel_order_mismatch as rule

from ptqtui.check.facts.batchnorm import BatchNormProbe, paired_gain_z, running_stats
from ptqtui.check.facts.probe import SWAPPED
from ptqtui.check.findings import Severity
from ptqtui.inputs.model import build_graph
from tests.check.factories import MEAN, SCALE, SIZE, make_context, natural_images, to_nchw


def _normalised(images: list[np.ndarray]) -> np.ndarray:
    x = np.concatenate(to_nchw(images)).astype(np.float64)
    return (x - np.reshape(MEAN, (1, 3, 1, 1))) * np.reshape(SCALE, (1, 3, 1, 1))


def bn_head(tmp_path) -> onnx.ModelProto:
    """images -> Conv -> BatchNormalization (running stats of RGB training images) -> Sigmoid,
    the layout a Paddle export keeps (BN not folded)."""
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.4, (8, 3, 3, 3)).astype(np.float32)
    b = np.zeros(8, np.float32)
    conv = helper.make_graph(
        [helper.make_node("Conv", ["images", "w", "b"], ["c"], pads=[1, 1, 1, 1])],
        "conv",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    import onnxruntime as ort

    probe = helper.make_model(conv, opset_imports=[helper.make_opsetid("", 13)])
    probe.ir_version = 8
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    training = _normalised(natural_images(40, seed=7)).astype(np.float32)
    (c,) = session.run(None, {"images": training})
    mean, var = c.mean(axis=(0, 2, 3)), c.var(axis=(0, 2, 3))
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(b, "b"),
        numpy_helper.from_array(np.ones(8, np.float32), "gamma"),
        numpy_helper.from_array(np.zeros(8, np.float32), "beta"),
        numpy_helper.from_array(mean.astype(np.float32), "mean"),
        numpy_helper.from_array(var.astype(np.float32), "var"),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["images", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node(
                "BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["n"], name="bn"
            ),
            helper.make_node("Sigmoid", ["n"], ["heat"]),
        ],
        "bn_head",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("heat", TensorProto.FLOAT, ["N", 8, SIZE, SIZE])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _deviations(model, images) -> list[float]:
    graph = build_graph(model)
    probe = BatchNormProbe(graph, running_stats(graph))
    return [probe.deviation({"images": x[None].astype(np.float32)}) for x in images]


def test_training_order_is_closer_to_the_running_statistics(tmp_path):
    model = bn_head(tmp_path)
    x = _normalised(natural_images(12, seed=1))
    swapped = _normalised([im[:, :, ::-1] for im in natural_images(12, seed=1)])
    z = paired_gain_z(_deviations(model, x), _deviations(model, swapped))
    assert z is not None and z <= -2.0  # swapping moves the data away from the training's


def test_ptq001_critical_with_batchnorm_confirming_the_swap(tmp_path):
    calib = to_nchw([im[:, :, ::-1] for im in natural_images(20)])
    ctx = make_context(tmp_path, calib=calib, model=bn_head(tmp_path))
    [verdict] = ctx.probe
    assert verdict.score(SWAPPED).bn_gain_z >= 2.0
    [finding] = rule.check(ctx)
    assert finding.severity is Severity.CRITICAL
    assert any("BatchNormalization" in e.what for e in finding.evidence)


def test_ptq001_quiet_with_batchnorm_on_data_in_the_training_order(tmp_path):
    ctx = make_context(tmp_path, model=bn_head(tmp_path))
    [verdict] = ctx.probe
    assert verdict.score(SWAPPED).bn_gain_z <= -2.0
    assert rule.check(ctx) == []


def test_folded_models_have_no_running_statistics(tmp_path):
    from tests.check.factories import heatmap_model

    model = heatmap_model()
    assert running_stats(build_graph(model)) == ()
