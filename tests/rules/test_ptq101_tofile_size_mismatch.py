from __future__ import annotations

import numpy as np
from ptqtui.rules import ptq101_tofile_size_mismatch as rule

from ptqtui.check.findings import Severity
from ptqtui.remedy import InputChange, InputFix, Remedy
from tests.check.factories import make_context, natural_images, to_nchw


def test_fires_when_float32_files_are_declared_uint8(tmp_path):
    calib = to_nchw(natural_images(6), np.float32)
    ctx = make_context(tmp_path, calib=calib, cal__cal_data_type="uint8")
    [finding] = rule.check(ctx)
    assert finding.severity is Severity.CRITICAL
    assert "6 of 6" in finding.message and "float32 1x3x16x16" in finding.message
    assert finding.evidence[0].observed == "3072 bytes"
    [change] = finding.remedy.config
    assert (change.key, change.old, change.new) == (
        "calibration_parameters.cal_data_type",
        "uint8",
        "float32",
    )
    assert change.line is not None and not finding.remedy.inputs


def test_some_bad_files_is_major(tmp_path):
    calib = to_nchw(natural_images(8)) + to_nchw(natural_images(2, seed=5), np.float32)
    [finding] = rule.check(make_context(tmp_path, calib=calib, cal__cal_data_type="uint8"))
    assert finding.severity is Severity.MAJOR and "2 of 10" in finding.message
    # most files fit uint8: the two float32 files go, cal_data_type stays
    assert finding.remedy == Remedy(
        inputs=(InputChange(InputFix.DROP_SAMPLES, samples=("s008.bin", "s009.bin")),)
    )


def test_f32_suffix_conflict(tmp_path):
    ctx = make_context(tmp_path, cal__cal_data_dir="./calib_f32", cal__cal_data_type="uint8")
    [finding] = rule.check(ctx)
    assert finding.severity is Severity.INFO and "_f32" in finding.message
    assert finding.remedy is None


def test_quiet_on_fitting_files(tmp_path):
    assert rule.check(make_context(tmp_path)) == []
