"""The data the pictures need: trimmed |x| histograms, every method's threshold, weight ranges."""

from __future__ import annotations

import numpy as np
import pytest

from ptqtui.analysis.nodes import HIST_BINS, MAX_CHANNELS, abs_histogram, method_thresholds
from ptqtui.analysis.run import run_analysis
from ptqtui.inputs.resolve import load_inputs
from ptqtui.policy import PERCENTILES
from ptqtui.quant.calibrate import kl_threshold
from ptqtui.quant.observe import TensorStats
from tests.analysis.test_run import _write


def _long_tailed(seed: int = 0) -> TensorStats:
    stats = TensorStats()
    rng = np.random.default_rng(seed)
    for _ in range(4):
        stats.update(rng.standard_t(3, size=(1, 16, 32, 32)).astype(np.float32))
    return stats


def test_histogram_keeps_every_value_and_ends_just_above_max():
    stats = _long_tailed()
    counts, top = abs_histogram(stats)
    assert len(counts) == HIST_BINS and sum(counts) == stats.count
    assert stats.abs_max <= top < stats.abs_max + 2 * top / HIST_BINS
    assert counts[0] > counts[-1]  # most values near zero, a thin tail


def test_each_method_has_its_threshold_and_the_used_one_is_chosen():
    stats = _long_tailed()
    kl = min(kl_threshold(stats.hist, stats.bin_width), stats.abs_max)
    marks = method_thresholds(stats, used=kl)
    assert [m.method for m in marks] == [
        "max",
        *(f"max_percentile {p:g}" for p in PERCENTILES),
        "kl",
    ]
    by = {m.method: m for m in marks}
    assert by["max"].threshold == pytest.approx(stats.abs_max)
    assert by["kl"].threshold == pytest.approx(kl) and by["kl"].chosen
    assert not by["max"].chosen  # a long tail: kl cuts well below max
    assert by["max_percentile 0.999"].threshold < by["max_percentile 0.99999"].threshold
    assert not any(m.chosen for m in method_thresholds(stats, used=None))


def test_analysis_rows_carry_histogram_thresholds_and_weight_channels(tmp_path):
    request = _write(tmp_path, wide_channel=30.0)
    analysis, _ = run_analysis(load_inputs(request), sensitivity_samples=2)
    rows = {r.name: r for r in analysis.nodes}
    conv = rows["conv1"]
    assert len(conv.histogram) == HIST_BINS and conv.histogram_top is not None
    assert conv.histogram_top >= max(abs(conv.act_min), abs(conv.act_max))
    assert sum(1 for m in conv.thresholds if m.chosen) >= 1
    chosen = next(m for m in conv.thresholds if m.chosen)
    assert chosen.threshold == pytest.approx(conv.threshold)
    wide = rows["dw"]  # the factory widens one of its channels 30x
    assert wide.weight_channels == len(wide.weight_channel_max) <= MAX_CHANNELS
    assert wide.weight_tensor_max == pytest.approx(max(wide.weight_channel_max))
    median = float(np.median(wide.weight_channel_max))
    assert wide.weight_tensor_max / median == pytest.approx(wide.weight_range_ratio)
