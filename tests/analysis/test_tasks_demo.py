"""The demo's non-classifier scenario (text_map) keeps the dense-map task path alive: inferred
from the outputs, the map IoU agreement on every calibration page, the mask labels' IoU."""

from __future__ import annotations

import pytest

from ptqtui.analysis.run import run_analysis
from ptqtui.demo import demo_dir, find_scenario
from ptqtui.inputs.resolve import load_inputs
from ptqtui.request import Request

pytestmark = pytest.mark.skipif(
    not (demo_dir() / "scenarios" / "text_map").is_dir(), reason="demo data not generated"
)


def test_text_map_scenario_measures_map_iou_and_mask_labels():
    scenario = find_scenario("text_map")
    assert scenario.eval_dir is not None and scenario.eval_dir.name == "eval"
    inputs = load_inputs(Request(config=scenario.config, eval_dir=scenario.eval_dir, quiet=True))
    assert inputs.task_labels is not None and len(inputs.task_labels) == 12
    analysis, ctx = run_analysis(inputs, sensitivity_samples=2)
    q = analysis.quality
    assert q is not None and q.task == "dense" and q.metric == "map IoU agreement"
    assert q.samples == len(ctx.kept) == 100  # every calibration page
    assert q.label_metric == "mask IoU vs labels"
    assert q.top1_float is not None and q.top1_float > 0.9  # the model reads the pages
    assert q.top1_quant is not None and q.loss_points is not None
    assert q.top1_agreement is not None and q.top1_agreement > 0.9
