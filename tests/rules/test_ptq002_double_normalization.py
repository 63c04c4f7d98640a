from __future__ import annotations

import numpy as np
from ptqtui.rules import ptq002_double_normalization as rule

from ptqtui.check.findings import Severity
from ptqtui.remedy import InputChange, InputFix, Remedy
from tests.check.factories import (
    MEAN,
    SCALE,
    colour_classifier,
    make_context,
    natural_images,
    to_nchw,
)


def _normalised(images):
    m = np.asarray(MEAN).reshape(1, 3, 1, 1)
    s = np.asarray(SCALE).reshape(1, 3, 1, 1)
    return [((x - m) * s).astype(np.float32) for x in to_nchw(images, np.float32)]


def test_fires_on_normalised_calibration_data(tmp_path):
    ctx = make_context(tmp_path, calib=_normalised(natural_images(20)))
    [finding] = rule.check(ctx)
    assert finding.code == "PTQ002" and finding.severity is Severity.CRITICAL
    assert "already normalised" in finding.message
    assert finding.evidence[1].expected == "0..255 pixels"
    assert "config normalisation removed" in finding.measured
    assert finding.remedy == Remedy(inputs=(InputChange(InputFix.REMOVE_NORMALISATION, "images"),))


def test_fires_when_the_model_normalises_itself(tmp_path):
    ctx = make_context(tmp_path, model=colour_classifier(own_normalisation=True))
    [finding] = rule.check(ctx)
    assert finding.severity is Severity.CRITICAL and "its own normalisation" in finding.message
    assert finding.evidence[1].where == "node /norm/Sub"
    [change] = finding.remedy.config  # the config's normalisation goes, the data stays
    assert (change.key, change.old, change.new) == (
        "input_parameters.norm_type",
        "data_mean_and_scale",
        "no_preprocess",
    )
    assert change.line is not None and finding.remedy.inputs == ()


def test_quiet_on_raw_pixels(tmp_path):
    assert rule.check(make_context(tmp_path)) == []


def test_quiet_when_only_the_model_normalises(tmp_path):
    ctx = make_context(
        tmp_path,
        model=colour_classifier(own_normalisation=True),
        input__norm_type="no_preprocess",
        input__mean_value=None,
        input__scale_value=None,
    )
    assert rule.check(ctx) == []


def test_moderate_probe_preference_alone_is_not_enough(tmp_path):
    from dataclasses import replace

    from ptqtui.check.context import NORM_REMOVED

    ctx = make_context(tmp_path)
    [verdict] = ctx.probe
    weak = replace(verdict, preferred=NORM_REMOVED, strength="weak", margin=0.06)
    ctx._cache["probe"] = (weak,)
    assert rule.check(ctx) == []
    ctx._cache["probe"] = (replace(weak, strength="strong", margin=0.3),)
    ctx._cache["data_stats"] = ()  # the data's range unknown: the model's response decides
    [finding] = rule.check(ctx)
    assert finding.severity is Severity.CRITICAL  # decisive: the measure decides the grade


def test_a_strong_probe_on_raw_pixels_is_not_double_normalisation(tmp_path):
    """Scrambled 0..255 data (e.g. NHWC read as NCHW) can make a model prefer anything; the
    data's own range says it was never normalised."""
    from dataclasses import replace

    from ptqtui.check.context import NORM_REMOVED

    ctx = make_context(tmp_path)
    [verdict] = ctx.probe
    ctx._cache["probe"] = (replace(verdict, preferred=NORM_REMOVED, strength="strong", margin=0.5),)
    assert ctx.data_stats[0].max > 8
    assert rule.check(ctx) == []
