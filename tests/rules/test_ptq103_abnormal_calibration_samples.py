from __future__ import annotations

import numpy as np
from ptqtui.rules import ptq103_abnormal_calibration_samples as rule

from ptqtui.check.findings import Severity
from ptqtui.remedy import InputFix
from tests.check.factories import make_context, natural_images, to_nchw


def test_fires_on_black_white_and_duplicate_samples(tmp_path):
    images = natural_images(20)
    images += [np.full_like(images[0], 3), np.full_like(images[0], 252), images[4].copy()]
    images[10] = np.where(images[10] > 100, 255, images[10]).astype(np.uint8)  # blown out
    [finding] = rule.check(make_context(tmp_path, calib=to_nchw(images)))
    text = finding.message
    assert "black (s020.bin)" in text and "white (s021.bin)" in text
    assert "near-duplicate (s022.bin = s004.bin)" in text
    assert "over-exposed (s010.bin)" in text
    assert finding.severity is Severity.MAJOR  # 4 of 23, 3 of them exposure
    [drop] = finding.remedy.inputs
    assert drop.fix is InputFix.DROP_SAMPLES and drop.input == "images"
    assert sorted(drop.samples) == ["s010.bin", "s020.bin", "s021.bin", "s022.bin"]


def test_one_duplicate_is_minor(tmp_path):
    images = natural_images(40)
    images.append(images[7].copy())
    [finding] = rule.check(make_context(tmp_path, calib=to_nchw(images)))
    assert finding.severity is Severity.MINOR and "s040.bin = s007.bin" in finding.message
    assert finding.remedy.inputs[0].samples == ("s040.bin",)  # the copy goes, not the original


def test_many_abnormal_samples_is_major(tmp_path):
    images = natural_images(8) + [np.zeros((16, 16, 3), np.uint8)] * 4
    [finding] = rule.check(make_context(tmp_path, calib=to_nchw(images)))
    assert finding.severity is Severity.MAJOR


def test_quiet_on_natural_images(tmp_path):
    assert rule.check(make_context(tmp_path, calib=to_nchw(natural_images(40)))) == []
