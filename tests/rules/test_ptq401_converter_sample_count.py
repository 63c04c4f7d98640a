from __future__ import annotations

from ptqtui.rules import ptq401_converter_sample_count as rule

from ptqtui.check.findings import Severity
from tests.rules._logs import PREFIX, fixture_context, log_context


def test_fires_on_the_31_samples_public_logs_show():
    [finding] = rule.check(fixture_context("x3_kl_cpu_split.log"))
    assert finding.severity is Severity.MINOR and "31 samples" in finding.message
    assert finding.evidence[0].where == "x3_kl_cpu_split.log line 14"


def test_very_few_is_major():
    ctx = log_context(PREFIX + "There are 8 samples in the calibration data set.")
    [finding] = rule.check(ctx)
    assert finding.severity is Severity.MAJOR


def test_quiet_on_about_a_hundred():
    ctx = log_context(PREFIX + "There are 100 samples in the calibration data set.")
    assert rule.check(ctx) == []
