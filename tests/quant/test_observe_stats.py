"""The chunked histogram gives exactly the statistics of the plain one it replaced."""

from __future__ import annotations

import numpy as np
import pytest

from ptqtui.quant import observe as observe_mod
from ptqtui.quant.observe import CHUNK, NUM_BINS, TensorStats, observe
from ptqtui.quant.simulate import Simulator

from .factories import samples, small_cnn
from .reference_observe import WholeArrayStats


class ReferenceStats(WholeArrayStats):
    """``TensorStats.update`` as it was before issue 17, counting one value at a time."""

    def _count(self, x: np.ndarray) -> None:
        # one value at a time, in float32 as the whole-array version computed it
        k = np.float32(NUM_BINS / self.hist_max)
        for value in np.abs(x).reshape(-1).tolist():
            i = int(np.float32(value) * k)
            self.hist[min(i, NUM_BINS - 1)] += 1


def assert_same(new: TensorStats, ref: TensorStats) -> None:
    scalars = ("count", "min", "max", "hist_max", "zeros_pending", "nan_count")
    assert [getattr(new, a) for a in scalars] == [getattr(ref, a) for a in scalars]
    assert (new.ch_min is None) == (ref.ch_min is None)
    if ref.ch_min is not None:
        assert np.array_equal(new.ch_min, ref.ch_min) and np.array_equal(new.ch_max, ref.ch_max)
    assert new.hist.dtype == ref.hist.dtype and new.hist.shape == ref.hist.shape
    diff = np.flatnonzero(new.hist != ref.hist)
    assert diff.size == 0, f"bins {diff[:5].tolist()} differ"


def run_both(arrays: list[np.ndarray]) -> tuple[TensorStats, TensorStats]:
    new, ref = TensorStats(), ReferenceStats()
    for a in arrays:
        new.update(a)
        ref.update(a)
    return new, ref


RNG = np.random.default_rng(17)


def _activation(shape: tuple[int, ...], scale: float) -> np.ndarray:
    """ReLU-like: a third exact zeros, the rest heavy-tailed."""
    x = RNG.standard_t(3, size=shape).astype(np.float32) * scale
    x[RNG.random(shape) < 0.33] = 0.0
    return x


CASES = {
    "4-D over several chunks, range doubling": [
        _activation((1, 8, 130, 130), 1.0),
        _activation((1, 8, 130, 130), 3.0),
        _activation((1, 8, 130, 130), 40.0),
    ],
    "1-D, exactly one chunk and one more value": [
        _activation((CHUNK,), 2.0),
        _activation((CHUNK + 1,), 2.0),
    ],
    "zeros first, then values": [
        np.zeros((2, 3, 5, 5), np.float32),
        np.zeros((7,), np.float32),
        _activation((2, 3, 5, 5), 0.5),
        np.zeros((2, 3, 5, 5), np.float32),
    ],
    "NaN and infinities": [
        _activation((1, 4, 50, 50), 1.0),
        np.where(RNG.random((1, 4, 50, 50)) < 0.01, np.nan, _activation((1, 4, 50, 50), 2.0)),
        np.array([np.inf, -np.inf, 1.5, -7.0, np.nan], np.float32),
        np.full((1, 2, 3), np.nan, np.float32),
    ],
    "every bin edge and the maximum itself": [
        # j/2048 of the range: exactly on each edge, and the float32 values on either side
        np.concatenate(
            [
                e := (np.arange(NUM_BINS + 1, dtype=np.float64) * (3.7 / NUM_BINS)).astype(
                    np.float32
                ),
                np.nextafter(e, np.float32(0)),
                np.minimum(np.nextafter(e, np.float32(9)), np.float32(3.7)),
                -e,
            ]
        ).reshape(1, 4, -1),
    ],
    "strided views": [
        _activation((1, 6, 40, 40), 1.0).transpose(0, 1, 3, 2),
        _activation((3000,), 5.0)[::3],
        _activation((4, 6, 9), 1.0)[:, ::2],
    ],
    "float64, one-channel and 0-D tensors": [
        RNG.normal(size=(1, 1, 64, 64)) * 1e3,
        RNG.normal(size=(5, 1)),
        np.array(-2.5e3),
        np.float32(7.0),
    ],
}


