from __future__ import annotations

import numpy as np
from ptqtui.rules import ptq003_value_range_mismatch as rule

from ptqtui.check.findings import Severity
from ptqtui.remedy import InputChange, InputFix, Remedy
from tests.check.factories import colour_classifier, make_context, natural_images, to_nchw


def test_fires_on_unit_range_floats(tmp_path):
    calib = [x / 255.0 for x in to_nchw(natural_images(20), np.float32)]
    [finding] = rule.check(make_context(tmp_path, calib=calib))
    assert finding.severity is Severity.CRITICAL and "0..1" in finding.message
    assert "scaled x255" in finding.measured
    assert finding.remedy == Remedy(inputs=(InputChange(InputFix.SCALE_X255, "images"),))


def test_fires_on_raw_pixels_where_normalisation_is_missing(tmp_path):
    ctx = make_context(
        tmp_path, input__norm_type="no_preprocess", input__mean_value=None, input__scale_value=None
    )
    [finding] = rule.check(ctx)
    assert finding.severity is Severity.CRITICAL and "raw 0..255" in finding.message
    assert [(e.key, e.old, e.new) for e in finding.remedy.config] == [
        ("input_parameters.norm_type", "no_preprocess", "data_mean_and_scale"),
        ("input_parameters.mean_value", None, (123.675, 116.28, 103.53)),
        ("input_parameters.scale_value", None, (0.01712, 0.01751, 0.01743)),
    ]
    assert finding.remedy.inputs == ()


def test_fires_on_values_outside_pixel_range(tmp_path):
    calib = [x * 1.5 for x in to_nchw(natural_images(20), np.float32)]
    [finding] = rule.check(make_context(tmp_path, calib=calib))
    assert finding.severity is Severity.MAJOR and "outside 0..255" in finding.message
    assert finding.remedy is None  # clipping is no fix the simulator or the config can make


def test_fires_on_pixels_with_unit_scale_normalisation(tmp_path):
    ctx = make_context(
        tmp_path,
        input__mean_value="0.485 0.456 0.406",
        input__scale_value="4.367 4.464 4.444",
    )
    findings = rule.check(ctx)
    assert findings and "expects 0..1" in findings[0].message
    assert findings[0].remedy == Remedy(inputs=(InputChange(InputFix.SCALE_DIV255, "images"),))


def test_quiet_on_pixels(tmp_path):
    assert rule.check(make_context(tmp_path)) == []
    own = colour_classifier(own_normalisation=True)
    ctx = make_context(
        tmp_path / "own",
        model=own,
        input__norm_type="no_preprocess",
        input__mean_value=None,
        input__scale_value=None,
    )
    assert rule.check(ctx) == []
