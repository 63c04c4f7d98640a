from __future__ import annotations

from ptqtui.rules import ptq403_converter_cpu_split as rule

from ptqtui.check.findings import Severity
from tests.rules._logs import fixture_context, log_context, node_table


def test_fires_when_cpu_nodes_split_the_bpu_part():
    [finding] = rule.check(fixture_context("x5_modelwise_collapsed.log"))
    assert finding.severity is Severity.MINOR and "2 subgraphs" in finding.message
    assert "/mix/concat/Concat" in finding.evidence[0].observed


def test_a_cpu_node_at_the_end_only_is_info():
    ctx = log_context(
        *node_table(
            ("conv", "BPU", "id(0)", "HzSQuantizedConv", "0.999", "2.0", "int8"),
            ("out_reshape", "CPU", "--", "Reshape", "0.999", "--", "float"),
        )
    )
    [finding] = rule.check(ctx)
    assert finding.severity is Severity.INFO


def test_quiet_when_everything_is_on_the_bpu():
    assert rule.check(fixture_context("x5_default_kl_truncated.log")) == []
