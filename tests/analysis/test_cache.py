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


def _passes(d) -> int:
    """Forward passes the analyses made (the cache's saving)."""
    return sum(t.passes or 0 for t in d.analysis.timings)


def _cache_note(d) -> str:
    return next((n for n in d.analysis.notes if n.startswith("from the cache")), "")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """A cold run of demo bgr_swap with a fresh cache: (cache dir, its diagnosis)."""
    cache = tmp_path_factory.mktemp("cache")
    scenario = find_scenario("bgr_swap")
    return cache, diagnose(Request(config=scenario.config, quiet=True, cache_dir=cache))


@slow
def test_a_cached_second_run_gives_the_cold_diagnosis(first_run):
    tmp_path, cold = first_run
    scenario = find_scenario("bgr_swap")
    # the observation of the data as given, and of the data with the planned channel fix
    entries = sorted(tmp_path.glob("observation-*.npz"))
    assert len(entries) == 2
    inodes = [e.stat().st_ino for e in entries]
    assert list(tmp_path.glob("stage-*.json")) and list(tmp_path.glob("measure-*.json"))
    warm = diagnose(Request(config=scenario.config, quiet=True, cache_dir=tmp_path))
    assert any("read from the cache" in n for n in warm.analysis.notes)
    assert not any("read from the cache" in n for n in cold.analysis.notes)
    assert not _cache_note(cold)
    note = _cache_note(warm)
    for stage in ("task metric", "node table", "sensitivity", "accumulated error", "method sweep"):
        assert stage in note
    assert [e.stat().st_ino for e in entries] == inodes  # read, not written again
    assert _stable(warm) == _stable(cold)
    assert [f.code for f in warm.findings] == [f.code for f in cold.findings]
    assert _passes(warm) < _passes(cold) / 5


@slow
def test_after_a_config_change_only_what_changed_is_measured(first_run, tmp_path):
    cache, _ = first_run
    scenario = find_scenario("bgr_swap")
    # the same model and data, another calibration method: a new node table and sensitivity,
    # but the observation and the method sweep's what-ifs are the ones measured before
    text = scenario.config.read_text(encoding="utf-8")
    assert "calibration_type: max" in text
    changed = scenario.config.parent / "config.yaml"
    other = tmp_path / "config.yaml"
    other.write_text(
        text.replace("calibration_type: max", "calibration_type: kl").replace(
            "../../model.onnx", str((changed.parent / "../../model.onnx").resolve())
        ),
        encoding="utf-8",
    )
    for line in text.splitlines():  # relative paths of the scenario, made absolute
        if "cal_data_dir:" in line:
            rel = line.split(":", 1)[1].strip()
            other.write_text(
                other.read_text(encoding="utf-8").replace(
                    line, f"  cal_data_dir: {(changed.parent / rel).resolve()}"
                ),
                encoding="utf-8",
            )
    warm = diagnose(Request(config=other, quiet=True, cache_dir=cache))
    cold = diagnose(Request(config=other, quiet=True, cache_dir=None))
    note = _cache_note(warm)
    assert "what-if measurements" in note  # the method sweep's rows, measured before
    assert "node table" not in note and "sensitivity" not in note
    assert any("read from the cache" in n for n in warm.analysis.notes)
    assert _stable(warm) == _stable(cold)
    assert _passes(warm) < _passes(cold)


def test_the_store_keeps_under_its_limit_and_never_deletes_what_it_did_not_write(tmp_path):
    from ptqtui.cache import Store, prune

    mine = tmp_path / "measure-old.json"
    mine.write_text("x" * 1000)
    os.utime(mine, (1, 1))  # least recently used
    foreign = tmp_path / "notes.json"
    foreign.write_text("y" * 5000)
    store = Store(tmp_path, limit=500)  # the new entry fits, the old does not
    store.put("stage", "k" * 64, (1.5, "text"))
    assert not mine.exists()  # pruned: oldest first
    assert foreign.exists()  # not ours
    assert store.get("stage", "k" * 64, tuple[float, str], label="x") == (1.5, "text")
    assert store.hits == ["x"]
    assert store.get("stage", "z" * 64, tuple[float, str]) is None  # absent
    store.path("stage", "d" * 64).write_text("{not json")
    assert store.get("stage", "d" * 64, tuple[float, str]) is None  # damaged: a miss
    assert prune(tmp_path, 0) > 0 and foreign.exists()


@slow
def test_a_damaged_entry_is_observed_again(tmp_path):
    scenario = find_scenario("bgr_swap")
    cold = diagnose(Request(config=scenario.config, quiet=True, cache_dir=tmp_path))
    entries = sorted(tmp_path.glob("*-*.*"))
    assert entries
    for entry in entries:  # every observation, stage and measurement
        entry.write_bytes(b"not an npz, not JSON")
    again = diagnose(Request(config=scenario.config, quiet=True, cache_dir=tmp_path))
    assert not any("read from the cache" in n for n in again.analysis.notes)
    assert not any(n.startswith("from the cache") for n in again.analysis.notes)
    assert _stable(again) == _stable(cold)
    assert all(e.stat().st_size > 100 for e in entries if e.suffix == ".npz")  # rewritten


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


def test_a_negative_cache_limit_is_a_usage_error(tmp_path):
    from tests.test_cli import ptqtui

    result = ptqtui("demo", "bgr_swap", "--report", "text", "--cache-limit", "-1", cwd=tmp_path)
    assert result.returncode == 2 and "--cache-limit must be 0 or more" in result.stderr
    assert "Traceback" not in result.stderr
    assert Request(cache_limit_mb=0).cache_limit_mb == 0
