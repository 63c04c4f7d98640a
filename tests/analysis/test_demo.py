"""On the demo model: the per_tensor_loss scenario's loss, and its per-channel recovery, show in
the method sweep (skipped until demo_data/ is generated)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ptqtui.analysis.context import build_context
from ptqtui.analysis.sweep import method_sweep
from ptqtui.analysis.task import task_metric
from ptqtui.inputs.resolve import load_inputs
from ptqtui.request import Request

DEMO = Path(__file__).resolve().parents[2] / "demo_data"
SCENARIO = DEMO / "scenarios" / "per_tensor_loss" / "config.yaml"

pytestmark = pytest.mark.skipif(
    not (SCENARIO.exists() and (DEMO / "model.onnx").exists() and (DEMO / "eval").is_dir()),
    reason="demo data not generated",
)


def test_per_tensor_loss_and_its_per_channel_recovery_show_in_the_sweep():
    inputs = load_inputs(Request(config=SCENARIO, eval_dir=DEMO / "eval"))
    ctx = build_context(inputs, sensitivity_samples=4)
    assert ctx.eval is not None and not ctx.settings.per_channel
    quality = task_metric(ctx)
    assert quality.output_cosine < 0.98 and quality.loss_points > 0  # the loss shows
    rows = method_sweep(ctx).records
    [chosen] = [r for r in rows if r.chosen]
    assert ("calibration_type", "max") in chosen.settings
    recovered = [r for r in rows if ("per_channel", "True") in r.settings]
    assert recovered, [r.label for r in rows]
    best = max(recovered, key=lambda r: r.cosine)
    assert best.cosine > 0.999 > chosen.cosine + 0.02  # per_channel recovers it
    assert best.top1 > chosen.top1
