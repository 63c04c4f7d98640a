from __future__ import annotations

from ptqtui.rules import ptq301_per_tensor_weight_range as rule

from ptqtui.check.findings import Severity
from ptqtui.remedy import Remedy, SettingsDelta
from tests.advise.fakes import FakeContext, analysis, node, row

NODES = (
    node(0, "stem/Conv", weight_range_ratio=2.0),
    node(1, "b1/dw/Conv", weight_range_ratio=38.5),
)
MAX = ("calibration_type", "max")
PCT = ("max_percentile", "0.99995")
PC = ("per_channel", "True")


def test_fires_major_with_the_measured_gain():
    sweep = (
        row("max, max_percentile 0.99995", 0.95, MAX, PCT, chosen=True),
        row("max, max_percentile 0.99995 + per_channel", 0.995, MAX, PCT, PC),
    )
    [f] = rule.check(FakeContext(analysis(nodes=NODES, sweep=sweep)))
    assert f.code == "PTQ301" and f.severity is Severity.MAJOR
    assert "38.5x" in f.message and "0.9500 -> 0.9950" in f.message
    assert f.related == ("b1/dw/Conv",)
    assert f.remedy == Remedy(settings=SettingsDelta(per_channel=True))


def test_small_gain_is_minor():
    sweep = (
        row("max", 0.990, MAX, chosen=True),
        row("max + per_channel", 0.993, MAX, PC),
    )
    [f] = rule.check(FakeContext(analysis(nodes=NODES, sweep=sweep)))
    assert f.severity is Severity.MINOR
    assert f.remedy.settings.per_channel is True


def test_quiet_when_gain_within_noise():
    sweep = (row("max", 0.990, MAX, chosen=True), row("max + per_channel", 0.9902, MAX, PC))
    assert rule.check(FakeContext(analysis(nodes=NODES, sweep=sweep))) == []


def test_quiet_when_ranges_are_even_or_per_channel_is_on():
    even = (node(0, "stem/Conv", weight_range_ratio=2.0),)
    sweep = (row("max", 0.95, MAX, chosen=True), row("max + per_channel", 0.995, MAX, PC))
    assert rule.check(FakeContext(analysis(nodes=even, sweep=sweep))) == []
    on = (row("max + per_channel", 0.995, MAX, PC, chosen=True),)
    assert rule.check(FakeContext(analysis(nodes=NODES, sweep=on))) == []


def test_measured_by_the_simulator_when_the_sweep_stopped_early():
    from ptqtui.quant.scheme import QuantSettings
    from tests.advise.fakes import FakeSim

    sim = FakeSim(QuantSettings("max", 0.99995), lambda s: 0.999 if s.per_channel else 0.96)
    sweep = (row("max, max_percentile 0.99995", 0.96, MAX, PCT, chosen=True),)
    [f] = rule.check(FakeContext(analysis(nodes=NODES, sweep=sweep), sim=sim))
    assert f.severity is Severity.MAJOR and "0.9600 -> 0.9990" in f.message
    assert [s.per_channel for s in sim.calls] == [False, True]
    assert f.remedy.settings.apply(sim.settings) == QuantSettings("max", 0.99995, per_channel=True)


def test_default_calibration_names_the_method_measured_with_per_channel(tmp_path):
    from ptqtui.inputs.config import load_config

    path = tmp_path / "m.yaml"
    path.write_text("calibration_parameters:\n  calibration_type: default\n")
    sweep = (row("default", 0.95, ("calibration_type", "default"), chosen=True),)
    sweep += (row("max", 0.95, MAX), row("max + per_channel", 0.995, MAX, PC))
    ctx = FakeContext(analysis(nodes=NODES, sweep=sweep), config=load_config(path))
    [f] = rule.check(ctx)
    assert f.remedy == Remedy(settings=SettingsDelta(calibration_type="max", per_channel=True))
