from __future__ import annotations

from ptqtui.rules import ptq104_calibration_set_size as rule

from ptqtui.check.findings import Severity
from tests.check.factories import make_context, natural_images, to_nchw


def test_fires_on_few_samples(tmp_path):
    [finding] = rule.check(make_context(tmp_path, calib=to_nchw(natural_images(5))))
    assert finding.remedy is None  # more samples is no change a remedy can make
    assert finding.severity is Severity.MAJOR and "only 5" in finding.message


def test_somewhat_few_is_minor(tmp_path):
    [finding] = rule.check(make_context(tmp_path, calib=to_nchw(natural_images(30))))
    assert finding.severity is Severity.MINOR


def test_quiet_on_about_a_hundred(tmp_path):
    assert rule.check(make_context(tmp_path, calib=to_nchw(natural_images(80)))) == []
