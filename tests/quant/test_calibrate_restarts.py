"""The mix and bias-correction searches restart from cached prefixes, same answers as before."""

from __future__ import annotations

import numpy as np
import pytest

from ptqtui.quant.calibrate import calibrate, calibrate_simple, correct_bias, search_mix
from ptqtui.quant.observe import observe
from ptqtui.quant.qparams import ActRange
from ptqtui.quant.scheme import QuantSettings
from ptqtui.quant.simulate import Simulator

from . import reference_calibrate as before


@pytest.fixture(scope="module")
def sims():
    """A MobileNetV2 at 64x64 cut in segments, the same model whole, and their observations."""
    from benchmarks.models import mobilenet_v2, random_samples

    model = mobilenet_v2(64)
    xs = list(random_samples(model, 2))
    seg, whole = Simulator(model, segmented=True), Simulator(model, segmented=False)
    obs, obs_whole = observe(seg, xs, keep=2), observe(whole, xs, keep=2)
    for s in (seg, whole):
        s.batchable = False  # one sample a run on both sides
    assert seg.plan is not None and len(seg.plan.segments) >= 3  # really cut
    return seg, whole, obs, obs_whole


def _coarse(sim, cal, scheme):
    """``cal`` with every third bias node's input range 3e4 times too wide: its bias rounds
    to a grid too coarse for the correction, so some trials are refused."""
    g = sim.graph
    nodes = sorted(
        (g.nodes[g.points[k].nodes[0]] for k in scheme.active() if g.points[k].kind == "bias"),
        key=lambda n: n.index,
    )
    acts = dict(cal.activations)
    for n in nodes[1::3]:
        r = acts[n.act_points[0]]
        acts[n.act_points[0]] = ActRange(r.lo * 3e4, r.hi * 3e4, r.symmetric)
    return cal.replace(activations=acts)


def _same_deltas(a, b):
    assert set(a.bias_deltas) == set(b.bias_deltas)
    for k, d in a.bias_deltas.items():
        np.testing.assert_allclose(d, b.bias_deltas[k], rtol=1e-6, atol=1e-9, err_msg=k)


def _accepted(cal):
    return [line for line in cal.log if line.startswith("Bias_Correction_Info")]


@pytest.mark.parametrize("n_samples", [1, 2])
def test_bias_correction_from_segments_gives_the_whole_pass_answer(sims, n_samples):
    seg, whole, obs, obs_whole = sims
    scheme = seg.scheme(QuantSettings(calibration_type="max"))
    cal = _coarse(seg, calibrate_simple(seg, obs, "max"), scheme)
    cal_whole = _coarse(whole, calibrate_simple(whole, obs_whole, "max"), scheme)
    got = correct_bias(seg, cal, scheme, obs.kept[:n_samples])
    old = before.correct_bias(seg, cal, scheme, obs.kept[:n_samples])
    old_whole = before.correct_bias(whole, cal_whole, scheme, obs_whole.kept[:n_samples])
    n_nodes = sum(seg.graph.points[k].kind == "bias" for k in scheme.active())
    assert 0 < len(_accepted(got)) < n_nodes  # trials both kept and refused
    assert got.log == old.log == old_whole.log
    _same_deltas(got, old)
    _same_deltas(got, old_whole)
    # the unsegmented graph takes the same steps (one a trial) with the same answer
    new_whole = correct_bias(whole, cal_whole, scheme, obs_whole.kept[:n_samples])
    assert new_whole.log == old_whole.log
    _same_deltas(new_whole, old_whole)


def test_bias_trials_run_only_the_segment_of_their_node(sims):
    seg, _whole, obs, _ = sims
    scheme = seg.scheme(QuantSettings(calibration_type="max"))
    cal = calibrate_simple(seg, obs, "max")
    assert seg.plan is not None
    n_segs = len(seg.plan.segments)
    n_nodes = sum(seg.graph.points[k].kind == "bias" for k in scheme.active())
    runs = seg.segment_runs
    correct_bias(seg, cal, scheme, obs.kept[:1])
    new_runs = seg.segment_runs - runs
    runs = seg.segment_runs
    before.correct_bias(seg, cal, scheme, obs.kept[:1])
    # the old trials ran every segment in exposing sessions (not counted as segment runs):
    # only its two output cosines' lean runs are
    old_runs = seg.segment_runs - runs + (n_nodes + 2) * n_segs
    # a trial: its node's segment; the float and current runs: each segment once more;
    # the two output cosines: at most two whole passes
    assert new_runs <= n_nodes + 3 * n_segs + 2 * n_segs
    assert new_runs * 3 < old_runs


def test_bias_correction_through_calibrate_keeps_its_log(sims):
    seg, whole, obs, obs_whole = sims
    settings = QuantSettings(calibration_type="max", bias_correction=True)
    got = calibrate(seg, obs, settings)
    old = before.correct_bias(
        whole,
        calibrate_simple(whole, obs_whole, "max"),
        whole.scheme(settings),
        obs_whole.kept[:1],
    )
    assert got.log[1:] == old.log  # after "Select max method."
    _same_deltas(got, old)


def test_mix_gives_the_whole_pass_answer(sims):
    seg, whole, obs, obs_whole = sims
    scheme = seg.scheme(QuantSettings(calibration_type="mix"))
    got = search_mix(seg, obs, scheme, obs.kept[:1])
    old = before.search_mix(whole, obs_whole, scheme, obs_whole.kept[:1])
    assert got.log == old.log
    assert got.point_methods == old.point_methods
    assert got.activations == old.activations
    assert any(line.startswith("Merge_Info") for line in got.log)  # some points searched


def test_mix_trials_restart_from_the_float_prefix_even_when_the_cache_lost_it(sims):
    seg, _whole, obs, _ = sims
    scheme = seg.scheme(QuantSettings(calibration_type="mix"))
    assert seg.plan is not None
    n_segs = len(seg.plan.segments)
    search = obs.kept[:1]
    seg.reference(search[0])  # the float outputs known, as after the node table ...

    def cost(fn):
        seg.prefixes.clear()  # ... but their crossing values evicted by later runs
        passes, runs = seg.forward_passes, seg.segment_runs
        fn(seg, obs, scheme, search)
        return seg.forward_passes - passes, seg.segment_runs - runs

    passes, runs = cost(search_mix)
    old_passes, old_runs = cost(before.search_mix)
    assert passes > 3 * n_segs  # one per activation at least
    assert runs < 0.7 * passes * n_segs  # most of them started after a cut
    assert old_runs > 0.9 * old_passes * n_segs  # before: nearly all whole passes
    assert passes <= old_passes  # a method with the same feeds as the best is not rerun
