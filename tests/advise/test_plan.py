"""The planner against a fake what-if service: order, noise threshold, greedy precision, QAT,
routes; findings speak through their remedies only."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import yaml

from ptqtui.advise.plan import build_plan, node_verdict
from ptqtui.advise.results import Measure, MeasuredOn, Pipeline, PlanStage, Reference
from ptqtui.analysis.results import Analysis, CurvePoint, NodeRow, Quality, Similarity
from ptqtui.analysis.whatif import CannotEmulate, input_changes, settings_after
from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import load_rules
from ptqtui.inputs.config import load_config
from ptqtui.quant.scheme import QuantSettings
from ptqtui.quant.settings import settings_from_config
from ptqtui.remedy import (
    ConfigEdit,
    InputChange,
    InputFix,
    NodeChange,
    Placement,
    Remedy,
    SettingsDelta,
)

CONFIG_TEXT = """\
# demo config
model_parameters:
  onnx_model: model.onnx
  march: bayes-e
  output_model_file_prefix: demo
input_parameters:
  input_type_train: rgb
  input_layout_train: NCHW
  input_type_rt: rgb
  norm_type: data_mean_and_scale
  mean_value: 123.675 116.28 103.53
  scale_value: 0.01712 0.01751 0.01743
calibration_parameters:
  cal_data_dir: ./calib   # 100 images
  calibration_type: max
  max_percentile: 0.99995
compiler_parameters:
  compile_mode: latency
  optimize_level: O3
