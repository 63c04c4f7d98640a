from __future__ import annotations

from ptqtui.rules import ptq407_converter_collapsed_output as rule

from ptqtui.check.findings import Severity
from ptqtui.inputs.model import load_model
from ptqtui.remedy import Placement
from tests.rules._logs import LOGS, fixture_context

DEMO_MODEL = LOGS.parents[2] / "demo_data" / "model.onnx"


def test_fires_on_a_collapsed_output_naming_its_node_from_the_log():
    [finding] = rule.check(fixture_context("x5_modelwise_collapsed.log"))
    assert finding.severity is Severity.CRITICAL and "0.000021" in finding.message
    assert "Softmax /head/softmax/Softmax" in finding.message
    [change] = finding.remedy.settings.nodes
    assert change.node == "/head/softmax/Softmax" and change.placement is Placement.CPU


def test_the_model_names_the_producer_when_given():
    graph = load_model(DEMO_MODEL)
    [finding] = rule.check(fixture_context("x5_modelwise_collapsed.log", graph=graph))
    assert "Softmax /head/softmax/Softmax" in finding.message


def test_quiet_when_no_output_collapsed():
    assert rule.check(fixture_context("x3_kl_cpu_split.log")) == []
