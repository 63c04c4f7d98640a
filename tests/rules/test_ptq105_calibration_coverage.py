from __future__ import annotations

from ptqtui.rules import ptq105_calibration_coverage as rule

from ptqtui.check.findings import Severity
from tests.check.factories import make_context, natural_images, to_nchw


def test_fires_on_one_class_set(tmp_path):
    calib = to_nchw(natural_images(20, classes=[2]))
    findings = rule.check(make_context(tmp_path, calib=calib))
    assert findings[0].severity is Severity.MAJOR
    assert "only 1 of 5 classes" in findings[0].message


def test_imbalance(tmp_path):
    calib = to_nchw(natural_images(20, classes=[0, 0, 0, 0, 0, 0, 1, 2, 3, 4]))
    [finding] = rule.check(make_context(tmp_path, calib=calib))
    assert finding.remedy is None  # more varied samples is no change a remedy can make
    assert "60 %" in finding.message and "imbalanced" in finding.message


def test_quiet_on_balanced_set(tmp_path):
    assert rule.check(make_context(tmp_path)) == []
