"""Sequential measurement of the plan's candidates (issue 17): a candidate's task agreement is
measured a step of samples at a time against the state it would replace, and stops once it is
worse beyond the noise; asked for whole later, it runs only the samples it has not run."""

from __future__ import annotations

import numpy as np
import pytest

from ptqtui.advise.steps.common import Env, Goal, State, brief, fmt
from ptqtui.analysis.context import worse_beyond_noise
from ptqtui.analysis.run import run_analysis
from ptqtui.analysis.whatif import WhatIf
from ptqtui.inputs.resolve import load_inputs
from ptqtui.policy import SEQUENTIAL_STEP
from ptqtui.remedy import Remedy, SettingsDelta
from ptqtui.request import Request
from tests.check.factories import (
    colour_classifier,
    mapper_config,
    natural_images,
    to_nchw,
    write_bins,
    write_config,
)


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory):
    """The colour classifier on 100 unlabelled calibration samples: its top-1 agreement with
    the float model decides, on every one of them."""
    tmp = tmp_path_factory.mktemp("seq")
    (tmp / "model.onnx").write_bytes(colour_classifier().SerializeToString())
    write_bins(tmp / "calib", to_nchw(natural_images(100, seed=3)))
    config = write_config(tmp / "mapper.yaml", mapper_config(cal__calibration_type="max"))
    inputs = load_inputs(Request(model=tmp / "model.onnx", config=config))
    analysis, ctx = run_analysis(inputs, sensitivity_samples=4)
    return inputs, analysis, ctx


CLIPPED = Remedy(settings=SettingsDelta(calibration_type="max", max_percentile=0.3))


def test_a_clearly_worse_candidate_stops_early_and_resumes_whole(unlabelled) -> None:
    inputs, _, ctx = unlabelled
    assert ctx.agreement_count() == 100
    w = WhatIf(ctx, inputs)
    base = w.measure(Remedy())
    passes = ctx.sim.forward_passes
    stopped = w.measure_against(CLIPPED, Remedy())
    assert stopped.partial_of == 100
    assert stopped.samples is not None and stopped.samples < 100
    assert stopped.samples % SEQUENTIAL_STEP == 0
    assert ctx.sim.forward_passes - passes == stopped.samples  # no sample run twice
    assert base.agreement is not None and stopped.agreement is not None
    assert stopped.agreement < base.agreement
    assert w.measure_against(CLIPPED, Remedy()) is stopped  # remembered
    passes = ctx.sim.forward_passes
    whole = w.measure(CLIPPED)
    assert whole.partial_of is None and whole.samples == 100
    assert ctx.sim.forward_passes - passes == 100 - stopped.samples  # only the rest ran
    # the resumed measure is the one a cold measurement gives
    fresh = WhatIf(ctx, inputs)
    ctx._measured.clear()
    cold = fresh.measure(CLIPPED)
    assert cold.agreement == whole.agreement and cold.cosine == pytest.approx(whole.cosine)
    assert (cold.agreement_low, cold.agreement_high) == (whole.agreement_low, whole.agreement_high)


def test_a_candidate_no_worse_than_the_state_runs_whole(unlabelled) -> None:
    """Every sample agrees already: a candidate that agrees on the first samples too is not
    stopped (identical figures are no proof the rest are), nor is one that gains."""
    from ptqtui.policy import MIN_TASK_GAIN

    _, _, ctx = unlabelled
    state = ctx.measure(ctx.settings).scores
    assert len(state) == 100

    def near(p: float):
        return SettingsDelta(calibration_type="max", max_percentile=p).apply(ctx.settings)

    [m] = ctx.race([near(0.999991)], state, margin=MIN_TASK_GAIN)
    assert len(m.scores) == 100 and m.scores[:SEQUENTIAL_STEP] == state[:SEQUENTIAL_STEP]
    [m] = ctx.race([near(0.999994)], [0.0] * 100, margin=MIN_TASK_GAIN)  # it gains
    assert len(m.scores) == 100


def test_a_stopped_candidate_never_gains_and_says_what_it_was_measured_on(unlabelled) -> None:
    inputs, analysis, ctx = unlabelled
    from ptqtui.advise.steps.common import Meter

    w = WhatIf(ctx, inputs)
    meter = Meter(w)
    base = meter.measure(Remedy(), "configured")
    # not the first test's remedy: the context remembers that one measured whole
    clipped = Remedy(settings=SettingsDelta(calibration_type="max", max_percentile=0.25))
    stopped = meter.measure(clipped, "clipped", against=Remedy())
    assert stopped is not None and stopped.partial_of == 100
    env = Env(
        findings=(),
        analysis=analysis,
        config=None,
        target=0.99,
        base=w.settings,
        meter=meter,
        goal=Goal.of(analysis.quality, 0.99),
    )
    gain = env.judge(Remedy(), base, clipped, stopped)
    assert not gain.ok and gain.stopped
    assert "not measured on every sample" in gain.describe()
    assert f"on the first {stopped.samples} of 100 samples" in fmt(stopped)
    assert f"({stopped.samples} samples)" in brief(env, stopped)
    assert "samples)" not in brief(env, base)
    assert State(Remedy(), w.settings, base).measure is base


