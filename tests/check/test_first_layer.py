"""The first-layer evidence and the one-arbitration-per-input probe, on the demo model and data."""

from __future__ import annotations

import pytest

from ptqtui.check.context import Context
from ptqtui.check.facts.first_layer import BN_RMS_HIGH, BN_RMS_LOW, first_conv, off_scale
from ptqtui.check.facts.probe import (
    AS_GIVEN,
    NORM_ADDED,
    SWAPPED,
    TIMES_255_OTHER_LAYOUT,
    ProbeStrength,
)
from ptqtui.demo import demo_dir, find_scenario
from ptqtui.inputs.resolve import load_inputs
from ptqtui.remedy import InputFix
from ptqtui.request import Request

pytestmark = pytest.mark.skipif(
    not (demo_dir() / "scenarios" / "missing_norm").is_dir(), reason="demo data not generated"
)


def _context(name: str, *, with_eval: bool = False) -> Context:
    scenario = find_scenario(name)
    eval_dir = scenario.eval_dir if with_eval else None
    return Context.from_inputs(
        load_inputs(Request(config=scenario.config, eval_dir=eval_dir, quiet=True)),
        probe_samples=16,
    )


def test_first_conv_is_found_after_the_input():
    ctx = _context("good")
    conv = first_conv(ctx.graph, "images")
    assert conv is not None and ctx.graph.node(conv.node).op_type == "Conv"


def test_raw_pixels_put_the_first_layer_off_scale_and_normalisation_wins():
    [verdict] = _context("missing_norm").probe
    given = verdict.given.first_rms
    added = verdict.score(NORM_ADDED).first_rms
    assert given is not None and given > BN_RMS_HIGH and off_scale(given) > 0.6
    assert added is not None and BN_RMS_LOW <= added <= BN_RMS_HIGH
    assert verdict.preferred == NORM_ADDED and verdict.strength is ProbeStrength.STRONG


def test_clean_data_keeps_the_first_layer_in_band_and_as_given():
    [verdict] = _context("good").probe
    assert off_scale(verdict.given.first_rms) == 0.0
    assert verdict.preferred == AS_GIVEN and verdict.strength is ProbeStrength.NONE


def test_unit_nhwc_is_explained_by_both_fixes_together():
    ctx = _context("unit_nhwc")
    [verdict] = ctx.probe
    assert verdict.preferred == TIMES_255_OTHER_LAYOUT
    assert verdict.fixes(verdict.preferred, "NCHW") == (InputFix.SCALE_X255, InputFix.READ_NHWC)


def test_swapped_data_raises_the_paired_gain_only_where_it_is_swapped():
    # the demo classifier is as sure of swapped colours as of right ones: the paired gain
    # stays small both ways, which is why colour statistics must carry the channel order
    [bgr] = _context("bgr_no_eval").probe
    [good] = _context("good").probe
    assert abs(bgr.score(SWAPPED).paired_z) < 2 and abs(good.score(SWAPPED).paired_z) < 2
    assert bgr.score(SWAPPED).changed > 0.5


def test_the_winning_explanation_is_the_finding_and_its_remedy():
    from ptqtui.rules import (
        ptq002_double_normalization,
        ptq003_value_range_mismatch,
    )

    ctx = _context("unit_nhwc")
    [finding] = ptq003_value_range_mismatch.check(ctx)
    assert finding.severity.value == "critical"
    assert [c.fix for c in finding.remedy.inputs] == [InputFix.SCALE_X255, InputFix.READ_NHWC]
    assert ptq002_double_normalization.check(ctx) == []


def test_missing_normalisation_is_ptq003_critical_and_quiet_on_clean_data():
    from ptqtui.rules import ptq003_value_range_mismatch

    [finding] = ptq003_value_range_mismatch.check(_context("missing_norm"))
    assert finding.severity.value == "critical"
    keys = {e.key for e in finding.remedy.config}
    assert "input_parameters.norm_type" in keys
    assert ptq003_value_range_mismatch.check(_context("good")) == []


def test_bluer_than_natural_data_gives_ptq001_without_evaluation_images():
    from ptqtui.rules import ptq001_channel_order_mismatch

    [finding] = ptq001_channel_order_mismatch.check(_context("bgr_no_eval"))
    assert finding.severity.value == "major"
    assert [c.fix for c in finding.remedy.inputs] == [InputFix.SWAP_CHANNELS]
    assert ptq001_channel_order_mismatch.check(_context("good")) == []


def test_non_finite_samples_are_left_out_and_the_analysis_goes_on():
    from ptqtui.diagnosis import diagnose

    scenario = find_scenario("nan_files")
    report = diagnose(Request(config=scenario.config, quiet=True, sensitivity_samples=2))
    assert any(f.code == "PTQ106" for f in report.findings)
    analysis = report.analysis
    assert analysis is not None and analysis.quality is not None
    assert analysis.quality.top1_agreement == 1.0  # 4 NaN samples no longer disagree
    assert any("NaN/Inf left out" in note for note in analysis.notes)
