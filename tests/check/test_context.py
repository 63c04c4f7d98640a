from __future__ import annotations

import numpy as np
import pytest

from ptqtui.check.context import (
    AS_GIVEN,
    DIV_255,
    NORM_REMOVED,
    OTHER_LAYOUT,
    SWAPPED,
    Context,
    MissingFact,
    ProbeStrength,
)
from ptqtui.check.facts.probe import DIV_255_OTHER_LAYOUT
from ptqtui.diagnosis import diagnose
from ptqtui.request import Request
from tests.check.factories import heatmap_model, make_context, natural_images, to_nchw


def test_probe_on_clean_data_keeps_as_given(tmp_path):
    ctx = make_context(tmp_path)
    [verdict] = ctx.probe
    assert verdict.classifier and verdict.preferred == AS_GIVEN and verdict.strength == "none"
    assert [s.variant for s in verdict.scores] == [
        AS_GIVEN,
        SWAPPED,
        DIV_255,
        OTHER_LAYOUT,
        DIV_255_OTHER_LAYOUT,
        NORM_REMOVED,
    ]
    assert verdict.given.mean_top1 > 0.9
    assert verdict.score(SWAPPED).mean_top1 < 0.3


def test_probe_names_the_alternative_and_by_how_much(tmp_path):
    calib = to_nchw([im[:, :, ::-1] for im in natural_images(40)])
    ctx = make_context(tmp_path, calib=calib)
    [verdict] = ctx.probe
    assert verdict.preferred == SWAPPED and verdict.strength == "strong"
    assert verdict.margin > 0.5 and verdict.samples == 32  # capped
    assert "0.99 channels swapped" in verdict.measured(SWAPPED)


def test_probe_is_seeded_and_computed_once(tmp_path):
    a = make_context(tmp_path / "a", calib=to_nchw(natural_images(60)), seed=3)
    b = make_context(tmp_path / "b", calib=to_nchw(natural_images(60)), seed=3)
    assert a.probe == b.probe
    assert a.probe is a.probe


def test_probe_on_a_head_that_is_not_a_classifier(tmp_path):
    ctx = make_context(tmp_path, model=heatmap_model())
    [verdict] = ctx.probe
    assert not verdict.classifier and verdict.strength == "none"
    assert verdict.given.decisiveness is not None and verdict.given.mean_top1 is None
    with pytest.raises(MissingFact, match="not a classifier"):
        ctx.predictions  # noqa: B018


def test_sample_and_data_stats(tmp_path):
    calib = to_nchw(natural_images(12), np.float32)
    ctx = make_context(tmp_path, calib=calib)
    sset = ctx.sample_stats
    assert sset.total == 12 and len(sset.of("images")) == 12
    assert sset.thumbs[0].shape == (12, 8 * 8 * 3)
    [stats] = ctx.data_stats
    assert stats.full_scale == 255.0 and stats.integral and not stats.negative
    assert stats.channel_means[0] > stats.channel_means[2]  # warm images, RGB
    read, other = sset.of("images")[0].smoothness
    assert read < other


def test_missing_facts_say_why():
    ctx = Context()
    for fact in ("config", "graph", "calibration", "probe", "eval_stats", "raw_dir", "analysis"):
        with pytest.raises(MissingFact) as err:
            ctx.require(fact)
        assert err.value.reason
    assert ctx.maybe("config") is None


def test_no_readable_sample_is_a_missing_fact(tmp_path):
    calib = to_nchw(natural_images(3), np.float32)
    ctx = make_context(tmp_path, calib=calib, cal__cal_data_type="uint8")
    with pytest.raises(MissingFact, match="no readable calibration sample"):
        ctx.sample_stats  # noqa: B018


def test_diagnose_runs_the_rules(tmp_path):
    calib = to_nchw([im[:, :, ::-1] for im in natural_images(20)])
    make_context(tmp_path, calib=calib)  # writes model, config and data
    request = Request(model=tmp_path / "model.onnx", config=tmp_path / "mapper.yaml", seed=1)
    diagnosis = diagnose(request)
    codes = {f.code: f.severity.value for f in diagnosis.findings}
    assert codes["PTQ001"] == "critical"
    assert {"PTQ004", "PTQ005"} <= {s.what for s in diagnosis.skipped}
    assert diagnosis.findings[0].severity.value == "critical"


def _eval():
    return [(im, i % 5) for i, im in enumerate(natural_images(20, seed=21))]


def test_order_test_against_evaluation_images(tmp_path):
    swapped = make_context(
        tmp_path / "s",
        calib=to_nchw([im[:, :, ::-1] for im in natural_images(30)]),
        eval_images=_eval(),
    )
    assert swapped.order_test.reversed_fits
    assert swapped.order_test.reversed < swapped.order_test.same
    clean = make_context(tmp_path / "c", calib=to_nchw(natural_images(30)), eval_images=_eval())
    assert not clean.order_test.reversed_fits
    assert "noise level" in clean.order_test.describe()
    with pytest.raises(MissingFact, match="eval"):
        make_context(tmp_path / "n").order_test  # noqa: B018


def test_the_probe_runs_on_the_simulators_float_path(tmp_path):
    from ptqtui.analysis.context import build_context

    calib = to_nchw([im[:, :, ::-1] for im in natural_images(20)])
    plain = make_context(tmp_path, calib=calib)
    sim = build_context(plain.inputs)
    before = sim.sim.forward_passes
    shared = Context.from_inputs(plain.inputs, sim=sim)
    [on_sim] = shared.probe
    [alone] = plain.probe
    assert sim.sim.forward_passes > before  # the probe ran through the simulator
    assert shared.float_model._session is None  # and built no session of its own
    assert plain.float_model._session is not None
    assert (
        (on_sim.preferred, on_sim.strength)
        == (alone.preferred, alone.strength)
        == (
            SWAPPED,
            ProbeStrength.STRONG,
        )
    )
    assert on_sim.margin == pytest.approx(alone.margin, abs=1e-4)


def test_probe_strength_is_an_enum_that_still_reads_as_a_string(tmp_path):
    from dataclasses import replace

    [verdict] = make_context(tmp_path).probe
    assert verdict.strength is ProbeStrength.NONE and verdict.strength == "none"
    weak = replace(verdict, preferred=SWAPPED, strength="weak")
    assert weak.strength is ProbeStrength.WEAK
    assert weak.prefers(SWAPPED, "weak") and weak.prefers(SWAPPED, ProbeStrength.WEAK)
    assert not weak.prefers(SWAPPED) and not weak.prefers(AS_GIVEN, "weak")
    with pytest.raises(ValueError):
        replace(verdict, strength="very")
