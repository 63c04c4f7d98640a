"""The fake-quant simulator: float when switched off, exact rounding when on, one session."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from ptqtui.quant.calibrate import calibrate
from ptqtui.quant.observe import observe
from ptqtui.quant.qparams import activation_qparams, fake_quantize
from ptqtui.quant.scheme import QuantSettings
from ptqtui.quant.simulate import Simulator

from .factories import samples, small_cnn


@pytest.fixture(scope="module")
def setup():
    model = small_cnn()
    sim = Simulator(model)
    xs = samples(4)
    obs = observe(sim, xs)
    cal = calibrate(sim, obs, QuantSettings(calibration_type="max"))
    return model, sim, xs, cal


def test_all_switches_off_is_the_float_model(setup):
    model, sim, xs, cal = setup
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    # weights reach Gemm/Conv as run-time tensors (not prepacked initializers), and bias-less
    # convs get a zero bias: the same values within float32 rounding, not bit for bit
    original = ort.InferenceSession(model.SerializeToString(), opts)
    off = sim.run(xs[0], sim.scheme().only([]), calibration=cal)["prob"]
    np.testing.assert_allclose(off, original.run(None, xs[0])[0], rtol=1e-5, atol=1e-7)


def test_a_switched_off_point_is_exactly_float(setup):
    _, sim, xs, cal = setup
    scheme = sim.scheme().only(["act:x"])  # only the input is rounded
    out = sim.run(xs[0], scheme, calibration=cal, outputs=[sim.rounded_name("act:x"), "r1"])
    flt = sim.run_float(xs[0], outputs=["r1"])
    assert not np.array_equal(out["r1"], flt["r1"])
    only_w = sim.run(xs[0], sim.scheme().only(["w:fc"]), calibration=cal, outputs=["r1", "cat"])
    np.testing.assert_array_equal(only_w["r1"], flt["r1"])


def test_rounding_matches_quantize_dequantize(setup):
    _, sim, xs, cal = setup
    key = "act:x"
    name = sim.rounded_name(key)
    out = sim.run(xs[0], sim.scheme().only([key]), calibration=cal, outputs=[name])
    qp = activation_qparams(cal.activations[key], "int8")
    expected = fake_quantize(xs[0]["x"], qp.scale, qp.lo, qp.hi)
    np.testing.assert_array_equal(out[name], expected)


def test_int16_error_is_far_below_int8(setup):
    _, sim, xs, cal = setup
    ref = sim.reference(xs[0])["prob"]
    acts = [p.key for p in sim.points if p.kind == "activation"]
    int8 = sim.scheme(QuantSettings()).only(acts)
    int16 = sim.scheme(QuantSettings(set_all_nodes_int16=True)).only(acts)
    e8 = np.mean((sim.run(xs[0], int8, calibration=cal)["prob"] - ref) ** 2)
    e16 = np.mean((sim.run(xs[0], int16, calibration=cal)["prob"] - ref) ** 2)
    assert e16 < e8 / 10


def test_every_what_if_reuses_one_session(setup):
    _, sim, xs, cal = setup
    session = sim.session
    for node in ("conv1", "dw", "fc"):
        sim.run(xs[0], sim.scheme().only(sim.graph.node_points(node)), calibration=cal)
    assert sim.session is session


def test_reference_is_cached(setup):
    _, sim, xs, _ = setup
    before = sim.forward_passes
    a = sim.reference(xs[1])
    b = sim.reference({"x": xs[1]["x"].copy()})
    assert a is b and sim.forward_passes == before + 1


def test_rejects_old_opsets():
    from ptqtui.errors import PtqInputError

    with pytest.raises(PtqInputError, match="opset"):
        Simulator(small_cnn(opset=10))


def test_batched_runs_equal_single_runs(setup):
    _, sim, xs, cal = setup
    scheme = sim.scheme()
    batched = sim.run_batch(xs, scheme, calibration=cal)
    assert sim.batchable is True and sim.batch_note is None and sim.batch_size == 8
    for x, out in zip(xs, batched, strict=True):
        single = sim.run(x, scheme, calibration=cal)["prob"]
        np.testing.assert_allclose(out["prob"], single, rtol=1e-5, atol=1e-7)


def test_stacking_is_bounded_by_the_input_bytes_of_a_run(monkeypatch):
    from ptqtui.quant import simulate

    xs = samples(5)
    per_sample = sum(np.asarray(v).nbytes for v in xs[0].values())
    monkeypatch.setattr(simulate, "BATCH_BYTES", 2 * per_sample)
    sim = Simulator(small_cnn())
    outs = sim.run_batch(xs)
    assert sim.batchable is True and sim.batch_size == 2
    np.testing.assert_allclose(outs[4]["prob"], sim.run(xs[4])["prob"], rtol=1e-5, atol=1e-7)
    monkeypatch.setattr(simulate, "BATCH_BYTES", per_sample)
    big = Simulator(small_cnn())
    assert len(big.run_batch(xs)) == 5
    assert big.batchable is False and big.batch_size == 1 and big.batch_note is not None


def test_a_fixed_batch_reshape_falls_back_to_single_runs():
    from onnx import TensorProto, helper, numpy_helper

    shape = numpy_helper.from_array(np.array([1, -1], np.int64), "shape")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
            helper.make_node("Reshape", ["c", "shape"], ["y"], name="reshape"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4 * 64])],
        initializer=[
            numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "w"),
            shape,
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    sim = Simulator(model)
    xs = samples(3)
    outs = sim.run_batch(xs)
    assert sim.batchable is False and len(outs) == 3
    assert "Reshape with a fixed batch size: reshape" in (sim.batch_note or "")
    np.testing.assert_array_equal(outs[2]["y"], sim.run(xs[2])["y"])
