"""Suffix runs from cached prefix activations give the whole graph's answers."""

from __future__ import annotations

import numpy as np
import pytest

from ptqtui.quant.calibrate import calibrate_simple
from ptqtui.quant.observe import observe
from ptqtui.quant.scheme import QuantSettings, node_points
from ptqtui.quant.segments import PrefixCache, base_name
from ptqtui.quant.simulate import Simulator


def _models():
    from benchmarks.models import demo_model, mobilenet_v2, random_samples

    demo = demo_model()
    out = [("mobilenet_v2_96", mobilenet_v2(96), list(random_samples(mobilenet_v2(96), 2)))]
    if demo is not None:
        out.append(("demo", demo, list(random_samples(demo, 2))))
    return out


@pytest.fixture(scope="module", params=[m[0] for m in _models()])
def pair(request):
    _name, model, xs = next(m for m in _models() if m[0] == request.param)
    seg, whole = Simulator(model, segmented=True), Simulator(model, segmented=False)
    obs = observe(seg, xs, keep=3)
    obs_whole = observe(whole, xs, keep=3)
    return seg, whole, xs, obs, obs_whole


def test_segmented_observation_sees_what_the_whole_graph_shows(pair):
    seg, _whole, _xs, obs, obs_whole = pair
    assert seg.plan is not None and len(seg.plan.segments) >= 3  # really cut
    assert set(obs.stats) == set(obs_whole.stats)
    for t, st in obs.stats.items():
        other = obs_whole.stats[t]
        assert (st.min, st.max, st.count) == (other.min, other.max, other.count), t
        assert np.array_equal(st.hist, other.hist), t


