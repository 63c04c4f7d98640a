from __future__ import annotations

from ptqtui.rules import ptq406_converter_output_cosine as rule

from ptqtui.check.findings import Severity
from tests.rules._logs import fixture_context, log_context, output_table


def test_fires_below_normal_and_leaves_the_collapsed_output_to_ptq407():
    [finding] = rule.check(fixture_context("x5_modelwise_collapsed.log"))
    assert finding.severity is Severity.MINOR
    assert [e.what for e in finding.evidence] == ["converter cosine of output logits"]


def test_obvious_loss_below_0_8_is_major():
    ctx = log_context(*output_table(("/linear/Gemm", 0.768926), ("aux", 0.95)))
    obvious, below = rule.check(ctx)
    assert obvious.severity is Severity.MAJOR and "obvious" in obvious.message
    assert below.severity is Severity.MINOR and "aux" in below.message


def test_quiet_at_0_99_and_above():
    ctx = log_context(*output_table(("out0", 0.999551), ("out1", 0.99)))
    assert rule.check(ctx) == []


def test_context_only_when_the_simulator_measured_the_outputs():
    from ptqtui.analysis.results import Analysis

    ctx = log_context(*output_table(("/linear/Gemm", 0.768926)), analysis=Analysis("int8"))
    [finding] = rule.check(ctx)
    assert finding.severity is Severity.INFO
