from __future__ import annotations

from ptqtui.rules import ptq404_converter_node_dtypes as rule

from ptqtui.check.findings import Severity
from tests.rules._logs import fixture_context


def test_fires_on_an_int16_fallback_and_lists_int16_nodes():
    findings = rule.check(fixture_context("x5_modelwise_collapsed.log"))
    fallback, wide = findings
    assert fallback.severity is Severity.MINOR and "fell back to int8" in fallback.message
    assert fallback.evidence[0].expected == "int16"
    assert wide.severity is Severity.INFO and "/head/softmax/Softmax" in wide.message


def test_quiet_on_an_all_int8_model():
    assert rule.check(fixture_context("x3_kl_cpu_split.log")) == []
