"""The loss in task terms on real sessions: every calibration sample, an interval, a user's
task module, and output cosine only said so."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from ptqtui.analysis.context import AGREEMENT_SAMPLES
from ptqtui.analysis.run import run_analysis
from ptqtui.analysis.task import band_uncertain
from ptqtui.cli import main
from ptqtui.inputs.resolve import load_inputs
from ptqtui.request import InputFlags, Request
from tests.quant.factories import small_cnn

FLAGS = InputFlags(input_type_train="featuremap", layout="NCHW", cal_data_type="float32")

TASK_MODULE = """
import numpy as np

NAME = "mine"
METRIC = "my agreement"
BINARY = True


def decode(outputs):
    scores = next(iter(outputs.values()))
    return [int(i) for i in np.argmax(scores.reshape(scores.shape[0], -1), axis=1)]


def agreement(reference, quantized):
    return 1.0 if reference == quantized else 0.0
"""


def _request(tmp, n_cal, **extra):
    model = small_cnn(wide_channel=30.0)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    onnx.save(model, tmp / "m.onnx")
    rng = np.random.default_rng(0)
    (tmp / "cal").mkdir()
    for i in range(n_cal):
        np.save(tmp / "cal" / f"{i:03d}.npy", rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32))
    return Request(model=tmp / "m.onnx", cal_dirs=(tmp / "cal",), flags=FLAGS, **extra)


def test_agreement_on_every_calibration_sample_with_its_interval(tmp_path):
    request = _request(tmp_path, AGREEMENT_SAMPLES + 20)
    analysis, ctx = run_analysis(load_inputs(request), sensitivity_samples=2, time_budget=5.0)
    q = analysis.quality
    assert q is not None and q.task == "classification" and q.metric == "top-1 agreement"
    assert len(ctx.kept) == AGREEMENT_SAMPLES + 20 == q.samples
    assert q.agreement_low is not None and q.agreement_high is not None
    assert q.agreement_low <= q.top1_agreement <= q.agreement_high
    assert q.agreement_high - q.agreement_low < 0.25  # 120 samples: Wilson, not 32's +-15
    assert q.loss_low == pytest.approx(100 * (1 - q.agreement_high))
    assert q.band_uncertain == band_uncertain(q.loss_low, q.loss_high)
    # the what-ifs carry the same precision
    m = ctx.measure(ctx.settings)
    assert m.interval is not None and m.interval.samples == q.samples


def test_a_user_task_module_decides_the_metric(tmp_path):
    module = tmp_path / "mytask.py"
    module.write_text(TASK_MODULE)
    request = _request(tmp_path, 12, task_module=module)
    analysis, _ = run_analysis(load_inputs(request), sensitivity_samples=2)
    q = analysis.quality
    assert q is not None and q.task == "mine" and q.metric == "my agreement"
    assert q.samples == 12 and q.top1_agreement is not None
    assert "my agreement" in q.basis


def test_raw_is_output_cosine_only_and_says_so(tmp_path):
    request = _request(tmp_path, 12, task="raw")
    analysis, _ = run_analysis(load_inputs(request), sensitivity_samples=2)
    q = analysis.quality
    assert q is not None and q.task is None and q.top1_agreement is None
    assert q.task_note is not None and q.loss_points is None
    assert q.band_uncertain is False


def test_a_broken_task_module_is_one_line_and_exit_2(tmp_path, capsys):
    request = _request(tmp_path, 4)
    bad = tmp_path / "bad.py"
    bad.write_text("def decode(outputs):\n    return []\n")  # no agreement()
    args = [str(request.model), "--cal-dir", str(tmp_path / "cal"), "--input-type-train",
            "featuremap", "--layout", "NCHW", "--report", "text"]  # fmt: skip
    args += ["--task-module", str(bad)]
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "bad.py" in err[0] and "agreement" in err[0]


@pytest.mark.parametrize(
    ("low", "high", "uncertain"),
    [(0.0, 1.0, False), (0.0, 3.7, True), (2.0, 3.9, False), (3.0, 5.0, True), (5.0, 9.0, False),
     (None, 3.0, False)],
)  # fmt: skip
def test_the_band_is_uncertain_when_the_interval_spans_a_boundary(low, high, uncertain):
    assert band_uncertain(low, high) is uncertain


def test_a_time_budget_trims_the_agreement_samples_but_not_below_the_floor(tmp_path):
    request = _request(tmp_path, AGREEMENT_SAMPLES + 40)
    analysis, ctx = run_analysis(load_inputs(request), sensitivity_samples=2, time_budget=1e-3)
    assert len(ctx.kept) == AGREEMENT_SAMPLES == analysis.quality.samples
    assert any(str(AGREEMENT_SAMPLES + 40) in n for n in analysis.notes)


def test_sweep_rows_carry_the_task_agreement_with_its_interval(tmp_path):
    from ptqtui.analysis.sweep import method_sweep

    module = tmp_path / "mytask.py"
    module.write_text(TASK_MODULE)
    request = _request(tmp_path, 12, task_module=module)
    _, ctx = run_analysis(load_inputs(request), sensitivity_samples=2)
    rows = method_sweep(ctx).records
    assert rows and all(r.metric == "my agreement" for r in rows)
    whole = [r for r in rows if r.samples is not None]  # the others by output cosine only
    assert any(r.chosen for r in whole) and all(r.samples == 12 for r in whole)
    assert all(r.agreement is None for r in rows if r not in whole)
    for r in whole:
        assert r.agreement is not None and r.agreement_low is not None
        assert r.agreement_high is not None
        assert r.agreement_low <= r.agreement <= r.agreement_high
        # the row as the plan's before/after keeps them
        assert r.measure.metric == "my agreement" and r.measure.agreement_low == r.agreement_low


def test_a_plan_step_effect_reads_in_the_task_metric_with_its_intervals():
    from ptqtui.advise.results import Measure, PlanStage, PlanStep
    from ptqtui.check.findings import Severity

    before = Measure(0.70, None, 0.02, None, 0.006, 0.07, 100, "string agreement", 0.9)
    after = Measure(0.99, None, 0.96, None, 0.902, 0.984, 100, "string agreement", 0.01)
    step = PlanStep(1, PlanStage.CALIBRATION, "t", "a", "w", Severity.MAJOR, (), before, after)
    effect = step.effect()
    assert effect is not None
    assert "string agreement 2.0 % (0.6-7.0) -> 96.0 % (90.2-98.4), 100 samples" in effect
    # without a task (no metric, no interval): the plain figures as before
    plain = PlanStep(
        1,
        PlanStage.CALIBRATION,
        "t",
        "a",
        "w",
        Severity.MAJOR,
        (),
        Measure(0.7, None, 0.5),
        Measure(0.9, None, 0.6),
    )
    assert plain.effect() == "cosine 0.7000 -> 0.9000, agreement 50.0 % -> 60.0 %"
