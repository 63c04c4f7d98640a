"""Calibration methods against thresholds computed by hand on small arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ptqtui.quant.calibrate import (
    activation_range,
    calibrate,
    kl_threshold,
    negative_lobe,
    rounding_error,
    weight_thresholds,
)
from ptqtui.quant.observe import NUM_BINS, TensorStats, observe
from ptqtui.quant.qparams import ActRange, activation_qparams
from ptqtui.quant.scheme import QuantSettings
from ptqtui.quant.simulate import Simulator

from .factories import samples, small_cnn


def stats_of(*arrays: np.ndarray) -> TensorStats:
    s = TensorStats()
    for a in arrays:
        s.update(np.asarray(a, np.float32))
    return s


def test_max_is_the_largest_magnitude_over_all_samples():
    s = stats_of(np.array([[0.5, -1.0]]), np.array([[3.0, -2.0]]))
    assert activation_range(s, "max", None, False) == ActRange(-3.0, 3.0, True)


def test_asymmetric_max_keeps_min_and_max():
    s = stats_of(np.array([[-1.0, 0.5]]), np.array([[3.0, 2.0]]))
    r = activation_range(s, "max", None, True)
    assert (r.lo, r.hi, r.symmetric) == (-1.0, 3.0, False)
    qp = activation_qparams(r, "int8")
    assert qp.scale == pytest.approx(4.0 / 255, rel=1e-6)
    # zero point maps -1.0 to -128: zp = round(-128 + 1/s) = round(-128 + 63.75) = -64
    assert qp.zero_point == -64


def test_percentile_is_the_upper_edge_of_the_bin_reaching_p():
    # 1000 values: 990 at 0.5, 10 at 100.0; hist_max = 100, bin width = 100/2048
    x = np.concatenate([np.full(990, 0.5), np.full(10, 100.0)]).astype(np.float32)
    s = stats_of(x[None])
    width = 100.0 / NUM_BINS
    k = int(0.5 / width)  # the bin of 0.5
    assert activation_range(s, "max", 0.99, False).hi == pytest.approx((k + 1) * width)
    assert activation_range(s, "max", 0.995, False).hi == pytest.approx(100.0)
    assert activation_range(s, "max", 1.0, False).hi == pytest.approx(100.0)


def test_histogram_rebins_when_the_range_grows_and_keeps_every_count():
    s = stats_of(np.array([[1.0, 0.25]]))
    assert s.hist_max == 1.0
    s.update(np.array([[3.5]], np.float32))
    assert s.hist_max == 4.0  # doubled twice
    assert s.hist.size == NUM_BINS and s.hist.sum() == 3
    # 1.0 was in the last bin of [0, 1]; after two merges it lies in bin 511 of [0, 4]
    assert s.hist[NUM_BINS // 4 - 1] == 1


def test_kl_keeps_128_bins_when_all_mass_lies_there():
    hist = np.zeros(NUM_BINS)
    hist[:128] = np.arange(1, 129)
    # cut-off 128: 128 levels of one bin each reproduce p exactly, KL = 0
    assert kl_threshold(hist, 0.5) == 128 * 0.5


def test_kl_keeps_everything_for_a_uniform_histogram():
    hist = np.full(NUM_BINS, 10.0)
    # cut-off 2048: 128 levels of 16 equal bins reproduce p exactly; any earlier cut-off
    # folds the outliers into its last bin and diverges
    assert kl_threshold(hist, 1.0) == NUM_BINS


def _mxnet_kl_threshold(hist: np.ndarray, width: float) -> float:
    """MXNet's ``_get_optimal_threshold`` (TensorRT's entropy calibration) on an |x| histogram,
    written loop by loop as published, as the reference the vectorised version must match."""

    def smooth(h):
        zeros = (h == 0).sum()
        eps1 = 1e-4 * zeros / (h.size - zeros)
        return h + np.where(h == 0, 1e-4, -eps1)

    best = (np.inf, 0)
    for i in range(128, hist.size + 1):
        sliced = hist[:i].astype(np.float64)
        p = sliced.copy()
        p[i - 1] += hist[i:].sum()
        nonzero = (p != 0).astype(np.int64)
        merged = i // 128
        quantized = np.zeros(128)
        for j in range(128):
            start, stop = j * merged, (j + 1) * merged
            quantized[j] = sliced[start:stop].sum()
        quantized[-1] += sliced[128 * merged :].sum()
        q = np.zeros(i)
        for j in range(128):
            start = j * merged
            stop = i if j == 127 else start + merged
            norm = nonzero[start:stop].sum()
            if norm != 0:
                q[start:stop] = quantized[j] / norm
        q[p == 0] = 0
        ps, qs = smooth(p), smooth(q)
        ps, qs = ps / ps.sum(), qs / qs.sum()
        kl = float(np.sum(np.where(ps > 0, ps * np.log(ps / qs), 0.0)))
        if kl < best[0]:
            best = (kl, i)
    return best[1] * width


def test_kl_matches_the_published_algorithm_on_a_laplace_histogram():
    x = np.abs(np.random.default_rng(3).laplace(0.0, 1.0, 20000))
    hist, _ = np.histogram(x, bins=512, range=(0, x.max()))
    width = x.max() / 512
    t = kl_threshold(hist, width, flatten_zero_bin=False)
    assert t == pytest.approx(_mxnet_kl_threshold(hist, width))
    flat = hist.copy()
    flat[0] = flat[1]
    assert kl_threshold(hist, width) == pytest.approx(_mxnet_kl_threshold(flat, width))


def test_kl_keeps_a_tail_that_128_levels_reproduce_exactly():
    hist = np.zeros(NUM_BINS)
    hist[:256] = 1000.0
    hist[2040] = 1  # one far outlier: at cut-off 2041 every level holds one non-empty run
    assert kl_threshold(hist, 1.0) == 2041


def test_per_channel_weight_thresholds_follow_each_channel():
    w = np.ones((3, 2, 1, 1), np.float32)
    w[1] *= 50.0
    assert weight_thresholds(w, 0, True).tolist() == [1.0, 50.0, 1.0]
    assert weight_thresholds(w, 0, False).tolist() == [50.0, 50.0, 50.0]


def test_per_channel_beats_per_tensor_on_a_weight_with_one_wide_channel():
    model = small_cnn(wide_channel=40.0)
    sim = Simulator(model)
    xs = samples(4)
    obs = observe(sim, xs)
    scheme = sim.scheme(QuantSettings(calibration_type="max"))
    weights_only = scheme.only(["w:dw"])
    errs = {}
    for pc in (False, True):
        cal = calibrate(sim, obs, QuantSettings(calibration_type="max", per_channel=pc))
        ref = sim.run_float(xs[0], outputs=["c2"])["c2"]
        out = sim.run(xs[0], weights_only, calibration=cal, outputs=["c2"])["c2"]
        errs[pc] = float(np.mean((ref[:, 1:] - out[:, 1:]) ** 2))  # the narrow channels
    assert errs[True] < errs[False] / 100


def test_default_search_logs_the_converter_lines():
    sim = Simulator(small_cnn())
    obs = observe(sim, samples(3))
    cal = calibrate(sim, obs, QuantSettings(calibration_type="default"))
    assert cal.log[0] == "Run calibration model with modelwise search method."
    assert cal.log[1].startswith("Select ") and cal.log[1].endswith(" method.")
    assert ("Perchannel quantization is enabled." in cal.log) == cal.per_channel
    assert ("Asymmetric quantization is enabled." in cal.log) == cal.asymmetric


def test_mix_merges_methods_per_activation():
    sim = Simulator(small_cnn(wide_channel=40.0))
    obs = observe(sim, samples(3))
    cal = calibrate(sim, obs, QuantSettings(calibration_type="mix"))
    assert cal.method.startswith("mix(")
    assert set(cal.point_methods) >= {"act:x", "act:r1"}
    assert "Run calibration model with layerwise search method." in cal.log


def test_bias_correction_never_makes_the_output_worse():
    from ptqtui.quant.calibrate import output_cosine

    sim = Simulator(small_cnn())
    xs = samples(3)
    obs = observe(sim, xs)
    plain = calibrate(sim, obs, QuantSettings(calibration_type="kl"))
    corrected = calibrate(sim, obs, QuantSettings(calibration_type="kl", bias_correction=True))
    scheme = sim.scheme(QuantSettings())
    first = [obs.kept[0]]
    assert output_cosine(sim, first, scheme, corrected) >= output_cosine(sim, first, scheme, plain)
    assert any(line.startswith("bias correction: output cosine") for line in corrected.log)


def test_observation_memory_does_not_grow_with_samples():
    sim = Simulator(small_cnn())
    few = observe(sim, samples(2), keep=1)
    many = observe(sim, (s for s in samples(50)), keep=1)
    assert many.n_samples == 50 and len(many.kept) == 1
    for name, st in many.stats.items():
        assert st.hist.size == few.stats[name].hist.size == NUM_BINS


def test_kl_is_not_pulled_down_by_the_zeros_of_a_relu():
    # ReLU-like: half the values exactly 0, the rest long-tailed (real arrays, not counts)
    rng = np.random.default_rng(5)
    x = np.concatenate([np.zeros(50_000), np.abs(rng.laplace(0, 0.3, 50_000))])
    top = float(x.max())
    hist, _ = np.histogram(x, bins=NUM_BINS, range=(0, top))
    width = top / NUM_BINS
    spiked = kl_threshold(hist, width, flatten_zero_bin=False)
    fixed = kl_threshold(hist, width)
    assert spiked <= top / 7  # the zero spike alone drags the cut-off to the first candidates
    assert fixed >= top / 2  # without it the tail is kept
    assert float(np.mean(x > fixed)) < 1e-3  # and almost nothing is clipped


def _real_stats(name: str):
    """A SiLU (or signed) activation of ddddocr's recogniser, as observation saw it
    (tests/fixtures/quant/README.md), and onnxruntime's entropy threshold of it."""
    data = np.load(Path(__file__).resolve().parents[1] / "fixtures/quant/ddddocr_rec_silu.npz")
    lo, hi, top, count = data[f"t{name}_meta"]
    st = TensorStats(count=int(count), min=float(lo), max=float(hi), hist_max=float(top))
    st.hist = data[f"t{name}_hist"].astype(np.int64)
    return st, float(data[f"t{name}_ort_entropy"])


