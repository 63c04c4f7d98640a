"""The plan decides in the task's terms on real sessions: a model whose output cosine meets the
target while its task agreement does not is still tuned; one whose agreement is met stops,
whatever the cosine; without a task metric the cosine decides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from ptqtui.advise.plan import build_plan
from ptqtui.advise.results import Measure, Plan, PlanStage
from ptqtui.advise.steps.common import Basis, Goal, Reach
from ptqtui.analysis.results import Quality
from ptqtui.analysis.run import run_analysis
from ptqtui.analysis.whatif import WhatIf
from ptqtui.check.registry import load_rules
from ptqtui.inputs.resolve import load_inputs
from ptqtui.policy import TARGET_COSINE
from ptqtui.quant.scheme import QuantSettings
from ptqtui.remedy import Remedy
from ptqtui.request import InputFlags, Request
from tests.advise.test_end_to_end import CONFIG
from tests.quant.factories import small_cnn

FLAGS = InputFlags(input_type_train="featuremap", layout="NCHW", cal_data_type="float32")

# exact probabilities to 4 decimals: any int8 rounding changes them (cosine stays high)
EXACT = """
import numpy as np

NAME = "exact"
METRIC = "exact-score agreement"
BINARY = True


def decode(outputs):
    p = next(iter(outputs.values()))
    return [tuple(np.round(row.ravel() * 1e4).astype(int)) for row in p]


def agreement(reference, quantized):
    return 1.0 if reference == quantized else 0.0
"""

# a reading no int8 error can change: agreement is 100 % on every sample
SURE = """
NAME = "sure"
METRIC = "sure agreement"
BINARY = True


def decode(outputs):
    p = next(iter(outputs.values()))
    return [0 for _ in range(p.shape[0])]


def agreement(reference, quantized):
    return 1.0 if reference == quantized else 0.0
"""


class Recording(WhatIf):
    """The real what-if service, recording the settings every measure asked for."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.asked: list[QuantSettings] = []

    def measure_against(self, remedy: Remedy, against: Remedy):
        return self.measure(remedy)

    def measure_race(self, remedies, against: Remedy):
        return [self.measure(r) for r in remedies]

    def measure(self, remedy: Remedy, **kw: object) -> Measure:  # type: ignore[override]
        self.asked.append(self.settings_for(remedy))
        return super().measure(remedy, **kw)  # type: ignore[arg-type]


def _plan(tmp: Path, n: int, outlier: bool, **extra: object) -> tuple[Plan, Recording]:
    """The plan of a small CNN on `n` random feature maps; with `outlier`, max calibration on
    data whose first sample is 200 times the others (output cosine about 0.92)."""
    model = small_cnn()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    onnx.save(model, tmp / "m.onnx")
    rng = np.random.default_rng(0)
    (tmp / "cal").mkdir()
    for i in range(n):
        x = rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)
        np.save(tmp / "cal" / f"{i:03d}.npy", x * 200 if outlier and i == 0 else x)
    if outlier:
        (tmp / "mapper.yaml").write_text(CONFIG.replace("'kl'", "'max'"))
        extra["config"] = tmp / "mapper.yaml"
    else:
        extra["flags"] = FLAGS
    request = Request(model=tmp / "m.onnx", cal_dirs=(tmp / "cal",), **extra)  # type: ignore[arg-type]
    inputs = load_inputs(request)
    analysis, ctx = run_analysis(inputs, sensitivity_samples=2)
    whatif = Recording(ctx, inputs)
    categories = {r.code: r.info.category for r in load_rules(entry_points=False)}
    plan = build_plan((), analysis, whatif, inputs.config, categories=categories)
    return plan, whatif


def _int16_tried(whatif: Recording) -> bool:
    return any(o.input_dtype == "int16" for s in whatif.asked for o in s.node_overrides)


def test_cosine_met_but_agreement_short_still_tries_precision(tmp_path: Path) -> None:
    module = tmp_path / "exact.py"
    module.write_text(EXACT)
    plan, whatif = _plan(tmp_path, 40, False, task_module=module)
    assert plan.start is not None and plan.start.agreement is not None
    assert plan.start.cosine >= TARGET_COSINE  # the cosine says "done" ...
    assert plan.start.agreement < 0.5  # ... while the task reads differently
    assert _int16_tried(whatif)  # the precision stage still measured int16 nodes
    assert "exact-score agreement" in plan.target and "(decides)" in plan.target
    assert "decided by exact-score agreement (output cosine beside it)" in plan.route
    assert plan.target_status.startswith("not met")
    qat = [s for s in plan.steps if s.stage is PlanStage.QAT]
    assert qat and "exact-score agreement" in qat[0].why and "cosine 0.99" in qat[0].why


