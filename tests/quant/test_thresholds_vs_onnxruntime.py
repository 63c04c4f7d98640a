"""Our thresholds against onnxruntime's own calibrators, on the same arrays (docs/thresholds.md)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from onnxruntime.quantization.calibrate import HistogramCollector

from ptqtui.quant.calibrate import activation_range
from ptqtui.quant.observe import NUM_BINS, TensorStats


def _batches(seed: int) -> list[np.ndarray]:
    """Activation-like arrays: a ReLU6 output, a long-tailed residual, a growing range."""
    rng = np.random.default_rng(seed)
    relu6 = [
        np.clip(rng.normal(0.5, 1.5, (1, 16, 20, 20)), 0, 6).astype(np.float32) for _ in range(6)
    ]
    tail = [rng.laplace(0, 0.4 * (k + 1), (1, 16, 20, 20)).astype(np.float32) for k in range(6)]
    return relu6, tail


def _ours(batches: list[np.ndarray]) -> TensorStats:
    st = TensorStats()
    for b in batches:
        st.update(b)
    return st


def _theirs(method: str, batches: list[np.ndarray], **kw) -> float:
    bins = kw.get("bins", NUM_BINS)
    c = HistogramCollector(method, True, bins, kw.get("q", 128), kw.get("pct"), None)
    with contextlib.redirect_stdout(io.StringIO()):
        for b in batches:
            c.collect({"t": b})
        lo, hi = (c.compute_percentile() if method == "percentile" else c.compute_entropy())["t"][
            :2
        ]
    return float(max(abs(lo), abs(hi)))


@pytest.mark.parametrize("which", [0, 1])
def test_max_is_onnxruntime_minmax_exactly(which):
    batches = _batches(1)[which]
    st = _ours(batches)
    expected = max(float(np.abs(b).max()) for b in batches)
    assert activation_range(st, "max", None, False).threshold == expected


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("p", [0.9999, 0.99999])
def test_percentile_is_onnxruntime_percentile_within_two_bins(which, p):
    batches = _batches(2)[which]
    st = _ours(batches)
    ours = activation_range(st, "max", p, False).threshold
    theirs = _theirs("percentile", batches, pct=100 * p)
    # our histogram doubles its range when a batch exceeds it (bins up to twice as wide);
    # onnxruntime's appends bins of the first batch's width: two of our bins at most
    assert abs(ours - theirs) <= 2 * st.bin_width + 1e-6


def test_kl_differs_from_onnxruntime_entropy_by_design_but_not_by_an_order():
    relu6, tail = _batches(3)
    for batches in (relu6, tail):
        st = _ours(batches)
        ours = activation_range(st, "kl", None, False).threshold
        theirs = _theirs("entropy", batches, q=128, bins=512)  # 512: its search is slow
        assert 0.5 <= ours / theirs <= 2.0, (ours, theirs)
