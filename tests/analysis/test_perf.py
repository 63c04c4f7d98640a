"""Doing less work for the same answer: the refined curve and the trimmed sensitivity split."""

from __future__ import annotations

import itertools
import math

import pytest

from ptqtui.analysis.accumulate import CURVE_TOLERANCE, _refine


def _run(curve: list[float]) -> tuple[dict[int, float], list[str]]:
    seen: dict[int, float] = {}
    notes: list[str] = []

    def point(i: int) -> float:
        seen[i] = curve[i]
        return curve[i]

    _refine(list(range(len(curve))), point, notes)
    return seen, notes


def test_a_step_is_located_to_its_node_and_flat_stretches_are_skipped():
    curve = [1.0] * 137 + [0.9] * 100 + [0.85] * 93
    seen, notes = _run(curve)
    assert 136 in seen and 137 in seen  # the drop's two sides, adjacent
    assert 236 in seen and 237 in seen
    assert len(seen) < len(curve) / 3
    assert notes and "of 330 points" in notes[0]


def test_a_slow_slide_keeps_every_step_within_the_tolerance():
    curve = [1.0 - 0.3 * (i / 329) ** 2 for i in range(330)]
    seen, _ = _run(curve)
    got = sorted(seen)
    tol = max(CURVE_TOLERANCE, 0.02 * 0.3)
    for a, b in itertools.pairwise(got):
        assert b - a == 1 or abs(curve[a] - curve[b]) <= tol


def test_nan_gaps_are_bisected_to_the_end():
    curve = [1.0] * 100 + [math.nan] * 100
    seen, _ = _run(curve)
    assert 99 in seen and 100 in seen


def _context(batchable: bool):
    from ptqtui.analysis.context import SimContext
    from ptqtui.quant.calibrate import calibrate
    from ptqtui.quant.observe import observe
    from ptqtui.quant.scheme import QuantSettings
    from ptqtui.quant.simulate import Simulator
    from tests.quant.factories import samples, small_cnn

    sim = Simulator(small_cnn())
    xs = samples(8)
    obs = observe(sim, xs, keep=8)
    settings = QuantSettings(calibration_type="max")
    scheme = sim.scheme(settings)
    cal = calibrate(sim, obs, settings, scheme=scheme)
    refs = tuple(sim.reference(s, key=("analysis", i)) for i, s in enumerate(xs))
    sim.batchable = batchable
    return SimContext(sim, obs, settings, cal, scheme, tuple(xs), refs, tuple(xs))


def test_one_sample_at_a_time_only_undecided_or_top_nodes_get_every_sample(monkeypatch):
    from ptqtui.analysis import sensitivity as sens
    from ptqtui.analysis.nodes import node_table
    from ptqtui.quant.scheme import node_points

    batched = _context(True)
    full = sens.sensitivity(batched, node_table(batched).records, split=False, int16=False)
    by_name = {r.name: r.sensitivity_cosine for r in full.records if r.sensitivity_cosine}
    # each node's loss on the first two samples; lines between them, so every case occurs
    ctx = batched
    active = set(ctx.scheme.active())
    first = {}
    for n in by_name:
        keys = tuple(k for k in node_points(ctx.sim.graph, ctx.scheme, n) if k in active)
        sims = sens.per_sample(
            ctx.sim, ctx.scheme.only(keys), ctx.calibration, ctx.samples[:2], ctx.refs[:2]
        )
        first[n] = sorted(1 - x.cosine for x in sims)
    highs = sorted(v[1] for v in first.values())
    lows = sorted(v[0] for v in first.values())
    line_low = (highs[1] + highs[2]) / 2  # two stop as harmless
    line_clear = (lows[-2] + lows[-3]) / 2  # ... and two as clearly sensitive (but the worst)
    monkeypatch.setattr(sens, "ADAPT_LOSS", line_low)
    monkeypatch.setattr(sens, "ADAPT_CLEAR", line_clear)
    monkeypatch.setattr(sens, "SPLIT_TOP", 1)
    monkeypatch.setattr(sens, "ADAPT_MIDDLE", 8)  # no middle level here: see the next test
    worst = min(by_name, key=by_name.get)
    stop = {n for n, (lo, hi) in first.items() if (hi < line_low or lo > line_clear) and n != worst}
    assert 0 < len(stop) < len(by_name) - 1, (first, line_low, line_clear)

    single = _context(False)
    out = sens.sensitivity(single, node_table(single).records, split=False, int16=False)
    assert out.passes == 8 * len(by_name) - 6 * len(stop), (first, line_low, line_clear, out.notes)
    got = {r.name: r.sensitivity_cosine for r in out.records if r.sensitivity_cosine}
    for n, c in got.items():
        if n in stop:  # the mean of its first two samples
            assert 1 - c == pytest.approx(sum(first[n]) / 2, abs=1e-6)
        else:  # every sample: the batched value
            assert c == pytest.approx(by_name[n], abs=1e-6)
    assert any(f"{len(stop)} of {len(by_name)} nodes measured on 2 of 8" in n for n in out.notes)


