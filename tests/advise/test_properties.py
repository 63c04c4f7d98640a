"""The plan properties (ptqtui/advise/properties.py) fire on a plan that breaks them and stay
quiet on one that keeps them (the demo and corpus runs: test_plan_properties, bench_plan)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ptqtui.advise.properties import Property, check, cosine_noise
from ptqtui.advise.results import Measure, MeasuredOn, Pipeline, Reference
from ptqtui.check.findings import Severity
from ptqtui.diagnosis import Diagnosis
from tests.prepared import prepared_diagnosis


def _kept() -> Diagnosis:
    """The prepared diagnosis with what each step was measured on, starting at the summary."""
    d = prepared_diagnosis()
    plan = d.plan
    pipeline = replace(
        plan.steps[0],
        measured_on=MeasuredOn(Pipeline.WRITTEN_THEN_FIXED, Reference.LABELS, labelled=300),
    )
    fixed = MeasuredOn(Pipeline.FIXED, samples=32, fixes=("swap channels (PTQ001)",))
    first = replace(plan.steps[1], measured_on=fixed)
    quality = d.analysis.quality
    start = Measure(quality.output_cosine, quality.top1_quant, noise=0.0006)
    steps = (pipeline, first, replace(plan.steps[2], measured_on=fixed))
    return replace(d, plan=replace(plan, steps=steps, start=start))


def _step(d: Diagnosis, i: int, **kw) -> Diagnosis:
    steps = list(d.plan.steps)
    steps[i] = replace(steps[i], **kw)
    return replace(d, plan=replace(d.plan, steps=tuple(steps)))


def test_a_plan_that_keeps_every_property_is_quiet():
    d = _kept()
    assert check(d) == []
    assert cosine_noise(d) == pytest.approx(0.0006)


def test_a_measured_step_that_does_not_say_on_what_fires():
    d = _step(_kept(), 2, measured_on=None)
    assert [(v.prop, v.where) for v in check(d)] == [(Property.MEASURED_ON, "step 3")]


def test_a_step_that_starts_elsewhere_fires():
    d = _kept()
    before = replace(d.plan.steps[2].before, cosine=0.9)
    bad = _step(d, 2, before=before)
    assert {v.prop for v in check(bad)} == {Property.CONTINUOUS}
    start = replace(d.plan.start, cosine=0.5)  # the summary shows another figure
    assert {v.prop for v in check(replace(d, plan=replace(d.plan, start=start)))} >= {
        Property.CONTINUOUS
    }


def test_a_pipeline_fix_shown_as_a_drop_fires():
    d = _kept()
    s = d.plan.steps[0]
    bad = _step(d, 0, after=replace(s.after, top1=s.before.top1 - 0.01))
    assert Property.SAME_REFERENCE in {v.prop for v in check(bad)}


def test_a_recommended_step_that_loses_beyond_the_noise_fires_and_within_it_is_quiet():
    d = _kept()
    s = d.plan.steps[2]
    lose = replace(s.after, cosine=s.before.cosine - 0.01, noise=0.001, top1=s.before.top1)
    assert Property.NO_LOSS in {v.prop for v in check(_step(d, 2, after=lose))}
    within = replace(lose, cosine=s.before.cosine - 0.0005)
    assert Property.NO_LOSS not in {v.prop for v in check(_step(d, 2, after=within))}
    # the same loss on a step that asks for nothing is not a recommendation
    kept = _step(d, 2, after=lose, severity=Severity.INFO)
    assert Property.NO_LOSS not in {v.prop for v in check(kept)}


def test_the_headline_is_a_step_that_asks_for_a_change():
    d = _kept()
    assert check(d, (Property.HEADLINE,)) == []
    # a plan whose steps all ask for nothing has nothing to headline
    steps = tuple(replace(s, severity=Severity.INFO) for s in d.plan.steps)
    assert check(replace(d, plan=replace(d.plan, steps=steps)), (Property.HEADLINE,)) == []


def test_an_int16_loss_beyond_the_noise_fires_and_within_it_is_quiet():
    d = _kept()
    nodes = list(d.analysis.nodes)
    nodes[3] = replace(nodes[3], int16_gain=-0.0004)  # within the noise (0.0006)
    quiet = replace(d, analysis=replace(d.analysis, nodes=tuple(nodes)))
    assert check(quiet, (Property.INT16,)) == []
    nodes[3] = replace(nodes[3], int16_gain=-0.7011)  # issue 13's PTQ304 figure
    loud = replace(d, analysis=replace(d.analysis, nodes=tuple(nodes)))
    assert [v.where for v in check(loud, (Property.INT16,))] == [nodes[3].name]


def test_a_step_effect_within_the_noise_says_so_and_one_beyond_it_does_not():
    d = _kept()
    s = d.plan.steps[2]
    small = _step(d, 2, after=replace(s.after, cosine=s.before.cosine - 0.0003, noise=0.0006))
    assert "(within noise 0.0006)" in small.plan.steps[2].effect()
    large = _step(d, 2, after=replace(s.after, cosine=s.before.cosine + 0.01, noise=0.0006))
    assert "within noise" not in large.plan.steps[2].effect()
