"""Method sweep rows carry their remedy: the delta that turns the configured settings into
the row's, so a what-if of the row measures exactly the row (flags included)."""

from __future__ import annotations

import dataclasses

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
