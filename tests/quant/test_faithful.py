"""Faithfulness: fake-quant outputs vs onnxruntime's int8 execution of the same scheme."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from ptqtui.quant.calibrate import calibrate
from ptqtui.quant.faithful import (
    backend_agreement,
    compare,
    export_qdq,
    int8_session,
    logit_points,
    ulp_control,
)
from ptqtui.quant.observe import observe
from ptqtui.quant.qparams import ActRange
from ptqtui.quant.scheme import QuantSettings
from ptqtui.quant.simulate import Simulator

from .factories import identity_conv, samples, small_cnn

DEMO = Path(__file__).resolve().parents[2] / "demo_data"


def _setup(model, xs, per_channel):
    sim = Simulator(model)
    obs = observe(sim, xs)
    settings = QuantSettings(calibration_type="max", per_channel=per_channel)
    return sim, calibrate(sim, obs, settings), sim.scheme(settings)


@pytest.mark.parametrize("per_channel", [False, True])
def test_fake_quant_matches_onnxruntime_int8_on_a_small_cnn(per_channel):
    xs = samples(4)
    sim, cal, scheme = _setup(small_cnn(), xs, per_channel)
    result = backend_agreement(sim, cal, scheme, xs)
    assert result.cosine_reduce_range >= 0.999


def test_the_export_runs_integer_kernels():
    xs = samples(2)
    sim, cal, scheme = _setup(small_cnn(), xs, True)
    qdq = export_qdq(sim, cal, scheme)
    ops = {n.op_type for n in qdq.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_session(qdq)  # loads with every optimisation on


def _demo_samples(n):
    import cv2

    folder = DEMO / "eval"
    files = sorted(folder.rglob("*.png"))[:n] if folder.exists() else []
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
    out = []
    for f in files:
        rgb = cv2.imread(str(f))[:, :, ::-1]
        x = rgb.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        out.append({"images": ((x - mean) / std).astype(np.float32)})
    return out


@pytest.mark.skipif(not (DEMO / "model.onnx").exists(), reason="demo data not generated")
def test_faithful_on_the_demo_model():
    xs = _demo_samples(16)
    if len(xs) < 4:
        pytest.skip("demo evaluation images missing")
    model = onnx.load(DEMO / "model.onnx")
    for per_channel in (False, True):
        sim, cal, scheme = _setup(model, xs, per_channel)
        result = backend_agreement(sim, cal, scheme, xs[:8])
        assert result.cosine_reduce_range >= 0.999, result


@pytest.mark.parametrize("per_channel", [False, True])
def test_models_below_opset_13_are_checked_too(per_channel, tmp_path):
    import onnxruntime as ort

    from ptqtui.ortlog import session_options

    xs = samples(3)
    sim, cal, scheme = _setup(small_cnn(opset=12), xs, per_channel)
    qdq = export_qdq(sim, cal, scheme)
    # the model is not converted (a conversion can change a Resize's arithmetic): below
    # opset 13, per-channel weights use com.microsoft's DequantizeLinear, which has an axis
    assert max(o.version for o in qdq.opset_import if o.domain in ("", "ai.onnx")) == 12
    ms = {n.name for n in qdq.graph.node if n.domain == "com.microsoft"}
    assert bool(ms) is per_channel
    opts = session_options()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(qdq.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    fused = {n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node}
    assert "QLinearConv" in fused  # still onnxruntime's integer kernels
    assert compare(sim, cal, scheme, xs, kernels=False).outputs >= 0.99999
    assert backend_agreement(sim, cal, scheme, xs).cosine_reduce_range >= 0.999


@pytest.mark.parametrize("per_channel", [False, True])
def test_the_export_run_as_float_qdq_ops_equals_the_simulator(per_channel):
    xs = samples(3)
    sim, cal, scheme = _setup(small_cnn(), xs, per_channel)
    exact = compare(sim, cal, scheme, xs, kernels=False)
    assert exact.outputs >= 0.99999 and exact.logits is not None and exact.logits >= 0.99999


def test_the_softmax_head_is_compared_at_its_logits():
    xs = samples(3)
    sim, cal, scheme = _setup(small_cnn(), xs, False)
    assert logit_points(sim) == ("act:logits",)
    qdq = export_qdq(sim, cal, scheme, logit_points(sim))
    assert sim.rounded_name("act:logits") in {o.name for o in qdq.graph.output}
    # a model whose output is not squashed has no logits to compare
    conv = Simulator(identity_conv(np.ones((2, 3, 1, 1), np.float32)))
    assert logit_points(conv) == ()


def test_the_ulp_control_is_invisible_on_a_calm_model():
    xs = samples(4)
    sim, cal, scheme = _setup(small_cnn(), xs, True)
    control = ulp_control(sim, cal, scheme, xs)
    assert len(control.per_sample) == 4 and control.logits is not None
    assert 0.999 <= control.outputs <= 1.0


def test_the_float_qdq_check_sees_a_scale_that_differs():
    xs = samples(3)
    sim, cal, scheme = _setup(small_cnn(), xs, False)
    key = "act:r1"
    r = cal.activations[key]
    wider = cal.replace(activations={**cal.activations, key: ActRange(r.lo * 3, r.hi * 3)})
    session = int8_session(export_qdq(sim, wider, scheme), kernels=False)
    ours = [sim.run(x, scheme, calibration=cal)["prob"] for x in xs]
    theirs = [session.run(["prob"], x)[0] for x in xs]
    assert min(float(np.max(np.abs(a - b))) for a, b in zip(ours, theirs, strict=True)) > 1e-4


def test_a_saturated_bias_keeps_its_sign():
    from ptqtui.quant.faithful import _int32

    # float32 rounds 2**31 - 1 up to 2**31; the cast used to wrap a saturated +bias to -2**31
    assert _int32(np.array([3e9, -3e9, 5.0], np.float32)).tolist() == [2**31 - 1, -(2**31), 5]
