"""The observation cache: a cached second run gives the cold run's diagnosis."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from ptqtui.cache import load_observation, observation_key, save_observation
from ptqtui.demo import demo_dir, find_scenario
from ptqtui.diagnosis import diagnose
from ptqtui.quant.observe import Observation, TensorStats
from ptqtui.request import Request

pytestmark = pytest.mark.skipif(
    not (demo_dir() / "scenarios" / "bgr_swap").is_dir(), reason="demo data not generated"
)


def _stable(d):
    """The diagnosis without what depends on the run (timings, notes about the cache)."""
    a = dataclasses.replace(d.analysis, timings=(), notes=())
    return dataclasses.replace(d, analysis=a, notes=()).to_json()


FULL = os.environ.get("PTQTUI_QUICK") != "1"
slow = pytest.mark.skipif(not FULL, reason="PTQTUI_QUICK=1: full diagnoses skipped")


@slow
def test_a_cached_second_run_gives_the_cold_diagnosis(tmp_path):
    scenario = find_scenario("bgr_swap")
    cold = diagnose(Request(config=scenario.config, quiet=True, cache_dir=tmp_path))
    entries = list(tmp_path.glob("observation-*.npz"))
    assert len(entries) == 1
    before = entries[0].stat().st_mtime_ns
    warm = diagnose(Request(config=scenario.config, quiet=True, cache_dir=tmp_path))
    assert any("read from the cache" in n for n in warm.analysis.notes)
    assert not any("read from the cache" in n for n in cold.analysis.notes)
    assert entries[0].stat().st_mtime_ns == before
    assert _stable(warm) == _stable(cold)
    assert [f.code for f in warm.findings] == [f.code for f in cold.findings]


@slow
def test_a_damaged_entry_is_observed_again(tmp_path):
    scenario = find_scenario("bgr_swap")
    cold = diagnose(Request(config=scenario.config, quiet=True, cache_dir=tmp_path))
    (entry,) = tmp_path.glob("observation-*.npz")
    entry.write_bytes(b"not an npz")
    again = diagnose(Request(config=scenario.config, quiet=True, cache_dir=tmp_path))
    assert not any("read from the cache" in n for n in again.analysis.notes)
    assert _stable(again) == _stable(cold)
    assert entry.stat().st_size > 100  # rewritten


def test_statistics_round_trip_and_the_key_follows_the_data(tmp_path):
    st = TensorStats()
    st.update(np.linspace(-2, 5, 2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4))
    empty = TensorStats()
    obs = Observation({"a": st, "b": empty}, 2, ())
    path = tmp_path / "o.npz"
    save_observation(path, obs)
    back = load_observation(path, ())
    assert back.n_samples == 2
    for name in ("a", "b"):
        x, y = obs.stats[name], back.stats[name]
        assert (x.count, x.min, x.max, x.hist_max) == (y.count, y.min, y.max, y.hist_max)
        np.testing.assert_array_equal(x.hist, y.hist)
    np.testing.assert_array_equal(st.ch_max, back.stats["a"].ch_max)
    assert back.stats["b"].ch_min is None
    xs = [{"x": np.zeros((1, 3), np.float32)}, {"x": np.ones((1, 3), np.float32)}]
    k1, kept = observation_key(b"model", xs, keep=1)
    assert len(kept) == 1
    assert observation_key(b"model", xs[::-1], keep=1)[0] != k1
    assert observation_key(b"other", xs, keep=1)[0] != k1
    assert observation_key(b"model", xs, keep=1)[0] == k1
