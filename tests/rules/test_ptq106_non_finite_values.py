from __future__ import annotations

import numpy as np
from ptqtui.rules import ptq106_non_finite_values as rule

from ptqtui.check.findings import Severity
from ptqtui.remedy import InputChange, InputFix, Remedy
from tests.check.factories import make_context, natural_images, to_nchw


def test_fires_on_nan_and_inf(tmp_path):
    calib = to_nchw(natural_images(6), np.float32)
    calib[2][0, 0, :2, :2] = np.nan
    calib[4][0, 1, 0, 0] = np.inf
    [finding] = rule.check(make_context(tmp_path, calib=calib))
    assert finding.severity is Severity.CRITICAL
    assert "2 of 6" in finding.message and "s002.bin (4)" in finding.message
    drop = InputChange(InputFix.DROP_SAMPLES, "images", ("s002.bin", "s004.bin"))
    assert finding.remedy == Remedy(inputs=(drop,))


def test_quiet_on_finite_data(tmp_path):
    assert rule.check(make_context(tmp_path, calib=to_nchw(natural_images(6), np.float32))) == []