def test_worse_beyond_noise_is_one_sided_and_paired() -> None:
    same = np.ones(25)
    assert not worse_beyond_noise(same, same)
    lost = same.copy()
    lost[:8] = 0.0  # 8 of 25 samples lost, none won
    assert worse_beyond_noise(same, lost)
    assert not worse_beyond_noise(lost, same)  # better is never stopped
    mixed = same.copy()
    mixed[:2] = 0.0  # two lost: within the noise of 25 samples
    assert not worse_beyond_noise(same, mixed)
    assert not worse_beyond_noise(np.ones(1), np.zeros(1))  # one sample says nothing
    # identical figures on 25 samples: one more sample could differ, so nothing is certain
    assert not worse_beyond_noise(same, same, margin=0.005)
    # a steady loss of 3 points on 75 samples: within the noise of a loss, but it cannot gain
    # the half point the plan counts
    rng = np.random.default_rng(0)
    before = rng.uniform(0.5, 0.9, 75)
    after = before - 0.03 + rng.normal(0.0, 0.001, 75)
    assert not worse_beyond_noise(before, after)
    assert worse_beyond_noise(before, after, margin=0.005)


def test_the_sweep_measures_its_finalists_against_the_configured_row(
    unlabelled, monkeypatch
) -> None:
    """Every row here is within the noise of the best: with a stop rule that always stops,
    each finalist but the configured one ends at the first step, and its note says so."""
    import ptqtui.analysis.context as context

    inputs, _, _ = unlabelled
    monkeypatch.setattr(context, "worse_beyond_noise", lambda before, after, margin=0.0: True)
    analysis, _ = run_analysis(inputs, sensitivity_samples=4)
    chosen = [r for r in analysis.sweep if r.chosen]
    stopped = [r for r in analysis.sweep if r.samples == SEQUENTIAL_STEP]
    assert chosen and all(r.samples == 100 for r in chosen)
    assert stopped and not any(r.chosen for r in stopped)
    for r in stopped:
        assert r.note is not None and f"first {SEQUENTIAL_STEP} of 100 samples" in r.note
    whole = [r for r in analysis.sweep if r.samples == 100]
    assert all("first" not in (r.note or "") for r in whole)


def test_a_race_stops_the_candidate_behind_the_leader_unless_protected(unlabelled) -> None:
    """Against a state that every candidate beats (a reference of zeros), the clipped one
    still stops: it is behind the best candidate beyond the noise; protected, it runs whole."""
    from ptqtui.analysis.context import worse_beyond_noise as worse

    _, _, ctx = unlabelled
    near = SettingsDelta(calibration_type="max", max_percentile=0.99998).apply(ctx.settings)
    far = SettingsDelta(calibration_type="max", max_percentile=0.2).apply(ctx.settings)
    floor = [0.0] * 100
    lead, behind = ctx.race([near, far], floor)
    assert len(lead.scores) == 100 and len(behind.scores) == SEQUENTIAL_STEP
    assert worse(np.asarray(lead.scores[:SEQUENTIAL_STEP]), np.asarray(behind.scores))
    far2 = SettingsDelta(calibration_type="max", max_percentile=0.21).apply(ctx.settings)
    kept = ctx.race([near, far2], floor, protected=lambda m: True)
    assert [len(m.scores) for m in kept] == [100, 100]


def test_the_meter_races_candidates_as_one_what_if_each(unlabelled) -> None:
    """The plan's precision candidates go to the service side by side, one race a round."""
    from ptqtui.advise.steps.common import Meter

    inputs, _, ctx = unlabelled
    w = WhatIf(ctx, inputs)
    asked: list[int] = []
    real = w.measure_race

    def spy(remedies, against, **kw):
        asked.append(len(remedies))
        return real(remedies, against, **kw)

    w.measure_race = spy  # type: ignore[method-assign]
    meter = Meter(w)
    meter.measure(Remedy(), "configured")
    a = Remedy(settings=SettingsDelta(calibration_type="max", max_percentile=0.99997))
    b = Remedy(settings=SettingsDelta(calibration_type="max", max_percentile=0.22))
    got = meter.race([(a, "a"), (b, "b")], Remedy())
    assert asked == [2] and meter.count == 3
    assert got[0] is not None and got[0].partial_of is None
    assert got[1] is not None and got[1].partial_of == 100


def test_settings_that_leave_the_scheme_as_it_is_reuse_its_measure(unlabelled) -> None:
    """A what-if is keyed by its calibration and the scheme's dtypes: moving to the CPU a node
    that the scheme does not change (here one the model does not have) is the measure taken."""
    import dataclasses

    _, _, ctx = unlabelled
    s = SettingsDelta(calibration_type="max", max_percentile=0.99996).apply(ctx.settings)
    first = ctx.measure(s)
    moved = dataclasses.replace(s, run_on_cpu=(*s.run_on_cpu, "no_such_node"))
    assert moved != s and ctx.scheme_for(moved).key() == ctx.scheme_for(s).key()
    passes = ctx.sim.forward_passes
    assert ctx.measure(moved) is first
    assert ctx.sim.forward_passes == passes
    other = dataclasses.replace(s, per_channel=not s.per_channel)
    assert ctx.measure(other) is not first and ctx.sim.forward_passes > passes


def test_a_stop_holds_only_against_the_state_it_was_stopped_against(unlabelled) -> None:
    """Stopped against the configured state, the clipped candidate is measured again against
    a far worse one, which it beats: whole, not the remembered stop."""
    inputs, _, ctx = unlabelled
    w = WhatIf(ctx, inputs)
    clipped = Remedy(settings=SettingsDelta(calibration_type="max", max_percentile=0.27))
    worst = Remedy(settings=SettingsDelta(calibration_type="max", max_percentile=0.01))
    stopped = w.measure_against(clipped, Remedy())
    assert stopped.partial_of == 100
    assert w.measure_against(clipped, Remedy()) is stopped
    w.measure(worst)
    again = w.measure_against(clipped, worst)
    assert again.partial_of is None and again.samples == 100
