from __future__ import annotations

from ptqtui.rules import ptq402_converter_dtype_conflict as rule

from ptqtui.check.findings import Severity
from tests.rules._logs import fixture_context


def test_fires_on_the_converter_warning():
    [finding] = rule.check(fixture_context("x5_default_kl_truncated.log"))
    assert finding.severity is Severity.INFO and "float32" in finding.message
    assert finding.evidence[0].where == "x5_default_kl_truncated.log line 5"


def test_quiet_without_the_warning():
    assert rule.check(fixture_context("x5_modelwise_collapsed.log")) == []