"""

NODES = ("stem/Conv", "b1/dw/Conv", "b1/pw/Conv", "b2/Conv", "head/Gemm", "head/Softmax")

Effect = Callable[[QuantSettings], float]


CATEGORIES = {r.code: r.info.category for r in load_rules()}


class FakeWhatIf:
    """Cosine = base + the gains the settings and input fixes earn; records every measured
    settings. Gains are keyed by what changes, e.g. "per_channel", "int16:b2/Conv" or an
    `InputFix`."""

    def __init__(self, base: float, effects: dict[object, float], noise: float = 0.0005) -> None:
        self.base = base
        self.effects = effects
        self.noise = noise
        self.settings = QuantSettings("max", 0.99995)  # CONFIG_TEXT's; `plan` sets the real one
        self.calls: list[QuantSettings] = []

    def _gain(self, s: QuantSettings) -> float:
        e = self.effects
        if s.per_channel and "per_channel_caps" in e:  # per_channel makes the method moot
            return e["per_channel_caps"]
        g = e.get(f"type:{s.calibration_type}", 0.0)
        if s.calibration_type == "max" and s.max_percentile:
            g += e.get(f"p:{s.max_percentile:g}", 0.0)
        for flag in ("per_channel", "asymmetric", "bias_correction"):
            if getattr(s, flag):
                g += e.get(flag, 0.0)
        for o in s.node_overrides:
            if o.on == "CPU":
                g += e.get(f"cpu:{o.node}", 0.0)
            elif o.input_dtype == "int16":
                g += e.get(f"int16:{o.node}", 0.0)
        for n in s.run_on_cpu:
            g += e.get(f"cpu:{n}", 0.0)
        if s.set_model_output_int8:
            g += e.get("output_int8", 0.0)
        return g

    def measure_against(self, remedy: Remedy, against: Remedy):
        return self.measure(remedy)

    def measure_race(self, remedies, against: Remedy):
        return [self.measure(r) for r in remedies]

    def measure(self, remedy: Remedy) -> Measure:
        if not all(self.can_emulate(c) for c in input_changes(remedy)):
            raise CannotEmulate("not in the fake")
        settings = settings_after(self.settings, remedy)
        self.calls.append(settings)
        fixed = sum(self.effects[c.fix] for c in input_changes(remedy))
        c = min(1.0, self.base + fixed + self._gain(settings))
        top1 = 1 - 5 * (1 - c) if "deployed" in self.effects else None  # labelled images
        return Measure(c, top1, 1 - 5 * (1 - c), self.noise)

    def counts(self) -> tuple[int, int]:
        return 32, 300 if "deployed" in self.effects else 0

    def paired_noise(self, a: Remedy, b: Remedy) -> float | None:
        return None

    def can_emulate(self, change: InputChange) -> bool:
        return change.fix in self.effects

    def measure_as_deployed(self, remedy: Remedy, mistake: InputChange) -> Measure | None:
        if mistake.fix not in self.effects or "deployed" not in self.effects:
            return None
        return dataclasses.replace(self.measure(remedy), top1=self.effects["deployed"])


def make_plan(findings, analysis, fake, cfg, **kw):
    """`build_plan` with the fake bound to the config's settings and the rules' categories."""
    if fake is not None and cfg is not None:
        fake.settings = settings_from_config(cfg)
    return build_plan(findings, analysis, fake, cfg, categories=CATEGORIES, **kw)


def swap_finding(**kw) -> Finding:
    return Finding(
        "PTQ001",
        Severity.CRITICAL,
        "calibration files look BGR; input_type_train is rgb",
        (Evidence("mean top-1 probability", "0.62", "0.94"),),
        fix="Write the calibration files in RGB order.",
        remedy=Remedy(inputs=(InputChange(InputFix.SWAP_CHANNELS),)),
        **kw,
    )


def _node(i: int, name: str, sens: float, gain: float = 0.0, placement: str = "BPU") -> NodeRow:
    return NodeRow(
        name=name,
        op_type=name.split("/")[-1],
        output=f"{name}_out",
        dtype="int8" if placement == "BPU" else "float",
        placement=placement,
        similarity=Similarity(0.99, 0.0, 0.0, 30.0, 0.1),
        sensitivity_cosine=sens,
        int16_gain=gain,
        topo_index=i,
    )


def analysis(
    band: str = "medium", cosine: float = 0.95, sens: dict[str, float] | None = None
) -> Analysis:
    sens = sens or {}
    gains = {"head/Gemm": 0.004, "b2/Conv": 0.002}
    nodes = tuple(
        _node(
            i,
            n,
            sens.get(n, 0.9999),
            gains.get(n, 0.0),
            "CPU" if n == "head/Softmax" else "BPU",
        )
        for i, n in enumerate(NODES)
    )
    curve = tuple(
        CurvePoint(i, n, 1 - (1 - cosine) * (i + 1) / len(NODES)) for i, n in enumerate(NODES)
    )
    quality = Quality(
        output_cosine=cosine,
        top1_float=None,
        top1_quant=None,
        top1_agreement=0.9,
        loss_points={"large": 8.0, "medium": 2.5, "small": 0.4}[band],
        band=band,
        basis="output cosine and top-1 agreement on 32 calibration samples",
        samples=32,
    )
    return Analysis(scheme="int8", quality=quality, nodes=nodes, curve=curve)


def config(tmp_path: Path, text: str = CONFIG_TEXT):
    path = tmp_path / "mapper.yaml"
    path.write_text(text)
    return load_config(path)


def test_per_channel_is_the_first_calibration_step_and_lands_in_the_patch(tmp_path: Path) -> None:
    fake = FakeWhatIf(0.95, {"per_channel": 0.045, "type:kl": 0.0003, "asymmetric": 0.0002})
    plan = make_plan([], analysis(), fake, config(tmp_path))
    cal = [s for s in plan.steps if s.stage == "calibration"]
    assert cal[0].title.startswith("Turn on per_channel")
    assert cal[0].tried and cal[0].after is not None and cal[0].before is not None
    assert cal[0].after.cosine - cal[0].before.cosine > 0.04
    assert cal[0].severity is Severity.MAJOR
    assert len(cal) == 1  # kl (+0.0003) and asymmetric (+0.0002) are within the noise
    assert "calibration_parameters.per_channel: true" in (cal[0].yaml_change or "")
    patched = yaml.safe_load(plan.patched_config or "")
    assert patched["calibration_parameters"]["per_channel"] is True
    assert patched["calibration_parameters"]["calibration_type"] == "max"
    assert "# 100 images" in (plan.patched_config or "")
    assert "+  per_channel: true" in plan.config_diff
    assert plan.reached is not None and plan.reached.cosine >= 0.99
    assert not any(s.stage in ("precision", "qat") for s in plan.steps)  # target reached


def test_reference_order_of_candidates(tmp_path: Path) -> None:
    fake = FakeWhatIf(0.95, {})
    make_plan([], analysis(), fake, config(tmp_path))
    labels = [s.describe() for s in fake.calls]
    assert labels[:9] == [
        "max p=0.99995",  # the configured state first
        "mix",
        "kl",
        "max",
        "max p=0.99999",
        "max p=0.9999",
        "max p=0.9995",
        "max p=0.999",
        "max p=0.99995 per_channel",
    ]
    assert labels[9:11] == ["max p=0.99995 asymmetric", "max p=0.99995 bias_correction"]


def test_method_gain_above_noise_is_recommended_with_its_trend(tmp_path: Path) -> None:
    fake = FakeWhatIf(0.95, {"type:kl": 0.02, "p:0.9999": 0.01})
    plan = make_plan([], analysis(), fake, config(tmp_path))
    step = next(s for s in plan.steps if s.stage == "calibration")
    assert step.title == "Calibrate with kl"
    assert "calibration_parameters.calibration_type: kl" in (step.yaml_change or "")
    assert any(e.startswith("max_percentile trend") and "0.9999 0.9600" in e for e in step.evidence)


def test_gains_within_noise_keep_the_calibration(tmp_path: Path) -> None:
    fake = FakeWhatIf(0.995, {"type:kl": 0.0008, "per_channel": 0.0009}, noise=0.001)
    plan = make_plan([], analysis("small", 0.995), fake, config(tmp_path))
    [step] = [s for s in plan.steps if s.stage == "calibration"]
    assert step.title.startswith("Keep the calibration")
    assert step.severity is Severity.INFO
    assert plan.config_diff == ""
    assert all(s.severity.rank <= Severity.MINOR.rank for s in plan.steps)


def test_greedy_precision_tail_to_cpu_then_int16(tmp_path: Path) -> None:
    effects = {"cpu:head/Gemm": 0.02, "int16:b2/Conv": 0.015, "int16:head/Gemm": 0.01}
    fake = FakeWhatIf(0.96, effects)
    plan = make_plan([], analysis(), fake, config(tmp_path), target_cosine=0.99)
    prec = [s for s in plan.steps if s.stage == "precision"]
    assert [s.title for s in prec] == [
        "Run head/Gemm on the CPU (float)",
        "Run b2/Conv in int16",
    ]
    assert all(s.tried and s.after and s.before for s in prec)
    assert prec[0].after == prec[1].before  # each step re-measured from the last
    assert any("cost" in e for e in prec[0].evidence)
    info = yaml.safe_load(plan.patched_config or "")["model_parameters"]["node_info"]
    assert info == {
        "head/Gemm": {"ON": "CPU"},
        "b2/Conv": {"InputType": "int16", "OutputType": "int16"},
    }
    assert not any(s.stage == "qat" for s in plan.steps)


def test_cpu_goes_to_run_on_cpu_on_x3_and_no_int16(tmp_path: Path) -> None:
    text = CONFIG_TEXT.replace("march: bayes-e", "march: bernoulli2")
    fake = FakeWhatIf(0.96, {"cpu:head/Gemm": 0.02, "int16:b2/Conv": 0.03})
    plan = make_plan([], analysis(), fake, config(tmp_path, text))
    prec = [s for s in plan.steps if s.stage == "precision"]
    assert [s.title for s in prec] == ["Run head/Gemm on the CPU (float)"]
    patched = yaml.safe_load(plan.patched_config or "")
    assert patched["calibration_parameters"]["run_on_cpu"] == "head/Gemm"
    assert not any(s.input_dtype for c in fake.calls for s in c.node_overrides)


def test_qat_when_nothing_reaches_the_target(tmp_path: Path) -> None:
    fake = FakeWhatIf(0.90, {"per_channel": 0.01, "int16:b2/Conv": 0.005})
    plan = make_plan([], analysis("large", 0.9), fake, config(tmp_path))
    assert plan.steps[-1].stage == "qat"
    assert plan.steps[-1].severity is Severity.MAJOR
    assert "max p=0.99995 per_channel" in plan.steps[-1].evidence[0]
    assert plan.reached is not None and plan.reached.cosine < 0.99
    prec = [s for s in plan.steps if s.stage == "precision"]
    assert [s.title for s in prec] == ["Run b2/Conv in int16"]


def test_pipeline_fix_emulated_first_and_later_steps_measured_on_fixed_data(
    tmp_path: Path,
) -> None:
    fake = FakeWhatIf(0.80, {InputFix.SWAP_CHANNELS: 0.15, "per_channel": 0.045})
    swap = swap_finding()
    minor = Finding("PTQ205", Severity.MINOR, "per_channel has no effect with default")
    info = Finding("PTQ104", Severity.INFO, "100 samples")
    plan = make_plan([minor, swap, info], analysis("large", 0.8), fake, config(tmp_path))
    first, second = plan.steps[:2]
    assert first.codes == ("PTQ001",) and first.severity is Severity.CRITICAL
    assert first.stage is PlanStage.PIPELINE and first.stage == "pipeline"
    assert first.remedy == swap.remedy
    # no labels: the fixed pipeline's own error only, never a cosine compared across inputs
    assert first.tried and first.before is None and first.after
    assert round(first.after.cosine, 6) == 0.95
    assert first.measured_on == MeasuredOn(
        Pipeline.FIXED, samples=32, fixes=("swap channels (PTQ001)",)
    )
    assert second.codes == ("PTQ205",) and not second.tried
    assert "large loss" in plan.route and "pipeline" in plan.route
    cal = next(s for s in plan.steps if s.stage == "calibration")
    assert cal.before == first.after  # measured on the fixed data
    assert "pipeline fixes above applied: swap channels (PTQ001)" in cal.evidence[-1]
    assert not any(s.codes == ("PTQ104",) for s in plan.steps)  # info findings are no steps


def test_pipeline_fix_not_emulable_says_not_measured(tmp_path: Path) -> None:
    fake = FakeWhatIf(0.80, {})
    norm = Finding("PTQ002", Severity.CRITICAL, "data normalised twice",
                   remedy=Remedy(inputs=(InputChange(InputFix.REMOVE_NORMALISATION),)))  # fmt: skip
    plan = make_plan([norm], analysis("large", 0.8), fake, config(tmp_path))
    step = plan.steps[0]
    assert not step.tried and step.after is None
    assert any("not measured" in e for e in step.evidence)


def test_finding_yaml_change_applied_to_the_patch(tmp_path: Path) -> None:
    fake = FakeWhatIf(0.995, {})
    f = Finding(
        "PTQ202",
        Severity.MAJOR,
        "input_layout_train NCHW but the model takes NHWC",
        remedy=Remedy(config=(ConfigEdit("input_parameters.input_layout_train", "NHWC", "NCHW"),)),
    )
    plan = make_plan([f], analysis("small", 0.995), fake, config(tmp_path))
    assert plan.steps[0].yaml_change == "input_parameters.input_layout_train: NHWC"
    assert (
        yaml.safe_load(plan.patched_config or "")["input_parameters"]["input_layout_train"]
        == "NHWC"
    )


def test_without_measurer_uses_the_analysis_numbers(tmp_path: Path) -> None:
    plan = make_plan([], analysis("medium", 0.97), None, config(tmp_path))
    prec = [s for s in plan.steps if s.stage == "precision"]
    assert [s.title for s in prec] == ["Run head/Gemm in int16", "Run b2/Conv in int16"]
    assert not any(s.tried for s in prec)
    assert plan.patched_config is not None and "head/Gemm" in plan.patched_config


def test_band_routes() -> None:
    q = analysis("medium").quality
    assert q is not None
    plan = make_plan([], analysis("medium"), None, None)
    assert plan.route.startswith("medium loss (2.5 points of top-1 agreement")
    assert "calibration and node sensitivity" in plan.route
    labelled = dataclasses.replace(
        analysis("large"),
        quality=dataclasses.replace(q, top1_float=0.95, top1_quant=0.87, loss_points=8.0,
                                    band="large", basis="top-1 accuracy on 300 labelled images"),
    )  # fmt: skip
    plan = make_plan([], labelled, None, None)
    assert plan.route.startswith("large loss (8.0 points of top-1 accuracy")
    assert plan.patched_config is None and plan.config_diff == ""


def test_node_verdict_sensitive_vs_accumulation() -> None:
    few = analysis("medium", 0.95, {"head/Gemm": 0.96})
    kind, text, _ = node_verdict(few) or ("", "", ())
    assert kind == "sensitive" and "head/Gemm" in text
    spread = analysis("medium", 0.95, {n: 0.995 for n in NODES})
    kind, _, _ = node_verdict(spread) or ("", "", ())
    assert kind == "accumulation"


def test_measure_budget_and_cancel(tmp_path: Path) -> None:
    import threading

    from ptqtui.progress import Cancelled

    cancel = threading.Event()
    cancel.set()
    fake = FakeWhatIf(0.9, {})
    try:
        make_plan([], analysis(), fake, config(tmp_path), cancel=cancel)
    except Cancelled:
        pass
    else:
        raise AssertionError("cancel was ignored")


def test_config_cure_is_not_emulated_as_a_data_fix(tmp_path: Path) -> None:
    fake = FakeWhatIf(0.80, {InputFix.SWAP_CHANNELS: 0.15})
    f = Finding(
        "PTQ001",
        Severity.CRITICAL,
        "the float model prefers the samples swapped",
        remedy=Remedy(config=(ConfigEdit("input_parameters.input_type_train", "bgr", "rgb"),)),
    )
    plan = make_plan([f], analysis("large", 0.8), fake, config(tmp_path))
    assert not plan.steps[0].tried
    assert yaml.safe_load(plan.patched_config or "")["input_parameters"]["input_type_train"] == (
        "bgr"
    )


def test_range_direction_of_ptq003(tmp_path: Path) -> None:
    fake = FakeWhatIf(0.80, {InputFix.SCALE_X255: 0.1, InputFix.SCALE_DIV255: -0.1})
    up = Finding("PTQ003", Severity.CRITICAL, "the calibration data of input x lies in 0..1",
                 remedy=Remedy(inputs=(InputChange(InputFix.SCALE_X255),)))  # fmt: skip
    plan = make_plan([up], analysis("large", 0.8), fake, config(tmp_path))
    assert plan.steps[0].tried
    assert plan.steps[0].after is not None and plan.steps[0].after.cosine > 0.85


def test_no_node_step_once_the_target_is_reached(tmp_path: Path) -> None:
    sens = {"head/Gemm": 0.96}
    fake = FakeWhatIf(0.95, {"per_channel": 0.045})
    plan = make_plan([], analysis("medium", 0.95, sens), fake, config(tmp_path))
    assert not any(s.stage == "nodes" for s in plan.steps)
    short = FakeWhatIf(0.95, {})
    plan = make_plan([], analysis("medium", 0.95, sens), short, config(tmp_path))
    assert any(s.stage == "nodes" and "head/Gemm" in s.title for s in plan.steps)


def test_method_change_dropped_when_per_channel_makes_it_moot(tmp_path: Path) -> None:
    fake = FakeWhatIf(0.95, {"type:kl": 0.01, "per_channel_caps": 0.045})
    plan = make_plan([], analysis(), fake, config(tmp_path))
    cal = [s for s in plan.steps if s.stage == "calibration"]
    assert [s.title for s in cal] == ["Turn on per_channel"]
    assert any("no longer matters" in e for e in cal[0].evidence)
    patched = yaml.safe_load(plan.patched_config or "")["calibration_parameters"]
    assert patched["calibration_type"] == "max" and patched["per_channel"] is True


def test_a_change_that_cannot_be_patched_is_named_and_the_rest_applied(tmp_path: Path) -> None:
    text = CONFIG_TEXT.replace(
        "compiler_parameters:\n  compile_mode: latency\n  optimize_level: O3\n",
        "compiler_parameters: {compile_mode: speed, optimize_level: O3}\n",
    )
    f = Finding(
        "PTQ201",
        Severity.MAJOR,
        "compile_mode speed is not one of latency, bandwidth, balance",
        remedy=Remedy(config=(ConfigEdit("compiler_parameters.compile_mode", "latency", "speed"),)),
    )
    fake = FakeWhatIf(0.95, {"per_channel": 0.045})
    plan = make_plan([f], analysis(), fake, config(tmp_path, text))
    assert plan.config_diff.startswith("# not applied: PTQ201")
    assert "+  per_channel: true" in plan.config_diff
    assert yaml.safe_load(plan.patched_config or "")["calibration_parameters"]["per_channel"]


def test_step_titles_keep_the_first_clause_whole() -> None:
    from ptqtui.advise.steps.common import short

    assert short("short message") == "short message"
    long = "the calibration data of input images is in the reverse channel order of the " * 2
    assert short(long) == long  # no clause to stop at: whole, the front end wraps it
    assert short(long + "; and more") == long


def test_patch_remedy_for_what_if_choices(tmp_path: Path) -> None:
    from ptqtui.advise.plan import patch_remedy
    from ptqtui.remedy import NodeChange, Placement, Remedy, SettingsDelta

    cfg = config(tmp_path)
    old = QuantSettings("max", 0.99995)
    delta = SettingsDelta(per_channel=True, nodes=(NodeChange("head/Gemm", Placement.CPU),))
    result = patch_remedy(CONFIG_TEXT, Remedy(settings=delta), old, cfg, name="mapper.yaml")
    data = yaml.safe_load(result.text)
    assert data["calibration_parameters"]["per_channel"] is True
    assert data["model_parameters"]["node_info"] == {"head/Gemm": {"ON": "CPU"}}
    assert result.diff.startswith("--- a/mapper.yaml")


def test_int8_outputs_dropped_when_they_cost(tmp_path: Path) -> None:
    text = CONFIG_TEXT.replace(
        "  max_percentile: 0.99995\n",
        "  max_percentile: 0.99995\n  optimization: set_model_output_int8,asymmetric\n",
    )
    fake = FakeWhatIf(0.985, {"output_int8": -0.01})
    plan = make_plan([], analysis(), fake, config(tmp_path, text))
    [step] = [s for s in plan.steps if s.stage == "precision"]
    assert step.title == "Keep the model outputs in high precision" and step.tried
    assert step.yaml_change == "calibration_parameters.optimization: asymmetric"
    cal = yaml.safe_load(plan.patched_config or "")["calibration_parameters"]
    assert cal["optimization"] == "asymmetric"


def test_time_budget_stops_the_what_ifs_and_says_so(tmp_path: Path) -> None:
    fake = FakeWhatIf(0.95, {"per_channel": 0.045})
    plan = make_plan([], analysis(), fake, config(tmp_path), time_budget=0.0)
    assert "time budget" in plan.route
    assert len(fake.calls) == 0
    assert plan.reached is not None and plan.reached.cosine == 0.95  # the analysis' headline
    assert not any(s.stage == "calibration" for s in plan.steps)


def test_node_rename_from_a_finding(tmp_path: Path) -> None:
    text = CONFIG_TEXT.replace(
        "  output_model_file_prefix: demo\n",
        "  output_model_file_prefix: demo\n"
        "  node_info: {\n"
        "    \"/head/softmax/SoftMax\": {'ON': 'CPU'}\n"
        "  }\n",
    ).replace("  cal_data_dir:", "  run_on_cpu: 'x/Conv;head/gemm'\n  cal_data_dir:")
    findings = [
        Finding(
            "PTQ203",
            Severity.MAJOR,
            "node_info names '/head/softmax/SoftMax', which is not a node",
            remedy=Remedy(
                config=(
                    ConfigEdit(
                        "model_parameters.node_info",
                        "/head/softmax/Softmax",
                        node="/head/softmax/SoftMax",
                        rename=True,
                    ),
                )
            ),
        ),
        Finding(
            "PTQ203",
            Severity.MAJOR,
            "run_on_cpu names 'head/gemm', which is not a node",
            remedy=Remedy(
                config=(
                    ConfigEdit(
                        "calibration_parameters.run_on_cpu",
                        "head/Gemm",
                        node="head/gemm",
                        rename=True,
                    ),
                )
            ),
        ),
        Finding(
            "PTQ299",
            Severity.MINOR,
            "odd change",
            remedy=Remedy(config=(ConfigEdit("odd group.key", "x"),)),
        ),
    ]
    plan = make_plan(findings, analysis("small", 0.999), FakeWhatIf(0.999, {}),
                      config(tmp_path, text))  # fmt: skip
    data = yaml.safe_load(plan.patched_config or "")
    assert data["model_parameters"]["node_info"] == {"/head/softmax/Softmax": {"ON": "CPU"}}
    assert data["calibration_parameters"]["run_on_cpu"] == "x/Conv;head/Gemm"
    assert "node_info node" not in (plan.patched_config or "")
    odd = next(s for s in plan.steps if s.codes == ("PTQ299",))
    assert odd.yaml_change is None and odd.remedy is not None
    assert plan.config_diff.startswith("# not applied: PTQ299")


def tail_finding() -> Finding:
    cpu = SettingsDelta(nodes=(NodeChange("head/Gemm", Placement.CPU),))
    return Finding("PTQ304", Severity.MINOR, "output operator head/Gemm gains from CPU",
                   related=("head/Gemm",), remedy=Remedy(settings=cpu))  # fmt: skip


def test_tail_gain_offered_as_optional_when_the_target_is_met(tmp_path: Path) -> None:
    tail = tail_finding()
    fake = FakeWhatIf(0.9995, {"cpu:head/Gemm": 0.0004}, noise=0.0001)
    plan = make_plan([tail], analysis("small", 0.9995), fake, config(tmp_path))
    [step] = [s for s in plan.steps if s.stage == "precision"]
    assert step.title == "Optional: run head/Gemm on the CPU (float)"
    assert step.severity is Severity.MINOR and step.tried
    assert step.before is not None and step.after is not None
    assert step.after.cosine > step.before.cosine
    assert "head/Gemm" not in (plan.patched_config or "")  # offered, not written
    # within the noise, or without the finding: nothing offered
    quiet = FakeWhatIf(0.9995, {"cpu:head/Gemm": 0.00005}, noise=0.0001)
    plan = make_plan([tail], analysis("small", 0.9995), quiet, config(tmp_path))
    assert not any(s.stage == "precision" for s in plan.steps)
    plan = make_plan([], analysis("small", 0.9995), fake, config(tmp_path))
    assert not any(s.stage == "precision" for s in plan.steps)


def test_tail_gain_in_accuracy_points_is_a_real_step(tmp_path: Path) -> None:
    """Cosine target met, but the tail on the CPU wins accuracy points: a step in the patch."""
    tail = tail_finding()
    fake = FakeWhatIf(0.996, {"cpu:head/Gemm": 0.003}, noise=0.0001)  # agreement +1.5 pts
    plan = make_plan([tail], analysis("medium", 0.996), fake, config(tmp_path))
    [step] = [s for s in plan.steps if s.stage == "precision"]
    assert step.title == "Run head/Gemm on the CPU (float)"
    assert step.severity is Severity.MAJOR  # 1.5 points: the medium band's grade
    assert "head/Gemm" in (plan.patched_config or "")
    assert plan.reached is not None and plan.reached.cosine == step.after.cosine


def _reversed(f: Finding) -> Finding:
    return dataclasses.replace(
        f,
        message=f.message[::-1],
        fix=f.fix[::-1] if f.fix else None,
        evidence=tuple(dataclasses.replace(e, what=e.what[::-1]) for e in f.evidence),
    )


def test_the_plan_reads_remedies_not_messages(tmp_path: Path) -> None:
    drop = InputChange(InputFix.DROP_SAMPLES, samples=("0007.bin",))
    findings = [
        swap_finding(),
        Finding("PTQ202", Severity.MAJOR, "input_layout_train NCHW but the model takes NHWC",
                remedy=Remedy(config=(ConfigEdit("input_parameters.input_layout_train", "NHWC",
                                                 "NCHW"),))),
        Finding("PTQ103", Severity.MAJOR, "0007.bin is black", remedy=Remedy(inputs=(drop,))),
        Finding("PTQ301", Severity.MAJOR, "per-tensor weights lose accuracy",
                remedy=Remedy(settings=SettingsDelta(per_channel=True))),
        tail_finding(),
    ]  # fmt: skip
    effects = {InputFix.SWAP_CHANNELS: 0.1, "per_channel": 0.03, "cpu:head/Gemm": 0.004}

    def run(fs: list[Finding]):
        fake = FakeWhatIf(0.85, effects)
        plan = make_plan(fs, analysis("large", 0.85), fake, config(tmp_path))
        keep = ("stage", "codes", "remedy", "tried", "before", "after", "yaml_change", "severity")
        return [tuple(getattr(s, k) for k in keep) for s in plan.steps], plan.patched_config

    assert run(findings) == run([_reversed(f) for f in findings])


def test_stage_of_a_finding_comes_from_its_category_and_remedy(tmp_path: Path) -> None:
    drop = Remedy(inputs=(InputChange(InputFix.DROP_SAMPLES, samples=("0007.bin",)),))
    abnormal = Finding("PTQ103", Severity.MAJOR, "0007.bin is black", remedy=drop)
    nan = Finding("PTQ106", Severity.CRITICAL, "0003.bin holds NaN", remedy=drop)
    per_tensor = Finding("PTQ301", Severity.MAJOR, "per-tensor weights",
                         remedy=Remedy(settings=SettingsDelta(per_channel=True)))  # fmt: skip
    fake = FakeWhatIf(0.90, {InputFix.DROP_SAMPLES: 0.02, "per_channel": 0.09})
    plan = make_plan([abnormal, nan, per_tensor], analysis("large", 0.9), fake, config(tmp_path))
    stages = {s.codes: s.stage for s in plan.steps}
    assert stages[("PTQ106",)] is PlanStage.PIPELINE  # critical: fixed first, and measured
    assert stages[("PTQ103",)] is PlanStage.CALIBRATION_SET
    assert stages[("PTQ301",)] is PlanStage.CALIBRATION  # numerics: answered by tuning
    first = plan.steps[0]
    assert first.codes == ("PTQ106",) and first.tried and first.remedy == drop
    assert first.after is not None and first.before is not None
    assert round(first.after.cosine - first.before.cosine, 6) == 0.02
    per_channel = next(s for s in plan.steps if s.title.startswith("Turn on per_channel"))
    assert per_channel.codes == ("PTQ301",)
    assert per_channel.remedy == Remedy(settings=SettingsDelta(per_channel=True))
    assert per_channel.yaml_change == "calibration_parameters.per_channel: true"


def test_norm_type_no_preprocess_is_emulated_as_removing_the_normalisation(tmp_path: Path) -> None:
    """A self-normalising model: the cure is the config (norm_type no_preprocess), and the
    simulator tries it by removing the normalisation from the data (the same values)."""
    edit = ConfigEdit("input_parameters.norm_type", "no_preprocess", "data_mean_and_scale")
    norm = Finding("PTQ002", Severity.CRITICAL, "the model normalises too",
                   remedy=Remedy(config=(edit,)))  # fmt: skip
    fake = FakeWhatIf(0.80, {InputFix.REMOVE_NORMALISATION: 0.15})
    plan = make_plan([norm], analysis("large", 0.8), fake, config(tmp_path))
    first = plan.steps[0]
    assert first.tried and first.after is not None and first.before is None  # no labels
    assert round(first.after.cosine, 6) == 0.95
    assert first.yaml_change == "input_parameters.norm_type: no_preprocess"
    assert yaml.safe_load(plan.patched_config or "")["input_parameters"]["norm_type"] == (
        "no_preprocess"
    )


# ---------------------------------------------------------------- one meaning for every number


class Top1Fake(FakeWhatIf):
    """Labelled images: top-1 follows the cosine, minus what `top1:<method>` takes off."""

    def measure_against(self, remedy: Remedy, against: Remedy):
        return self.measure(remedy)

    def measure_race(self, remedies, against: Remedy):
        return [self.measure(r) for r in remedies]

    def measure(self, remedy: Remedy) -> Measure:
        m = super().measure(remedy)
        s = settings_after(self.settings, remedy)
        top1 = 0.5 + 0.5 * m.cosine - self.effects.get(f"top1:{s.calibration_type}", 0.0)
        return dataclasses.replace(m, top1=top1)

    def counts(self) -> tuple[int, int]:
        return 32, 300


def chain_holds(plan) -> bool:
    """Every measured step on the calibration basis starts where the one before ended."""
    last = plan.start
    for s in plan.steps:
        if s.after is None:
            continue
        on = s.measured_on
        if on is not None and on.reference is Reference.FLOAT and s.before not in (None, last):
            return False
        last = s.after
    return True


def test_a_pipeline_fix_with_labels_shows_top1_on_the_same_images(tmp_path: Path) -> None:
    """bgr_swap: the fix lowers the cosine vs float (another input) but raises top-1 on the
    same labelled images; the old plan showed "cosine 0.7755 -> 0.7088" as its effect."""
    fake = FakeWhatIf(0.98, {InputFix.SWAP_CHANNELS: -0.01, "deployed": 0.133})
    plan = make_plan([swap_finding()], analysis("large", 0.98), fake, config(tmp_path))
    first = plan.steps[0]
    assert first.before is not None and first.after is not None
    assert first.after.cosine < first.before.cosine  # what the old effect line showed
    assert first.measured_on is not None
    assert first.measured_on.reference is Reference.LABELS
    assert first.measured_on.pipeline is Pipeline.WRITTEN_THEN_FIXED
    assert first.before.top1 is not None and first.after.top1 is not None
    assert first.after.top1 > first.before.top1
    effect = first.effect() or ""
    assert "top-1 13.3 %" in effect and "cosine" not in effect  # no cross-reference cosine
    assert "300 labelled images" in effect
    # later steps are measured on the fixed data and say so
    later = [s for s in plan.steps[1:] if s.after is not None]
    assert later and all(s.measured_on.pipeline is Pipeline.FIXED for s in later)
    assert chain_holds(plan)


def test_a_cosine_gain_that_loses_top1_is_not_recommended(tmp_path: Path) -> None:
    """abnormal_images: mix gained cosine above the noise, lost 0.3 points of top-1 and was
    recommended."""
    fake = Top1Fake(0.998, {"type:mix": 0.0014, "top1:mix": 0.0033}, noise=0.0013)
    plan = make_plan([], analysis("small", 0.998), fake, config(tmp_path))
    [cal] = [s for s in plan.steps if s.stage == "calibration"]
    assert cal.severity is Severity.INFO and cal.remedy is None  # kept
    assert plan.config_diff == ""
    # the same gain without the top-1 loss is recommended
    fake = Top1Fake(0.998, {"type:mix": 0.0014}, noise=0.0013)
    plan = make_plan([], analysis("small", 0.998), fake, config(tmp_path))
    [cal] = [s for s in plan.steps if s.stage == "calibration"]
    assert cal.title == "Calibrate with mix" and cal.remedy is not None
    assert chain_holds(plan)


def test_no_recommended_step_loses_beyond_the_noise(tmp_path: Path) -> None:
    effects = {"per_channel": 0.02, "asymmetric": 0.004, "top1:max": 0.0, "cpu:head/Gemm": 0.01}
    fake = Top1Fake(0.96, effects)
    plan = make_plan([], analysis(), fake, config(tmp_path), target_cosine=0.999)
    for s in plan.steps:
        if s.actionable and s.before is not None and s.after is not None:
            assert s.after.cosine > s.before.cosine
            assert s.after.top1 is not None and s.before.top1 is not None
            assert s.after.top1 >= s.before.top1
    assert chain_holds(plan)
    assert plan.start == plan.steps[0].before  # the plan starts at the configured state


def test_the_headline_step_changes_something(tmp_path: Path) -> None:
    """sensitive_tail: "Keep the calibration" was the headline next step."""
    fake = FakeWhatIf(0.96, {"cpu:head/Gemm": 0.035})
    plan = make_plan([], analysis(), fake, config(tmp_path), target_cosine=0.99)
    assert plan.steps[0].severity is Severity.INFO  # the calibration is kept
    step = plan.next_step
    assert step is not None and step.actionable and step.remedy is not None
    assert step.stage is PlanStage.PRECISION


def test_measured_on_says_samples_reference_and_pipeline() -> None:
    on = MeasuredOn(Pipeline.FIXED, samples=32, labelled=300, fixes=("swap channels (PTQ001)",))
    assert on.describe() == (
        "quantized vs float on 32 calibration samples, top-1 on 300 labelled images, "
        "pipeline as fixed above (swap channels (PTQ001))"
    )
    on = MeasuredOn(Pipeline.WRITTEN_THEN_FIXED, Reference.LABELS, labelled=300)
    assert on.describe() == (
        "top-1 vs the labels on 300 labelled images fed through the pipeline as written, "
        "then as fixed"
    )


def test_what_a_step_was_measured_on_survives_a_saved_report(tmp_path: Path) -> None:
    from ptqtui.advise.results import Plan
    from ptqtui.jsoncodec import decode as _decode
    from ptqtui.jsoncodec import encode as _encode

    fake = FakeWhatIf(0.98, {InputFix.SWAP_CHANNELS: -0.01, "deployed": 0.133})
    plan = make_plan([swap_finding()], analysis("large", 0.98), fake, config(tmp_path))
    assert plan.steps[0].measured_on is not None and plan.start is not None
    assert _decode(Plan, json.loads(json.dumps(_encode(plan)))) == plan
