"""Method sweep rows carry their remedy: the delta that turns the configured settings into
the row's, so a what-if of the row measures exactly the row (flags included)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ptqtui.analysis.context import build_context
from ptqtui.analysis.sweep import method_sweep
from ptqtui.analysis.whatif import WhatIf, settings_after
from ptqtui.inputs.resolve import load_inputs
from ptqtui.request import Request
from tests.check.factories import (
    colour_classifier,
    mapper_config,
    natural_images,
    to_nchw,
    write_bins,
    write_config,
)


def test_every_row_remedy_leads_to_the_row_settings(tmp_path) -> None:
    (tmp_path / "model.onnx").write_bytes(colour_classifier().SerializeToString())
    write_bins(tmp_path / "calib", to_nchw(natural_images(12, seed=1)))
    config = write_config(
        tmp_path / "mapper.yaml",
        mapper_config(cal__calibration_type="max", cal__max_percentile=0.99995),
    )
    inputs = load_inputs(Request(model=tmp_path / "model.onnx", config=config))
    ctx = build_context(inputs, sensitivity_samples=2)
    rows = method_sweep(ctx).records
    configured = ctx.settings
    labels = {r.label: r for r in rows}
    flagged = [r for r in rows if "+ " in r.label]
    assert flagged, [r.label for r in rows]  # per_channel, asymmetric, bias_correction rows
    for row in rows:
        assert row.remedy is not None and row.remedy.settings is not None
        settings = settings_after(configured, row.remedy)
        described = dict(row.settings)
        assert settings.calibration_type == described["calibration_type"]
        for flag in ("asymmetric", "bias_correction"):
            assert getattr(settings, flag) == (flag in described.get("optimization", ""))
        assert settings.per_channel == ("per_channel" in described)
    assert labels["max, max_percentile 0.99995"].chosen
    assert labels["max, max_percentile 0.99995"].remedy.is_empty()
    plain = labels["max"].remedy.settings
    assert plain is not None and plain.max_percentile == 1.0  # the percentile cleared
    # measured through the what-if service: the very row (no forward pass again)
    w = WhatIf(ctx, inputs, eval_limit=None)
    passes = ctx.sim.forward_passes
    last = flagged[-1]
    assert w.measure(last.remedy).cosine == last.cosine
    assert ctx.sim.forward_passes == passes
    assert dataclasses.replace(configured) == configured


def _sweep_of(**request):
    """The method sweep of the demo's sensitive_tail scenario (no labels: the agreement of the
    calibration samples), where the methods differ well beyond the noise."""
    demo = Path(__file__).resolve().parents[2] / "demo_data"
    config = demo / "scenarios" / "sensitive_tail" / "config.yaml"
    inputs = load_inputs(Request(config=config, **request))
    ctx = build_context(inputs, sensitivity_samples=8)
    return ctx, method_sweep(ctx)


def test_only_the_rows_that_can_win_are_measured_on_every_agreement_sample() -> None:
    ctx, out = _sweep_of()
    rows = out.records
    n = len(ctx.kept)
    assert ctx.has_task_metric and n >= 100
    whole = [r for r in rows if r.samples is not None]
    cheap = [r for r in rows if r.samples is None]
    assert cheap and whole, [(r.label, r.cosine, r.samples) for r in rows]
    assert all(r.samples == n and r.agreement is not None for r in whole)
    assert all(r.agreement is None for r in cheap)
    assert next(r for r in rows if r.chosen).samples == n  # the configured row, always
    best = max(rows, key=lambda r: r.cosine)
    assert best.samples == n
    for r in cheap:  # each lost beyond the noise of the best row
        assert best.cosine - r.cosine > 2e-4
    assert any(f"{len(whole)} of {len(rows)} rows measured whole" in n for n in out.notes)
    # the cheap rows cost S passes, not the agreement samples
    assert out.passes < len(rows) * n


def test_without_a_task_metric_every_row_is_measured_alike() -> None:
    ctx, out = _sweep_of(task="raw")
    assert not ctx.has_task_metric
    assert all(r.samples is None and r.agreement is None for r in out.records)
    assert not any("measured whole" in n for n in out.notes)


def test_one_sample_a_run_at_most_the_best_rows_within_the_noise_are_measured_whole() -> None:
    from ptqtui.analysis.sweep import WHOLE_ROWS

    demo = Path(__file__).resolve().parents[2] / "demo_data"
    config = demo / "scenarios" / "sensitive_tail" / "config.yaml"
    ctx = build_context(load_inputs(Request(config=config)), sensitivity_samples=8)
    ctx.sim.batchable = False  # as a 640 detector's samples run
    rows = method_sweep(ctx).records
    whole = [r for r in rows if r.samples is not None]
    others = [r for r in whole if not r.chosen]
    assert whole and 0 < len(others) <= WHOLE_ROWS  # each a pass per agreement sample
    best = max(rows, key=lambda r: r.cosine)
    assert best in whole
    for r in rows:
        if r not in whole:  # lost beyond the noise, or WHOLE_ROWS rows beat it
            assert (
                best.cosine - r.cosine > 2e-4
                or sum(w.cosine >= r.cosine for w in others) == WHOLE_ROWS
            )