def test_nodes_near_the_line_get_the_middle_sample_count_and_the_worst_every_sample(
    monkeypatch,
):
    import math

    from ptqtui.analysis import sensitivity as sens
    from ptqtui.analysis.nodes import node_table
    from ptqtui.quant.scheme import node_points

    monkeypatch.setattr(sens, "ADAPT_LOSS", 0.0)  # the first samples decide nothing
    monkeypatch.setattr(sens, "ADAPT_CLEAR", math.inf)
    monkeypatch.setattr(sens, "ADAPT_MIDDLE", 4)
    monkeypatch.setattr(sens, "SPLIT_TOP", 2)
    batched = _context(True)
    full = sens.sensitivity(batched, node_table(batched).records, split=False, int16=False)
    by_name = {r.name: r.sensitivity_cosine for r in full.records if r.sensitivity_cosine}
    single = _context(False)
    out = sens.sensitivity(single, node_table(single).records, split=False, int16=False)
    assert out.passes == 4 * len(by_name) + 2 * 4  # 4 samples each, the 2 worst 4 more
    got = {r.name: r.sensitivity_cosine for r in out.records if r.sensitivity_cosine}
    ctx = batched
    active = set(ctx.scheme.active())
    whole = [n for n in got if got[n] == pytest.approx(by_name[n], abs=1e-6)]
    assert len(whole) >= 2
    for n in set(got) - set(whole):  # the mean of the first 4 samples
        keys = tuple(k for k in node_points(ctx.sim.graph, ctx.scheme, n) if k in active)
        four = sens.per_sample(
            ctx.sim, ctx.scheme.only(keys), ctx.calibration, ctx.samples[:4], ctx.refs[:4]
        )
        assert got[n] == pytest.approx(sum(s.cosine for s in four) / 4, abs=1e-6)
    worst_two = sorted(got, key=got.get)[:2]  # ranked on 4 samples, then measured on all 8
    assert set(worst_two) <= set(whole)
    assert any(
        f"{len(by_name) - 2} of {len(by_name)} nodes measured on 4 of 8" in n for n in out.notes
    )


def test_two_first_samples_decide_only_far_from_the_line():
    from ptqtui.analysis.sensitivity import ADAPT_CLEAR, ADAPT_LOSS, undecided
    from ptqtui.quant.metrics import Similarity

    def sims(*losses):
        return [Similarity(1 - v, 0.0, 0.0, 0.0, 0.0) for v in losses]

    assert not undecided(sims(ADAPT_LOSS / 2, ADAPT_LOSS / 3))  # harmless on both
    assert not undecided(sims(2 * ADAPT_CLEAR, 3 * ADAPT_CLEAR))  # clearly sensitive on both
    assert undecided(sims(ADAPT_LOSS / 2, 2 * ADAPT_LOSS))  # one sample near the line
    assert undecided(sims(2 * ADAPT_CLEAR, ADAPT_CLEAR / 2))
    assert undecided(sims(float("nan"), ADAPT_LOSS / 2))


def test_the_node_table_fetches_outputs_in_groups_bounded_by_bytes(monkeypatch):
    from ptqtui.analysis import nodes

    ctx = _context(True)
    whole = nodes.node_table(ctx)
    monkeypatch.setattr(nodes, "GROUP_BYTES", 4 * 8 * 8 * 8)  # one 8x8x8 output per group
    cut = nodes.node_table(ctx)
    assert cut.passes > whole.passes == 2 * 8
    assert cut.passes % whole.passes == 0
    assert [r.similarity for r in cut.records] == [r.similarity for r in whole.records]
    assert any("groups" in n for n in cut.notes) and not whole.notes