def test_the_same_model_without_a_task_metric_stops_at_the_cosine(tmp_path: Path) -> None:
    plan, whatif = _plan(tmp_path, 40, False, task="raw")
    assert plan.start is not None and plan.start.cosine >= TARGET_COSINE
    assert not _int16_tried(whatif)
    assert not [s for s in plan.steps if s.stage in (PlanStage.PRECISION, PlanStage.QAT)]
    assert "output cosine 0.99 (decides" in plan.target
    assert "decided by output cosine (no task metric)" in plan.route
    assert plan.target_status.startswith("met")


def test_agreement_met_stops_though_the_cosine_is_short(tmp_path: Path) -> None:
    module = tmp_path / "sure.py"
    module.write_text(SURE)
    # 260 samples: 100 % agreement has its Wilson interval's worst end within 1.5 points
    plan, whatif = _plan(tmp_path, 260, True, task_module=module)
    assert plan.start is not None and plan.start.agreement == 1.0
    assert plan.start.agreement_low is not None and plan.start.agreement_low > 0.985
    assert plan.start.cosine < TARGET_COSINE  # the cosine alone would keep tuning
    assert not _int16_tried(whatif)
    assert not [s for s in plan.steps if s.stage in (PlanStage.PRECISION, PlanStage.QAT)]
    assert plan.target_status.startswith("met")


def test_the_same_data_without_a_task_metric_is_tuned_by_the_cosine(tmp_path: Path) -> None:
    plan, whatif = _plan(tmp_path, 40, True, task="raw")
    assert plan.start is not None and plan.start.cosine < TARGET_COSINE
    assert _int16_tried(whatif)  # what the task metric stopped, the cosine keeps tuning
    assert plan.target_status.startswith("not met: output cosine")


def _measure(agree: float, low: float, high: float, cosine: float = 0.999) -> Measure:
    return Measure(cosine, None, agree, 0.001, low, high, 100, "string agreement")


def _quality(**kw: object) -> Quality:
    base: dict[str, object] = dict(
        output_cosine=0.9956,
        top1_float=None,
        top1_quant=None,
        top1_agreement=0.47,
        loss_points=53.0,
        band="large",
        basis="b",
        samples=100,
        task="ocr",
        metric="string agreement",
    )
    base.update(kw)
    return Quality(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("m", "reach", "done"),
    [
        (_measure(0.47, 0.37, 0.57), Reach.SHORT, False),  # ppocrv4_rec, cosine 0.9956
        (_measure(1.0, 0.963, 1.0), Reach.UNCERTAIN, True),  # 100 samples: cosine decides
        (_measure(1.0, 0.963, 1.0, cosine=0.98), Reach.UNCERTAIN, False),
        (_measure(1.0, 0.990, 1.0, cosine=0.9), Reach.MET, True),
    ],
)
def test_the_goal_reads_the_interval(m: Measure, reach: Reach, done: bool) -> None:
    goal = Goal.of(_quality(), TARGET_COSINE)
    assert goal.basis is Basis.AGREEMENT
    assert goal.reach(m) is reach and goal.done(m) is done
    status = goal.status(m)
    assert status.startswith("not met" if reach is Reach.SHORT else reach.value)
    assert "string agreement loss" in status and f"output cosine {m.cosine:.4f}" in status
    if reach is Reach.UNCERTAIN:
        assert ("tuning stops" in status) is done


def test_with_labels_the_float_metric_minus_the_int8_one_decides() -> None:
    goal = Goal.of(_quality(top1_float=0.80, label_metric="box mAP@0.5 vs labels"), 0.99)
    assert goal.basis is Basis.LABELS and "mAP" in goal.describe()
    assert goal.reach(Measure(0.95, 0.795, 0.2)).name == "MET"  # 0.5 points lost
    assert goal.reach(Measure(0.999, 0.70, 1.0)).name == "SHORT"  # 10 points lost
    assert Goal.of(_quality(task=None, top1_agreement=None), 0.99).basis is Basis.COSINE


def test_measured_on_says_what_each_figure_was_measured_on() -> None:
    from ptqtui.advise.results import MeasuredOn, Pipeline

    on = MeasuredOn(
        Pipeline.AS_WRITTEN, samples=8, agreement_samples=100, metric="string agreement"
    )
    assert on.describe() == (
        "quantized vs float on 8 calibration samples (cosine), string agreement on 100 "
        "samples, pipeline as written"
    )
    on = MeasuredOn(
        Pipeline.AS_WRITTEN,
        samples=8,
        labelled=12,
        agreement_samples=100,
        metric="map IoU agreement",
        label_metric="mask IoU vs labels",
    )
    assert "map IoU agreement on 100 samples, mask IoU on 12 labelled images" in on.describe()
    on = MeasuredOn(
        Pipeline.AS_WRITTEN,
        samples=8,
        labelled=300,
        agreement_samples=300,
        metric="top-1 agreement",
    )
    assert "8 calibration samples, top-1 and top-1 agreement on 300 labelled images" in (
        on.describe()
    )


