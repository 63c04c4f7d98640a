from __future__ import annotations

import tracemalloc

import numpy as np
import onnxruntime as ort
import pytest

from ptqtui.check.facts.heads import mean_decision_change
from ptqtui.check.facts.probe import (
    AS_GIVEN,
    DIV_255,
    SWAPPED,
    TIMES_255,
    OutputSummary,
    class_probs,
    compute_probe,
    summarise,
    variants_for,
    verdict,
)
from ptqtui.check.facts.samples import model_feeds, probe_indices, read_samples
from tests.check.factories import (
    colour_classifier,
    heatmap_model,
    make_context,
    natural_images,
    to_nchw,
)


def _outputs(model, images, variants):
    """Every variant's kept outputs, a list of output arrays a sample (the probe before)."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return {
        v: [[np.asarray(o) for o in session.run(None, {name: make(x)})] for x in images]
        for v, make in variants.items()
    }


def _norm(x):
    return (x.astype(np.float32) - 127.5) / 64.0


VARIANTS = {
    AS_GIVEN: _norm,
    SWAPPED: lambda x: _norm(x[:, ::-1]),
    TIMES_255: lambda x: _norm(x.astype(np.float32) * 255.0),
    DIV_255: lambda x: _norm(x.astype(np.float32) / 255.0),
}


def _kept_figures(kept, v):
    """The figures of one variant as the verdict computed them from every output kept."""
    values = np.concatenate([np.concatenate([np.ravel(o) for o in s]) for s in kept[v]])
    finite = values[np.isfinite(values)]
    bounded = finite.min() >= 0.0 and finite.max() <= 1.0
    return {
        "output_mean": float(finite.mean()),
        "output_std": float(finite.std()),
        "decisiveness": float(np.mean(np.abs(2 * finite - 1))) if bounded else None,
        "changed": mean_decision_change(kept[AS_GIVEN], kept[v]),
    }


def _same_figures(found, kept):
    for score in found.scores:
        want = _kept_figures(kept, score.variant)
        assert score.output_mean == pytest.approx(want["output_mean"], rel=1e-5, abs=1e-7)
        # float32 sums (before) against float64 (now): rounding of a few 1e-8
        assert score.output_std == pytest.approx(want["output_std"], rel=1e-5, abs=1e-6)
        if found.classifier:
            assert score.decisiveness is None  # the classifier verdict has top-1 instead
            continue
        if want["decisiveness"] is None:
            assert score.decisiveness is None
        else:
            assert score.decisiveness == pytest.approx(want["decisiveness"], rel=1e-5)
        assert score.changed == want["changed"]


def test_a_dense_heads_summary_gives_the_figures_of_every_output_kept():
    images = to_nchw(natural_images(12))
    kept = _outputs(heatmap_model(), images, VARIANTS)
    found = verdict("x", summarise(kept), len(images))
    assert not found.classifier and [s.variant for s in found.scores] == list(VARIANTS)
    _same_figures(found, kept)
    # the figures differ between variants: a summary that lost a sample's maps would show it
    assert found.score(SWAPPED).changed > 0.05 and found.given.changed == 0.0
    assert found.score(TIMES_255).decisiveness > found.given.decisiveness


def test_a_classifiers_summary_gives_the_verdict_of_every_output_kept():
    images = to_nchw([im[:, :, ::-1] for im in natural_images(24)])
    kept = _outputs(colour_classifier(), images, VARIANTS)
    found = verdict("x", summarise(kept), len(images))
    assert found.classifier and found.preferred == SWAPPED and found.strength == "strong"
    _same_figures(found, kept)
    for score in found.scores:
        p = np.concatenate([class_probs(o) for o in kept[score.variant]])
        given = np.concatenate([class_probs(o) for o in kept[AS_GIVEN]])
        assert score.mean_top1 == pytest.approx(float(p.max(axis=1).mean()), rel=1e-12)
        assert score.wins == float(np.mean(p.max(axis=1) > given.max(axis=1) + 1e-6))
        assert score.changed == float(np.mean(p.argmax(axis=1) != given.argmax(axis=1)))


def test_the_probe_gives_the_verdict_of_its_variants_outputs_kept(tmp_path):
    ctx = make_context(tmp_path, model=heatmap_model(), calib=to_nchw(natural_images(10)))
    [found] = compute_probe(ctx)
    [pre] = ctx.preprocessors
    variants = variants_for(ctx, pre)
    samples = list(read_samples(ctx.calibration, probe_indices(ctx.calibration, ctx.seed, 32)))
    kept = {v: [] for v in variants}
    for sample in samples:
        base = model_feeds(ctx.preprocessors, sample.arrays)
        x = sample.arrays[pre.input_name]
        for v, make in variants.items():
            kept[v].append(ctx.float_model.run({**base, pre.input_name: make(x)}))
    assert [s.variant for s in found.scores] == list(variants) and len(variants) >= 3
    _same_figures(found, kept)
    assert (found.preferred, found.strength) == (AS_GIVEN, "none")


def test_a_summary_keeps_no_output_map():
    given = [np.random.default_rng(0).random((1, 1, 256, 256), dtype=np.float32)]
    summary = OutputSummary()
    summary.add(given, given)  # numpy's and the summary's first allocations
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for k in range(16):  # 16 samples of a 256 KiB map: 4 MiB if they were kept
            out = [np.random.default_rng(k).random((1, 1, 256, 256), dtype=np.float32)]
            summary.add(out, given)
            del out
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert summary.samples == 17 and summary.count == 17 * 256 * 256
    assert held < 64 << 10


def test_float_runs_keeping_no_prefixes_leave_the_simulators_cache_as_it_was():
    from benchmarks.models import mobilenet_v2, random_samples
    from ptqtui.check.facts.float_model import FloatModel
    from ptqtui.inputs.model import build_graph
    from ptqtui.quant.simulate import Simulator

    model = mobilenet_v2(96)
    first, second = random_samples(model, 2)
    sim = Simulator(model, segmented=True)
    graph = build_graph(model)
    fm = FloatModel(graph, sim)
    name = sim.inputs[0]
    kept = fm.run({name: first[name]})
    cache = sim.prefixes
    held, cap = cache.bytes, cache.cap
    assert held > 0  # a float run keeps its prefixes
    with fm.keeping_no_prefixes():
        again = fm.run({name: first[name]})
        other = fm.run({name: second[name]})
        assert cache.bytes == held and cache.hits >= 1  # served from it, nothing added
    assert cache.cap == cap
    assert all(np.array_equal(a, b) for a, b in zip(kept, again, strict=True))
    after = fm.run({name: second[name]})
    assert cache.bytes > held  # stores again after
    assert all(np.array_equal(a, b) for a, b in zip(other, after, strict=True))
