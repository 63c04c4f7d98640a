from __future__ import annotations

import pytest
from ptqtui.rules import ptq203_unknown_node_name as rule

from ptqtui.check.context import MissingFact
from tests.check.factories import colour_classifier, config_context, mapper_config


def test_fires_with_closest_names(tmp_path):
    config = mapper_config(
        model__node_info={"/head/Softmx": {"ON": "CPU"}},
        cal__run_on_cpu="/head/Gain; nothing_like_it",
    )
    findings = rule.check(config_context(tmp_path, config, model=colour_classifier()))
    assert len(findings) == 2
    first = next(f for f in findings if "Softmx" in f.message)
    assert "closest: /head/Softmax" in first.message
    [rename] = first.remedy.config
    assert rename.rename and (rename.key, rename.node, rename.new) == (
        "model_parameters.node_info",
        "/head/Softmx",
        "/head/Softmax",
    )
    assert rename.line is not None
    other = next(f for f in findings if f is not first)
    assert other.remedy is None  # nothing close to rename it to


def test_quiet_when_names_exist(tmp_path):
    config = mapper_config(
        model__node_info="/head/Softmax:int16;/head/Gain:int16", cal__run_on_cpu="/head/Softmax"
    )
    assert rule.check(config_context(tmp_path, config, model=colour_classifier())) == []


def test_needs_the_model(tmp_path):
    with pytest.raises(MissingFact):
        rule.check(config_context(tmp_path, mapper_config()))