def test_a_plan_step_on_real_sessions_says_the_agreement_samples(tmp_path: Path) -> None:
    module = tmp_path / "exact.py"
    module.write_text(EXACT)
    plan, _ = _plan(tmp_path, 40, False, task_module=module)
    measured = [s for s in plan.steps if s.measured_on is not None and s.after is not None]
    assert measured
    for s in measured:
        on = s.measured_on
        assert on is not None and on.samples == 2 and on.agreement_samples == 40
        assert "2 calibration samples (cosine), exact-score agreement on 40 samples" in (
            on.describe()
        )
        assert (s.effect() or "").count("40 samples") == 1  # said once, where it belongs


COARSE = EXACT.replace("1e4", "1e2").replace('"exact"', '"coarse"')


def test_the_task_noise_is_paired_over_the_same_samples(tmp_path: Path) -> None:
    import dataclasses
    import math

    from ptqtui.remedy import settings_delta

    module = tmp_path / "coarse.py"
    module.write_text(COARSE)
    _, whatif = _plan(tmp_path, 60, False, task_module=module)
    base = whatif.settings
    other = dataclasses.replace(base, calibration_type="max", max_percentile=None)
    a, b = Remedy(), Remedy(settings=settings_delta(base, other))
    assert whatif.paired_task_noise(a, b) is not None  # both were measured by the plan
    sa = np.asarray(whatif.ctx.measure(base).scores)
    sb = np.asarray(whatif.ctx.measure(other).scores)
    assert len(sa) == len(sb) == 60
    diff = sb - sa
    want = float(np.std(diff, ddof=1) / math.sqrt(diff.size))
    assert want > 0  # the two calibrations read some samples differently
    assert whatif.paired_task_noise(a, b) == pytest.approx(want)
    # not measured: nothing to pair
    never = dataclasses.replace(base, calibration_type="max", max_percentile=0.5)
    assert whatif.paired_task_noise(a, Remedy(settings=settings_delta(base, never))) is None


class TaskFake:
    """A what-if service whose cosine and agreement are set per calibration method apart
    (the agreement over 100 samples, paired noise 1 point)."""

    def __init__(self, figures: dict[str, tuple[float, float]]) -> None:
        self.figures = figures
        self.settings = QuantSettings("max")

    def measure_against(self, remedy: Remedy, against: Remedy):
        return self.measure(remedy)

    def measure_race(self, remedies, against: Remedy):
        return [self.measure(r) for r in remedies]

    def measure(self, remedy: Remedy) -> Measure:
        from ptqtui.analysis.whatif import settings_after

        s = settings_after(self.settings, remedy)
        cosine, agree = self.figures.get(s.calibration_type, (0.0, 0.0))
        if s.max_percentile is not None:
            cosine, agree = 0.0, 0.0  # the flags change nothing, percentiles lose
        return Measure(cosine, None, agree, 0.0005, agree - 0.05, agree + 0.05, 100, "agreement")

    def counts(self) -> tuple[int, int]:
        return 8, 0

    def paired_noise(self, a: Remedy, b: Remedy) -> float | None:
        return None

    def paired_task_noise(self, a: Remedy, b: Remedy, *, labels: bool = False) -> float | None:
        return 0.01

    def can_emulate(self, change: object) -> bool:
        return False

    def measure_as_deployed(self, remedy: Remedy, mistake: object) -> Measure | None:
        return None


def test_the_candidate_chosen_is_the_best_that_gains_not_the_best_within_the_noise() -> None:
    # kl reads one more line (within the 1-point noise) but loses cosine; mix reads as many
    # lines as max and gains cosine: mix is the step
    fake = TaskFake({"max": (0.95, 0.50), "kl": (0.90, 0.505), "mix": (0.97, 0.50)})
    quality = _quality(output_cosine=0.95, top1_agreement=0.5, band="large")
    from ptqtui.analysis.results import Analysis

    plan = build_plan((), Analysis(scheme="int8", quality=quality), fake, None)  # type: ignore[arg-type]
    cal = [s for s in plan.steps if s.stage is PlanStage.CALIBRATION]
    assert cal[0].title == "Calibrate with mix", [s.title for s in cal]
    # and a task figure raised beyond its paired noise is a step even at an equal cosine
    fake = TaskFake({"max": (0.95, 0.50), "kl": (0.95, 0.60), "mix": (0.95, 0.50)})
    plan = build_plan((), Analysis(scheme="int8", quality=quality), fake, None)  # type: ignore[arg-type]
    assert next(s.title for s in plan.steps if s.stage is PlanStage.CALIBRATION) == (
        "Calibrate with kl"
    )
