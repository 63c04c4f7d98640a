"""run_analysis on a tiny model: every record filled, budgets trim and say so, what-ifs cheap."""

from __future__ import annotations

import dataclasses
import io
import os
import threading

import numpy as np
import onnx
import pytest

from ptqtui.advise.results import PlanStage
from ptqtui.analysis.context import AnalysisUnavailable
from ptqtui.analysis.results import AnalysisStage
from ptqtui.analysis.run import run_analysis
from ptqtui.analysis.sweep import PERCENTILES
from ptqtui.analysis.task import loss_band
from ptqtui.inputs.resolve import load_inputs
from ptqtui.policy import LossBand
from ptqtui.progress import Cancelled
from ptqtui.quant.scheme import QuantSettings
from ptqtui.request import InputFlags, Request
from tests.quant.factories import small_cnn

FLAGS = InputFlags(input_type_train="featuremap", layout="NCHW", cal_data_type="float32")


def _write(tmp, n_cal=10, eval_labels=None, wide_channel=None):
    model = small_cnn(wide_channel=wide_channel)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    onnx.save(model, tmp / "m.onnx")
    rng = np.random.default_rng(0)
    (tmp / "cal").mkdir()
    for i in range(n_cal):
        np.save(tmp / "cal" / f"{i}.npy", rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32))
    eval_dir = None
    if eval_labels is not None:
        eval_dir = tmp / "eval"
        eval_dir.mkdir()
        lines = []
        for i, label in enumerate(eval_labels):
            np.save(eval_dir / f"e{i}.npy", rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32))
            lines.append(f"e{i}.npy {label}")
        (eval_dir / "labels.txt").write_text("\n".join(lines) + "\n")
    return Request(model=tmp / "m.onnx", cal_dirs=(tmp / "cal",), eval_dir=eval_dir, flags=FLAGS)


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    request = _write(tmp_path_factory.mktemp("run"), wide_channel=30.0)
    seen = []
    stages = []
    analysis, ctx = run_analysis(
        load_inputs(request),
        sensitivity_samples=4,
        progress=seen.append,
        on_stage=lambda stage, so_far: stages.append((stage, so_far)),
    )
    return analysis, ctx, seen, stages


def test_every_record_is_filled(done):
    analysis, _, seen, _ = done
    names = [r.name for r in analysis.nodes]
    assert names[:2] == ["conv1", "dw"] and "softmax" in names
    q = analysis.quality
    assert q is not None and q.top1_agreement is not None and q.band in ("small", "medium", "large")
    assert "agreement" in q.basis
    bpu = [r for r in analysis.nodes if r.placement == "BPU"]
    assert all(r.sensitivity_cosine is not None for r in bpu)
    assert next(r for r in analysis.nodes if r.name == "add").sensitivity_weights is None
    assert len(analysis.curve) == len(bpu)
    assert analysis.curve[-1].cosine == pytest.approx(q.output_cosine, abs=1e-9)
    assert analysis.log[0] == "Run calibration model with modelwise search method."
    stages = {p.stage for p in seen}
    assert {"calibration", "node table", "sensitivity", "method sweep"} <= stages
    assert any(p.note and "forward passes" in p.note for p in seen)  # cost said up front


def test_sweep_follows_the_reference_order(done):
    analysis, _, _, _ = done
    labels = [r.label for r in analysis.sweep]
    assert labels[:4] == ["default", "mix", "kl", "max"]
    assert labels[4:9] == [f"max, max_percentile {p:g}" for p in PERCENTILES]
    assert labels[9].endswith("+ per_channel")
    assert [r.label for r in analysis.sweep if r.chosen] == ["default"]
    assert analysis.sweep[0].note.startswith("Select ")


def test_the_default_search_answers_the_wide_channel_with_per_channel(done):
    analysis, _, _, _ = done
    dw = next(r for r in analysis.nodes if r.name == "dw")
    assert dw.weight_range_ratio > 10
    assert "Perchannel quantization is enabled." in analysis.log
    softmax = next(r for r in analysis.nodes if r.name == "softmax")
    assert softmax.sensitivity_cosine is None  # float on CPU: not measured


def test_measure_is_a_cheap_what_if(done):
    _, ctx, _, _ = done
    session = ctx.sim.session
    before = ctx.sim.forward_passes
    base = ctx.measure()
    floated = ctx.measure(ctx.scheme.without(ctx.sim.graph.node_points("dw")))
    assert floated.similarity.cosine > base.similarity.cosine
    per_channel = ctx.measure(QuantSettings(calibration_type="max", per_channel=True))
    per_tensor = ctx.measure(QuantSettings(calibration_type="max"))
    assert per_channel.similarity.cosine > per_tensor.similarity.cosine
    assert ctx.sim.session is session
    assert ctx.sim.forward_passes - before <= 4 * len(ctx.kept) + 30  # no re-observation


def test_labels_give_top1_and_a_budget_trims(tmp_path):
    request = _write(tmp_path, eval_labels=[0, 1, 2, 3, 4, 0, 1, 2])
    analysis, _ = run_analysis(load_inputs(request), sensitivity_samples=2, time_budget=0.05)
    q = analysis.quality
    assert q.top1_float is not None and q.top1_quant is not None and "labelled" in q.basis
    assert q.loss_points == pytest.approx(100 * (q.top1_float - q.top1_quant))
    assert any("time budget" in n for n in analysis.notes)
    assert analysis.trimmed and not analysis.complete(*analysis.trimmed)


