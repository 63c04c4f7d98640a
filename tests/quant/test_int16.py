"""int16 is never worse than int8: wider activations, a bias that is not saturated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ptqtui.quant.calibrate import calibrate
from ptqtui.quant.metrics import cosine
from ptqtui.quant.observe import observe
from ptqtui.quant.qparams import activation_qparams, weight_scales
from ptqtui.quant.scheme import QuantSettings, widen_node
from ptqtui.quant.simulate import Simulator, round_bias

from .factories import samples, small_cnn

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / "demo_data" / "scenarios" / "good" / "config.yaml"


def _cos(sim, xs, scheme, cal) -> np.ndarray:
    outs = sim.run_batch(xs, scheme, calibration=cal)
    pairs = zip(xs, outs, strict=True)
    return np.array([cosine(sim.reference(x)[n], o[n]) for x, o in pairs for n in sim.outputs])


@pytest.fixture(scope="module")
def big_bias():
    sim = Simulator(small_cnn(head_bias=5000.0))
    xs = samples(8)
    obs = observe(sim, xs)
    cal = calibrate(sim, obs, QuantSettings(calibration_type="max", per_channel=True))
    return sim, xs, cal


def test_the_head_bias_would_overflow_int32_at_int16_input(big_bias):
    sim, _, cal = big_bias
    node = sim.graph.nodes["fc"]
    s_in = activation_qparams(cal.activations[node.act_points[0]], "int16").scale
    s_w = weight_scales(cal.weights[node.weight_point], "int8")
    b = sim.graph.initializers["b3"]
    assert np.max(np.abs(b) / (s_in * s_w)) > 2**31  # the case the fix is about


def test_int16_on_a_node_with_a_large_bias_does_not_lose(big_bias):
    sim, xs, cal = big_bias
    scheme = sim.scheme()
    c8 = _cos(sim, xs, scheme, cal)
    c16 = _cos(sim, xs, widen_node(sim.graph, scheme, "fc"), cal)
    assert c16.mean() >= c8.mean() - 1e-4
    all16 = sim.scheme(QuantSettings(set_all_nodes_int16=True))
    assert _cos(sim, xs, all16, cal).mean() >= c8.mean() - 1e-4


def test_round_bias_saturates_only_at_int8_input():
    b = np.array([600.0, -3.0, 0.25], np.float32)
    scale = np.full(3, 1e-7, np.float32)
    narrow = round_bias(b, scale, wide_input=False)
    assert narrow[0] == pytest.approx(2**31 * 1e-7, rel=1e-6)  # the int32 register saturates
    wide = round_bias(b, scale, wide_input=True)
    np.testing.assert_allclose(wide, b, rtol=1e-6)
    small = np.array([0.5], np.float32)  # fits: the scale stays s_in * s_w
    np.testing.assert_array_equal(
        round_bias(small, np.array([0.3], np.float32), True),
        round_bias(small, np.array([0.3], np.float32), False),
    )


def test_int16_never_loses_beyond_noise_on_the_demo_model():
    from ptqtui.analysis.context import build_context
    from ptqtui.inputs.resolve import load_inputs
    from ptqtui.request import Request

    ctx = build_context(load_inputs(Request(config=DEMO_CONFIG)))
    sim, cal = ctx.sim, ctx.calibration
    scheme = sim.scheme(QuantSettings(calibration_type="max", per_channel=True))
    xs = list(ctx.samples)
    c8 = _cos(sim, xs, scheme, cal)
    noise = max(float(np.std(c8, ddof=1) / np.sqrt(len(c8))), 1e-4)
    for node in sim.graph.quantized_nodes():
        if scheme.placement.get(node.name) != "BPU":
            continue
        c16 = _cos(sim, xs, widen_node(sim.graph, scheme, node.name), cal)
        assert c16.mean() >= c8.mean() - noise, node.name
    all16 = _cos(sim, xs, sim.scheme(QuantSettings(set_all_nodes_int16=True)), cal)
    assert all16.mean() >= c8.mean()


def test_an_int16_point_keeps_the_full_range_that_a_percentile_clips():
    sim = Simulator(small_cnn())
    xs = samples(4)
    xs[0]["x"][0, 0, 0, 0] = 40.0  # one outlier: the 0.99 percentile clips it at int8
    obs = observe(sim, xs)
    cal = calibrate(sim, obs, QuantSettings(calibration_type="max", max_percentile=0.99))
    name = sim.rounded_name("act:x")
    int8 = sim.run(xs[0], sim.scheme().only(["act:x"]), calibration=cal, outputs=[name])[name]
    wide = sim.scheme().with_dtypes({"act:x": "int16"}).only(["act:x"])
    int16 = sim.run(xs[0], wide, calibration=cal, outputs=[name])[name]
    assert int8.max() < 10.0  # clipped at the percentile
    assert int16.max() == pytest.approx(40.0, rel=1e-3)  # int16: the observed range
