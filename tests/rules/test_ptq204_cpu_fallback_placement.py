from __future__ import annotations

from ptqtui.rules import ptq204_cpu_fallback_placement as rule

from ptqtui.check.findings import Severity
from ptqtui.remedy import ConfigEdit
from tests.check.factories import colour_classifier, config_context, mapper_config


def test_fires_on_middle_cpu_node(tmp_path):
    config = mapper_config(model__node_info={"/pool/GlobalAveragePool": {"ON": "CPU"}})
    [finding] = rule.check(config_context(tmp_path, config, model=colour_classifier()))
    assert finding.severity is Severity.MAJOR and "middle" in finding.message
    [change] = finding.remedy.config
    assert change == ConfigEdit(
        "model_parameters.node_info",
        node="/pool/GlobalAveragePool",
        fields=(("ON", "BPU"),),
        line=change.line,
    )
    assert change.line is not None


def test_a_middle_node_of_run_on_cpu_leaves_the_list(tmp_path):
    config = mapper_config(cal__run_on_cpu="/pool/GlobalAveragePool; /head/Softmax")
    [finding] = rule.check(config_context(tmp_path, config, model=colour_classifier()))
    [change] = finding.remedy.config
    assert change.key == "calibration_parameters.run_on_cpu"
    assert change.old == ("/pool/GlobalAveragePool", "/head/Softmax")
    assert change.new == ("/head/Softmax",)


def test_fires_on_many_cpu_nodes(tmp_path):
    config = mapper_config(cal__run_on_cpu="/head/Softmax; /head/Gain; /head/Exp")
    findings = rule.check(config_context(tmp_path, config))
    assert [f.severity for f in findings] == [Severity.MINOR]
    assert "3 nodes run on the CPU" in findings[0].message
    assert findings[0].remedy is None  # which to keep is the user's call


def test_node_info_bpu_overrides_run_on_cpu(tmp_path):
    config = mapper_config(
        cal__run_on_cpu="/pool/GlobalAveragePool",
        model__node_info={"/pool/GlobalAveragePool": {"ON": "BPU"}},
    )
    assert rule.check(config_context(tmp_path, config, model=colour_classifier())) == []


def test_quiet_on_tail_nodes(tmp_path):
    config = mapper_config(cal__run_on_cpu="/head/Softmax; /head/Gain")
    assert rule.check(config_context(tmp_path, config, model=colour_classifier())) == []


def test_cpu_node_just_before_the_tail_is_minor(tmp_path):
    config = mapper_config(cal__run_on_cpu="/head/Gain")  # Softmax after it stays on the BPU
    [finding] = rule.check(config_context(tmp_path, config, model=colour_classifier()))
    assert finding.severity is Severity.MINOR and "/head/Softmax" in finding.fix
    assert finding.remedy is None  # two cures offered: more nodes to the CPU, or this one back