def test_kl_on_a_silu_output_keeps_the_tail_its_negative_lobe_would_clip():
    st, ort = _real_stats("140")
    assert negative_lobe(st)
    folded = min(kl_threshold(st.hist, st.bin_width), st.abs_max)
    t = activation_range(st, "kl", None, False).threshold
    # the lobe folded onto the small bins pulls plain kl to half the range, at 6x max's error
    err_folded, err_max, err_t = rounding_error(st, np.array([folded, st.abs_max, t]))
    assert folded < 0.6 * st.abs_max and err_folded > 5 * err_max
    # guarded: the threshold of least error, within 10 % of onnxruntime's signed entropy
    assert t > folded and err_t <= err_max
    assert abs(t - ort) / ort < 0.1


def test_the_clipping_guard_stays_quiet_where_kl_costs_less_than_max():
    st, _ = _real_stats("171")  # SiLU, but kl's cut costs less squared error than max
    assert negative_lobe(st)
    plain = min(kl_threshold(st.hist, st.bin_width), st.abs_max)
    assert activation_range(st, "kl", None, False).threshold == plain
    signed, _ = _real_stats("390")  # signed both ways: no lobe, plain kl
    assert not negative_lobe(signed)
    assert activation_range(signed, "kl", None, False).threshold == min(
        kl_threshold(signed.hist, signed.bin_width), signed.abs_max
    )
