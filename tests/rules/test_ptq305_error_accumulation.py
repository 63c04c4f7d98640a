from __future__ import annotations

from ptqtui.rules import ptq305_error_accumulation as rule

from ptqtui.check.findings import Severity
from tests.advise.fakes import FakeContext, analysis, curve, node


def test_fires_when_the_loss_is_spread():
    values = [1.0 - 0.002 * i for i in range(10)]  # 0.018 lost, evenly
    nodes = tuple(node(i, f"n{i}", sensitivity_cosine=0.9985) for i in range(10))
    [f] = rule.check(FakeContext(analysis(nodes=nodes, curve=curve(values))))
    assert f.remedy is None  # whole-model advice: no single typed change
    assert f.severity is Severity.MINOR
    assert "explain 25 %" in f.message


def test_quiet_with_a_single_culprit():
    values = [0.9999, 0.9998, 0.985, 0.9849]
    nodes = (node(0, "a"), node(1, "b"), node(2, "c", sensitivity_cosine=0.986), node(3, "d"))
    assert rule.check(FakeContext(analysis(nodes=nodes, curve=curve(values)))) == []


def test_quiet_when_little_is_lost():
    values = [0.9999, 0.9995, 0.9990]
    nodes = tuple(node(i, f"n{i}", sensitivity_cosine=0.9999) for i in range(3))
    assert rule.check(FakeContext(analysis(nodes=nodes, curve=curve(values)))) == []
