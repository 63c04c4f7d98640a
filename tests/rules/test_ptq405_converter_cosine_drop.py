from __future__ import annotations

from ptqtui.rules import ptq405_converter_cosine_drop as rule

from ptqtui.check.findings import Severity
from ptqtui.remedy import DType
from tests.rules._logs import fixture_context, log_context, node_table


def test_fires_where_the_cosine_drops_with_an_int16_remedy():
    findings = rule.check(fixture_context("x5_modelwise_collapsed.log"))
    assert [f.evidence[0].what for f in findings] == [
        "converter cosine of /head/softmax/Softmax",
        "converter cosine of /b4/pw/conv/Conv",
    ]
    drop = findings[1]
    assert drop.severity is Severity.INFO  # 0.036: below the big-drop line
    [change] = drop.remedy.settings.nodes
    assert change.node == "/b4/pw/conv/Conv" and change.dtype is DType.INT16


def test_no_remedy_for_rows_the_converter_added():
    ctx = log_context(
        *node_table(
            ("conv", "BPU", "id(0)", "HzSQuantizedConv", "0.999", "2.0", "int8"),
            ("UNIT_CONV_FOR_add", "BPU", "id(0)", "HzSQuantizedConv", "0.90", "2.0", "int8"),
        )
    )
    [finding] = rule.check(ctx)
    assert finding.severity is Severity.MINOR and finding.remedy is None


def test_quiet_on_a_smooth_table():
    ctx = log_context(
        *node_table(
            ("a", "BPU", "id(0)", "HzSQuantizedConv", "0.9990", "2.0", "int8"),
            ("b", "BPU", "id(0)", "HzSQuantizedConv", "0.9970", "2.0", "int8"),
            ("c", "BPU", "id(0)", "HzSQuantizedConv", "0.9950", "2.0", "int8"),
        )
    )
    assert rule.check(ctx) == []