@pytest.mark.parametrize("name", list(CASES))
def test_update_gives_exactly_the_reference_statistics(name):
    new, ref = run_both(CASES[name])
    assert_same(new, ref)
    assert new.count > 0


def test_the_comparison_catches_one_value_in_the_next_bin():
    new, ref = run_both(CASES["4-D over several chunks, range doubling"])
    used = int(np.flatnonzero(ref.hist)[0])
    new.hist[used] -= 1
    new.hist[used + 1] += 1
    with pytest.raises(AssertionError, match="bins"):
        assert_same(new, ref)


def test_the_value_at_the_top_of_the_range_lands_in_the_last_bin():
    # |x| == hist_max scales to NUM_BINS exactly: the fold puts it in the last bin
    s = TensorStats()
    s.update(np.array([[0.0, 1.0, -2.0, 2.0]], np.float32))
    assert s.hist_max == 2.0
    assert (s.hist[0], s.hist[NUM_BINS // 2], s.hist[NUM_BINS - 1]) == (1, 1, 2)
    assert s.hist.sum() == 4


@pytest.mark.parametrize("top", [3.0, 3.7])
def test_the_maximum_lands_in_the_last_bin_whichever_way_its_scale_rounds(top):
    # |x| * (2048 / top) in float32: exactly 2048 for 3.0 (the fold), 2047.9999 for 3.7
    x = np.array([[top, -top / 2, 0.0, top / 3]], np.float32)
    new, ref = run_both([x])
    assert_same(new, ref)
    assert new.hist[NUM_BINS - 1] == 1


@pytest.mark.parametrize("top", [1e-30, 3e-38, 1e-40])
def test_a_range_too_small_for_a_float32_scale_is_binned_all_the_same(top):
    # 2048 / 3e-38 overflows float32: the update raised before; 1e-30 still fits
    x = np.array([[top, -top / 2, 0.0, top / 4]], np.float32)
    s = TensorStats()
    s.update(x)
    assert s.hist_max == float(np.float32(top))
    assert s.hist.sum() == 4 and s.hist[0] == 1 and s.hist[NUM_BINS - 1] == 1
    assert s.hist[NUM_BINS // 2] == 1 and s.hist[NUM_BINS // 4] == 1


def test_observation_of_a_model_matches_the_reference_on_its_activations():
    model = small_cnn()
    xs = samples(3)
    sim = Simulator(model)
    obs = observe(sim, xs, keep=1)
    refs = {t: ReferenceStats() for t in obs.stats}
    for x in xs:
        for values in sim.observe_float(x, list(refs)):
            for t, v in values.items():
                refs[t].update(v)
    assert obs.n_samples == 3 and len(refs) >= 3
    for t, st in obs.stats.items():
        assert_same(st, refs[t])


def test_scratch_stays_one_chunk_whatever_the_tensor_size():
    s = TensorStats()
    s.update(_activation((1, 4, 300, 300), 1.0))  # 360 000 values: three chunks
    sc = observe_mod._SCRATCH
    assert sc.scaled.size == sc.narrow.size == sc.index.size == CHUNK


def test_threads_updating_side_by_side_give_the_statistics_of_one():
    model = small_cnn()
    xs = samples(3)
    one = observe(Simulator(model), xs, keep=1, threads=1)
    three = observe(Simulator(model), xs, keep=1, threads=3)
    assert list(one.stats) == list(three.stats)
    for t, st in three.stats.items():
        assert_same(st, one.stats[t])
    assert [set(o) for o in one.outputs] == [set(o) for o in three.outputs]
    for a, b in zip(one.outputs, three.outputs, strict=True):
        assert all(np.array_equal(a[k], b[k]) for k in a)
