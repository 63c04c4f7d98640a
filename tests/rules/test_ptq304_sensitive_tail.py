from __future__ import annotations

from ptqtui.rules import ptq304_sensitive_tail as rule

from ptqtui.check.findings import Severity
from ptqtui.quant.scheme import QuantSettings
from ptqtui.remedy import DType, NodeChange, Placement
from tests.advise.fakes import FakeContext, FakeSim, analysis, node

NODES = (
    node(0, "stem/Conv"),
    node(1, "head/Gemm", sensitivity_cosine=0.995, int16_gain=0.001),
    node(2, "head/Softmax", placement="CPU", dtype="float"),
)


def test_fires_with_the_measured_cpu_gain():
    sim = FakeSim(
        QuantSettings("max"), lambda s: 0.97 + (0.02 if "head/Gemm" in s.run_on_cpu else 0)
    )
    [f] = rule.check(FakeContext(analysis(nodes=NODES), sim=sim))
    assert f.related == ("head/Gemm",) and f.severity is Severity.MAJOR
    assert "gains from CPU" in f.message and "0.9700 -> 0.9900" in f.message
    assert "int16 gains 0.0010" in f.message
    assert f.remedy.settings.nodes == (NodeChange("head/Gemm", placement=Placement.CPU),)
    moved = f.remedy.settings.apply(sim.settings).node_overrides
    assert [(o.node, o.on) for o in moved] == [("head/Gemm", "CPU")]


def test_fires_on_int16_gain_alone_without_simulator():
    [f] = rule.check(FakeContext(analysis(nodes=NODES)))
    assert f.severity is Severity.MINOR and "gains from int16" in f.message
    assert f.remedy.settings.nodes == (NodeChange("head/Gemm", dtype=DType.INT16),)


def test_quiet_when_nothing_helps():
    quiet = (node(0, "stem/Conv"), node(1, "head/Gemm", int16_gain=0.0001))
    sim = FakeSim(QuantSettings("max"), lambda s: 0.995)
    assert rule.check(FakeContext(analysis(nodes=quiet), sim=sim)) == []


def test_a_small_negative_int16_figure_is_labelled_within_noise_and_a_large_one_is_not():
    sim = FakeSim(
        QuantSettings("max"), lambda s: 0.97 + (0.02 if "head/Gemm" in s.run_on_cpu else 0)
    )
    for gain, labelled in ((-0.0002, True), (-0.016, False)):
        nodes = (node(0, "stem/Conv"), node(1, "head/Gemm", int16_gain=gain))
        [f] = rule.check(FakeContext(analysis(nodes=nodes), sim=sim))  # the CPU gain fires
        assert f"int16 gains {gain:.4f} output cosine" in f.message
        assert ("(within noise)" in f.message) is labelled
    # the cosine alone: on the analysis samples, not the task agreement's (100 on a detector)
    assert sim.options and all(o.get("similarity_only") for o in sim.options)