def test_one_node_quantized_from_its_segment_gives_the_whole_runs_outputs(pair):
    seg, whole, xs, obs, obs_whole = pair
    settings = QuantSettings(calibration_type="max")
    cal, cal_whole = calibrate_simple(seg, obs, "max"), calibrate_simple(whole, obs_whole, "max")
    scheme, scheme_whole = seg.scheme(settings), whole.scheme(settings)
    active = set(scheme.active())
    for s in (seg, whole):
        s.batchable = False  # one sample a run on both sides: bit-for-bit comparable
    for x in xs:
        a, b = seg.reference(x), whole.reference(x)
        assert all(np.array_equal(a[n], b[n]) for n in seg.outputs)
    skipped = seg.skipped_segments
    nodes = [n.name for n in seg.graph.quantized_nodes()]
    for node in nodes:
        keys = [k for k in node_points(seg.graph, scheme, node) if k in active]
        if not keys:
            continue
        for x in xs:
            a = seg.run(x, scheme.only(keys), calibration=cal)
            b = whole.run(x, scheme_whole.only(keys), calibration=cal_whole)
            for n in seg.outputs:
                assert np.array_equal(a[n], b[n]), (node, n)
    assert seg.skipped_segments > skipped + len(nodes)  # most runs started after a cut
    # the curve's prefixes: the first k nodes quantized, kept and reused by later points
    for k in (len(nodes) // 2, len(nodes) - 1):
        keys = [p for n in nodes[: k + 1] for p in node_points(seg.graph, scheme, n) if p in active]
        for x in xs:
            a = seg.run(x, scheme.only(keys), calibration=cal, keep=True)
            b = whole.run(x, scheme_whole.only(keys), calibration=cal_whole)
            assert all(np.array_equal(a[n], b[n]) for n in seg.outputs)
    # the full scheme, stacked samples: to float precision (a batch sums in another order)
    seg.batchable = None
    outs = seg.run_batch(xs, scheme, calibration=cal)
    for x, a in zip(xs, outs, strict=True):
        b = whole.run(x, scheme_whole, calibration=cal_whole)
        for n in seg.outputs:
            np.testing.assert_allclose(a[n], b[n], rtol=1e-3, atol=1e-3)


def test_the_prefix_cache_stays_under_its_cap():
    cache = PrefixCache(cap=1000)
    for i in range(10):
        cache.put(("s", i), {"t": np.zeros(50, np.float32)})  # 200 bytes each
    assert cache.bytes <= 1000 and ("s", 9) in cache and ("s", 0) not in cache
    cache.put("big", {"t": np.zeros(1000, np.float32)})
    assert cache.refused == 1 and "big" not in cache


def test_renamed_tensors_map_to_the_model_tensor():
    assert base_name("conv1_out__q12") == "conv1_out"
    assert base_name("prob__raw3") == "prob"
    assert base_name("x__quiet") == "x__quiet"


def test_a_prefix_over_the_cap_is_said_and_runs_whole_passes():
    from benchmarks.models import mobilenet_v2, random_samples
    from ptqtui.analysis.measure import prefix_note

    model = mobilenet_v2(96)
    xs = list(random_samples(model, 2))
    small = Simulator(model, segmented=True, prefix_cap=1000)
    roomy = Simulator(model, segmented=True)
    for s in (small, roomy):
        s.batchable = False
        for x in xs:
            s.reference(x)
    note = prefix_note("sensitivity", small, len(xs))
    assert note is not None and "exceed the 0 MiB cap" in note
    assert prefix_note("sensitivity", roomy, len(xs)) is None
    scheme = small.scheme(QuantSettings(calibration_type="max"))
    cal = calibrate_simple(small, observe(small, xs), "max")
    last = [n.name for n in small.graph.quantized_nodes()][-1]
    only = scheme.only([k for k in node_points(small.graph, scheme, last) if k in scheme.active()])
    a = small.run(xs[0], only, calibration=cal)
    assert small.skipped_segments == 0 and small.prefixes.bytes == 0  # whole passes
    b = roomy.run(xs[0], only, calibration=cal)
    assert roomy.skipped_segments > 0
    assert all(np.array_equal(a[n], b[n]) for n in small.outputs)


def test_the_node_table_a_segment_at_a_time_matches_the_whole_graph(pair):
    from ptqtui.analysis.context import SimContext
    from ptqtui.analysis.nodes import node_table

    seg, whole, xs, obs, obs_whole = pair
    settings = QuantSettings(calibration_type="max")
    rows = []
    for sim, ob in ((seg, obs), (whole, obs_whole)):
        cal = calibrate_simple(sim, ob, "max")
        ctx = SimContext(sim, ob, settings, cal, sim.scheme(settings), tuple(xs), (), tuple(xs))
        rows.append(node_table(ctx).records)
    assert seg.segmented and not whole.segmented
    assert [r.similarity for r in rows[0]] == [r.similarity for r in rows[1]]
    assert len(rows[0]) > 5


def test_the_observation_keeps_the_float_outputs_the_references_would_compute(pair):
    seg, whole, xs, obs, obs_whole = pair
    for sim, o in ((seg, obs), (whole, obs_whole)):
        assert len(o.outputs) == len(xs)  # every kept sample's outputs, from the same pass
        sim.batchable = False
        for x, seen in zip(xs, o.outputs, strict=True):
            again = sim.run_float(x)
            assert set(seen) == set(sim.outputs)
            assert all(np.array_equal(seen[n], again[n]) for n in sim.outputs)


def test_outputs_beyond_the_memory_cap_are_read_back_from_disk(pair, monkeypatch):
    from ptqtui.quant import observe as observe_module

    seg, _whole, xs, obs, _ = pair
    monkeypatch.setattr(observe_module, "OUTPUT_MEMORY", 0)
    spilled = observe(seg, xs, keep=3)
    assert spilled.outputs.held == 0 and spilled.outputs.spilled > 0
    for a, b in zip(spilled.outputs, obs.outputs[:3], strict=True):
        assert all(np.array_equal(a[n], b[n]) for n in seg.outputs)


def test_references_from_the_observation_still_leave_the_float_prefixes(pair):
    """On a segmented graph the observation's outputs do not replace the float run: what-ifs
    of the sample start from its prefixes (a whole pass each, without them)."""
    _seg, _whole, xs, _obs, _ = pair
    model = _seg.graph.model
    seg = Simulator(model, segmented=True)
    obs = observe(seg, xs, keep=len(xs))
    x = obs.kept[0]
    seg.reference(x, known=obs.outputs[0])
    seg.batchable = False
    scheme = seg.scheme(QuantSettings(calibration_type="max"))
    cal = calibrate_simple(seg, obs, "max")
    last = [n.name for n in seg.graph.quantized_nodes()][-1]
    keys = [k for k in node_points(seg.graph, scheme, last) if k in set(scheme.active())]
    skipped = seg.skipped_segments
    seg.run(x, scheme.only(keys), calibration=cal)
    assert seg.skipped_segments > skipped  # started after a cut
    whole = Simulator(model, segmented=False)
    whole_obs = observe(whole, xs, keep=len(xs))
    passes = whole.forward_passes
    whole.reference(whole_obs.kept[0], known=whole_obs.outputs[0])
    assert whole.forward_passes == passes  # uncut: the observation's outputs, no pass
