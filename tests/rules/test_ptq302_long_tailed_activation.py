from __future__ import annotations

from ptqtui.rules import ptq302_long_tailed_activation as rule

from ptqtui.check.findings import Severity
from ptqtui.remedy import Remedy, SettingsDelta
from tests.advise.fakes import FakeContext, analysis, node, row

TAILED = (node(0, "b2/Add", act_min=0.0, act_max=40.0, act_p9999=4.0),)
EVEN = (node(0, "b2/Add", act_min=0.0, act_max=5.0, act_p9999=4.0),)
MAX = ("calibration_type", "max")
SWEEP = (
    row("max", 0.970, MAX, chosen=True),
    row("kl", 0.975, ("calibration_type", "kl")),
    row("max, max_percentile 0.9999", 0.985, MAX, ("max_percentile", "0.9999")),
)


def test_fires_when_clipping_beats_max():
    [f] = rule.check(FakeContext(analysis(nodes=TAILED, sweep=SWEEP)))
    assert f.severity is Severity.MAJOR
    assert "10.0x" in f.message and "max_percentile 0.9999" in f.message
    delta = SettingsDelta(calibration_type="max", max_percentile=0.9999)
    assert f.remedy == Remedy(settings=delta)


def test_kl_is_the_remedy_when_it_clips_best():
    sweep = (row("max", 0.970, MAX, chosen=True), row("kl", 0.99, ("calibration_type", "kl")))
    [f] = rule.check(FakeContext(analysis(nodes=TAILED, sweep=sweep)))
    assert f.remedy == Remedy(settings=SettingsDelta(calibration_type="kl"))


def test_quiet_without_a_tail():
    assert rule.check(FakeContext(analysis(nodes=EVEN, sweep=SWEEP))) == []


def test_quiet_when_clipping_does_not_help():
    flat = (row("max", 0.985, MAX), row("kl", 0.9851, ("calibration_type", "kl")))
    assert rule.check(FakeContext(analysis(nodes=TAILED, sweep=flat))) == []
