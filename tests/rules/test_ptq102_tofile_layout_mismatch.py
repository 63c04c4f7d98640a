from __future__ import annotations

import numpy as np
from ptqtui.rules import ptq102_tofile_layout_mismatch as rule

from ptqtui.check.findings import Severity
from ptqtui.remedy import InputChange, InputFix, Remedy
from tests.check.factories import make_context, natural_images, to_nchw


def test_fires_on_nhwc_bytes_read_as_nchw(tmp_path):
    calib = [im[None] for im in natural_images(12)]  # written NHWC, config says NCHW
    [finding] = rule.check(make_context(tmp_path, calib=calib))
    assert finding.severity is Severity.CRITICAL
    assert "written NHWC but are read NCHW" in finding.message
    assert "transpose(0, 3, 1, 2)" in finding.fix
    assert finding.remedy == Remedy(inputs=(InputChange(InputFix.READ_NHWC, "images"),))


def test_fires_on_mixed_sizes(tmp_path):
    calib = to_nchw(natural_images(8)) + to_nchw(natural_images(2, seed=5), np.float32)
    [finding] = rule.check(make_context(tmp_path, calib=calib, cal__cal_data_type="uint8"))
    assert finding.severity is Severity.MAJOR and "mixed sizes" in finding.message
    assert finding.remedy is None


def test_quiet_on_nchw_files(tmp_path):
    assert rule.check(make_context(tmp_path)) == []
