from __future__ import annotations

from ptqtui.rules import ptq303_sensitive_node as rule

from ptqtui.check.findings import Severity
from ptqtui.remedy import DType, NodeChange, Remedy, SettingsDelta
from tests.advise.fakes import FakeContext, analysis, node


def test_fires_per_sensitive_node_worst_first():
    nodes = (
        node(0, "stem/Conv", sensitivity_cosine=0.9995, int16_gain=0.0003),
        node(1, "b2/Conv", sensitivity_cosine=0.985, int16_gain=0.012),
        node(2, "head/Gemm", sensitivity_cosine=0.9980, int16_gain=0.0001),
        node(3, "b3/Conv", sensitivity_cosine=0.99995),
    )
    first, second = rule.check(FakeContext(analysis(nodes=nodes)))
    assert first.related == ("b2/Conv",) and first.severity is Severity.MAJOR
    assert "int16 on b2/Conv gains 0.0120" in first.message
    assert first.remedy == Remedy(
        settings=SettingsDelta(nodes=(NodeChange("b2/Conv", dtype=DType.INT16),))
    )
    assert second.related == ("head/Gemm",) and second.severity is Severity.MINOR
    assert "no measurable help" in second.message
    assert second.remedy is None  # int16 measurably does not help: no cure to offer


def test_quiet_when_every_node_is_above_the_threshold():
    nodes = (node(0, "stem/Conv", sensitivity_cosine=0.9995), node(1, "x", sensitivity_cosine=None))
    assert rule.check(FakeContext(analysis(nodes=nodes))) == []


def test_int16_gain_measured_by_the_simulator_or_unavailable_on_x3(tmp_path):
    from ptqtui.inputs.config import load_config
    from ptqtui.quant.scheme import QuantSettings
    from tests.advise.fakes import FakeSim

    nodes = (node(0, "b2/Conv", sensitivity_cosine=0.985),)
    sim = FakeSim(
        QuantSettings("max"),
        lambda s: 0.99 if any(o.input_dtype == "int16" for o in s.node_overrides) else 0.98,
    )
    [f] = rule.check(FakeContext(analysis(nodes=nodes), sim=sim))
    assert "int16 on b2/Conv gains 0.0100" in f.message
    # the cosine alone: on the analysis samples, not the task agreement's (100 on a detector)
    assert sim.options and all(o.get("similarity_only") for o in sim.options)
    assert f.remedy.settings.nodes == (NodeChange("b2/Conv", dtype=DType.INT16),)
    path = tmp_path / "x3.yaml"
    path.write_text("model_parameters:\n  march: bernoulli2\n")
    [f] = rule.check(FakeContext(analysis(nodes=nodes), config=load_config(path), sim=sim))
    assert "not available on march bernoulli2" in f.message
    assert f.remedy is None