def _mobilenet_context(n: int):
    from benchmarks.models import mobilenet_v2, random_samples
    from ptqtui.analysis.context import SimContext
    from ptqtui.quant.calibrate import calibrate
    from ptqtui.quant.observe import observe
    from ptqtui.quant.scheme import QuantSettings
    from ptqtui.quant.simulate import Simulator

    model = mobilenet_v2(32)
    sim = Simulator(model)
    xs = list(random_samples(model, n))
    obs = observe(sim, xs, keep=n)
    settings = QuantSettings(calibration_type="max")
    scheme = sim.scheme(settings)
    cal = calibrate(sim, obs, settings, scheme=scheme)
    refs = tuple(sim.reference(s, key=("analysis", i)) for i, s in enumerate(xs))
    return SimContext(sim, obs, settings, cal, scheme, tuple(xs), refs, tuple(xs))


@pytest.mark.parametrize("batchable", [True, False])
def test_two_worker_processes_give_the_one_process_sensitivity(batchable):
    from ptqtui.analysis.nodes import node_table
    from ptqtui.analysis.sensitivity import sensitivity

    ctx = _mobilenet_context(3)
    ctx.sim.batchable = batchable
    rows = node_table(ctx).records
    one = sensitivity(ctx, rows, int16=False)
    ctx.workers = 2
    two = sensitivity(ctx, rows, int16=False)
    assert any("2 worker processes" in n for n in two.notes)
    assert not any("worker" in n for n in one.notes)
    fields = ("sensitivity_cosine", "sensitivity_weights", "sensitivity_activations")
    got = [[getattr(r, f) for f in fields] for r in two.records]
    want = [[getattr(r, f) for f in fields] for r in one.records]
    assert got == want and sum(r.sensitivity_cosine is not None for r in one.records) > 10
    assert two.passes == one.passes


def test_default_workers_leave_two_cores_to_one_process():
    from ptqtui.analysis.pool import default_workers, threads_per_worker

    assert default_workers(1) == default_workers(2) == 1
    assert default_workers(16) == 8 and threads_per_worker(8, 16) == 2
    assert default_workers(64) == 32 and threads_per_worker(32, 64) == 2


def test_workers_below_one_is_a_usage_error(tmp_path):
    from tests.test_cli import ptqtui

    result = ptqtui("demo", "bgr_swap", "--report", "text", "--workers", "0", cwd=tmp_path)
    assert result.returncode == 2 and "--workers must be at least 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_workers_reach_the_request():
    from ptqtui.request import Request

    assert Request(workers=3).workers == 3 and Request().workers is None
    with pytest.raises(ValueError, match="--workers"):
        Request(workers=0)


def test_the_curve_runs_on_fewer_samples_only_when_they_run_one_at_a_time():
    from ptqtui.analysis.accumulate import CURVE_SINGLE_SAMPLES, accumulated_error

    batched = accumulated_error(_context(True))
    single = accumulated_error(_context(False))
    points = len(batched.records)
    assert points == len(single.records) > 2
    assert batched.passes == 8 * points and not batched.notes and batched.complete
    assert single.passes == CURVE_SINGLE_SAMPLES * points and single.complete
    assert any(f"{CURVE_SINGLE_SAMPLES} of 8 samples (samples run one" in n for n in single.notes)


def test_the_node_table_stops_at_the_cost_its_samples_took_not_its_estimate():
    from ptqtui.analysis.measure import Allowance
    from ptqtui.analysis.nodes import node_table

    ctx = _context(True)
    ctx.pass_seconds = 0.0  # the two-pass estimate says every sample fits
    whole = node_table(ctx)
    cut = node_table(ctx, Allowance(1e-6, None, None))  # less than one sample took
    assert whole.complete and whole.passes == 2 * 8 and not whole.notes
    assert not cut.complete and cut.passes == 2  # the first sample, then it stopped
    assert "node table: 1 of 8 samples (time budget)" in cut.notes
    assert [r.name for r in cut.records] == [r.name for r in whole.records]