def test_each_stage_is_handed_on_as_it_finishes_with_the_rest_pending(done):
    analysis, _, _, stages = done
    assert [s for s, _ in stages] == list(AnalysisStage)
    for stage, so_far in stages:
        later = tuple(AnalysisStage)[tuple(AnalysisStage).index(stage) + 1 :]
        assert so_far.pending == later and so_far.complete(stage)
    by_stage = dict(stages)
    assert by_stage[AnalysisStage.CALIBRATION].quality is None
    assert by_stage[AnalysisStage.TASK_METRIC].quality == analysis.quality
    assert by_stage[AnalysisStage.NODE_TABLE].nodes and not by_stage[AnalysisStage.NODE_TABLE].curve
    assert all(r.sensitivity_cosine is None for r in by_stage[AnalysisStage.NODE_TABLE].nodes)
    assert by_stage[AnalysisStage.CURVE].curve == analysis.curve
    assert not by_stage[AnalysisStage.CURVE].sweep
    assert by_stage[AnalysisStage.SWEEP] == analysis
    assert analysis.trimmed == () and analysis.complete(*AnalysisStage)


def test_cancel_and_missing_data(tmp_path):
    request = _write(tmp_path)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        run_analysis(load_inputs(request), cancel=cancel)
    bare = Request(model=request.model, flags=FLAGS)
    with pytest.raises(AnalysisUnavailable):
        run_analysis(load_inputs(bare))


def test_loss_bands():
    assert loss_band(5.0, 0.9) is LossBand.LARGE
    assert loss_band(4.0, 0.9) is LossBand.MEDIUM and loss_band(1.5, 0.9) is LossBand.MEDIUM
    assert loss_band(1.0, 0.9) is LossBand.SMALL
    assert loss_band(None, float("nan")) is LossBand.LARGE
    # without a task metric the cosine decides, on the policy's cut-offs
    assert loss_band(None, 0.98) is LossBand.LARGE and loss_band(None, 0.995) is LossBand.MEDIUM
    assert loss_band(None, 0.9995) is LossBand.SMALL


def test_a_band_is_typed_in_memory_and_its_value_in_json():
    from ptqtui.analysis.results import Quality
    from ptqtui.jsoncodec import decode as _decode
    from ptqtui.jsoncodec import encode as _encode

    q = Quality(0.9, None, None, 0.9, 10.0, "large", "agreement", 8)
    assert q.band is LossBand.LARGE and q.band == "large" and f"{q.band}" == "large"
    data = _encode(q)
    assert data["band"] == "large"
    assert _decode(Quality, data) == q


def test_backend_check_compares_onnxruntime_int8_kernels(done):
    _, ctx, _, _ = done
    check = ctx.backend_check()
    assert check.cosine_reduce_range >= 0.999 and check.samples == len(ctx.samples)


@pytest.mark.skipif(os.environ.get("PTQTUI_QUICK") == "1", reason="PTQTUI_QUICK=1: ~20 s")
@pytest.mark.parametrize("budget", [1.0, 5.0])
def test_a_time_budget_never_changes_a_conclusion(budget):
    """On demo bgr_swap a budgeted run concludes a subset of what the full run does: no
    finding, no plan step the full run lacks (no QAT drawn from what was never measured)."""
    from ptqtui.diagnosis import run_diagnosis
    from tests.check.test_demo_scenarios import _request
    from tests.demo_runs import diagnosed

    full = diagnosed("bgr_swap")
    partials = []
    request = dataclasses.replace(_request("bgr_swap"), time_budget=budget)
    cut = run_diagnosis(request, on_partial=partials.append).diagnosis
    assert cut.analysis is not None and cut.analysis.trimmed  # the budget did cut
    assert {f.code for f in cut.findings} <= {f.code for f in full.findings}
    worst = {f.code: f.severity.rank for f in full.findings}
    assert all(f.severity.rank <= worst[f.code] for f in cut.findings)

    def steps(d):
        return {(s.stage, s.remedy) for s in d.plan.steps}

    assert steps(cut) <= steps(full)
    assert cut.plan.steps[0].remedy == full.plan.steps[0].remedy  # the channel fix first
    skipped = {s.what for s in cut.skipped}
    if AnalysisStage.CURVE in cut.analysis.trimmed:  # no accumulation verdict from a cut curve
        assert "PTQ305" in skipped or "PTQ305" in {f.code for f in full.findings}
    assert cut.plan.cut_short and not full.plan.cut_short
    assert not any(s.stage is PlanStage.QAT for s in cut.plan.steps)

    from ptqtui.report import write_report

    text = io.StringIO()
    write_report(cut, "text", text, width=100)
    assert text.getvalue().count("not measured (time budget)") >= 3  # plan, nodes, sweep
    assert "PTQ305" not in {f.code for f in cut.findings}

    # results as they came: the rules that need no simulation first, then stage by stage
    first = partials[0]
    assert first.diagnosis.analysis is None and first.pending == tuple(AnalysisStage)
    assert first.diagnosis.findings and first.diagnosis.plan is None
    early = {(f.code, f.severity) for f in first.diagnosis.findings}
    assert early <= {(f.code, f.severity) for f in cut.findings}
    stages = [len(p.pending) for p in partials]
    assert stages == sorted(stages, reverse=True) and stages[-1] == 0
    assert partials[-1].diagnosis.analysis.sweep == cut.analysis.sweep


def test_the_scheme_names_the_method_as_prose() -> None:
    from ptqtui.analysis.run import _method_text

    assert _method_text("max,per_channel") == "max"  # "per-channel" is said before it
    assert _method_text("max-percentile:percentile=0.99995,per_channel") == (
        "max-percentile:percentile=0.99995"
    )
    assert _method_text("kl:num_bin=2048,percentile=0.99995") == (
        "kl:num_bin=2048, percentile=0.99995"
    )
