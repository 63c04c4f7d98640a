"""Plan on the real simulator, write the config, run again: the gain is the one predicted.

A tiny CNN whose depthwise conv has one channel 30x wider than the others (per-tensor weight
hazard), calibrated with a commented featuremap config (about 4 s). Then, when the bundled
demo data exists, the same on its scenarios: per_tensor_loss always (about 20 s), the
others unless PTQTUI_QUICK=1.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml

from ptqtui.advise.patch import write_patched_config
from ptqtui.advise.plan import build_plan
from ptqtui.advise.results import Plan
from ptqtui.analysis.results import Analysis
from ptqtui.analysis.run import run_analysis
from ptqtui.analysis.whatif import WhatIf
from ptqtui.check.findings import Severity
from ptqtui.check.registry import load_rules
from ptqtui.diagnosis import diagnose
from ptqtui.inputs.resolve import load_inputs
from ptqtui.request import Request
from tests.quant.factories import small_cnn

CONFIG = """\
# featuremap model: no preprocessing in the converter
model_parameters:
  onnx_model: 'm.onnx'    # the float model
  march: "bayes-e"
  output_model_file_prefix: 'm'
input_parameters:
  input_type_train: 'featuremap'
  input_type_rt: 'featuremap'
  input_layout_train: 'NCHW'
  input_shape: '1x3x8x8'
  norm_type: 'no_preprocess'
calibration_parameters:
  # 24 random feature maps
  cal_data_dir: './cal'
  cal_data_type: 'float32'
  calibration_type: 'kl'
compiler_parameters:
  compile_mode: 'latency'
  optimize_level: 'O3'   # deployment
"""


def plan_for_inputs(findings, analysis, ctx, inputs) -> Plan:
    """What `run_diagnosis` plans: over the what-if service of the analyses' SimContext."""
    categories = {r.code: r.info.category for r in load_rules(entry_points=False)}
    whatif = WhatIf(ctx, inputs)
    return build_plan(findings, analysis, whatif, inputs.config, categories=categories)


def _write(tmp: Path) -> Path:
    model = small_cnn(wide_channel=30.0)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    onnx.save(model, tmp / "m.onnx")
    rng = np.random.default_rng(0)
    (tmp / "cal").mkdir()
    for i in range(24):
        np.save(tmp / "cal" / f"{i:02d}.npy", rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32))
    (tmp / "mapper.yaml").write_text(CONFIG)
    return tmp / "mapper.yaml"


def _plan_and_rerun(
    config_path: Path, request: Request, tmp: Path, budget: float | None = None
) -> tuple[Plan, Analysis, Analysis, Path]:
    """Analyse, plan, write the patched config, and analyse the written config again (the
    headline only: the re-run's budget leaves out the optional analyses)."""
    inputs = load_inputs(request)
    analysis, ctx = run_analysis(inputs, sensitivity_samples=4, time_budget=budget)
    plan = plan_for_inputs([], analysis, ctx, inputs)
    out = write_patched_config(plan, tmp / "patched.yaml", config_path)
    again = load_inputs(Request(model=request.model, config=out, cal_dirs=request.cal_dirs,
                                eval_dir=request.eval_dir))  # fmt: skip
    analysis2, _ = run_analysis(again, sensitivity_samples=4, time_budget=0.1)
    return plan, analysis, analysis2, out


def test_written_config_reproduces_the_predicted_gain(tmp_path: Path) -> None:
    config_path = _write(tmp_path)
    request = Request(model=tmp_path / "m.onnx", config=config_path, cal_dirs=(tmp_path / "cal",))
    plan, before, after, out = _plan_and_rerun(config_path, request, tmp_path)
    assert plan.steps and plan.reached is not None
    changed = [s for s in plan.steps if s.yaml_change]
    assert changed, [s.title for s in plan.steps]
    assert before.quality is not None and after.quality is not None
    # the re-run of the written config measures what the plan predicted
    assert after.quality.output_cosine == pytest.approx(plan.reached.cosine, abs=1e-5)
    assert after.quality.output_cosine > before.quality.output_cosine
    text = out.read_text()
    assert config_path.read_text() == CONFIG  # the user's file is untouched
    for line in CONFIG.splitlines():
        if "#" in line:
            assert line in text  # every commented line survives byte for byte
    assert yaml.safe_load(text)["calibration_parameters"]["cal_data_dir"] == "./cal"


# ---------------------------------------------------------------------------------- demo

DEMO = Path(__file__).resolve().parents[2] / "demo_data"
SCENARIOS = DEMO / "scenarios"
needs_demo = pytest.mark.skipif(
    not (SCENARIOS / "index.json").exists(), reason="demo data not generated"
)
# about 20 s each; PTQTUI_QUICK=1 skips them while developing
full_demo = pytest.mark.skipif(
    os.environ.get("PTQTUI_QUICK") == "1", reason="PTQTUI_QUICK=1: about 20 s skipped"
)


def _demo_request(name: str, tmp: Path) -> tuple[Path, Request]:
    """The scenario mirrored under `tmp` (symlinks), so that a config written beside it finds
    the model and data by the same relative paths; the demo folder itself is never written."""
    root = tmp / "demo"
    root.mkdir()
    for entry in DEMO.iterdir():
        if entry.name != "scenarios":
            (root / entry.name).symlink_to(entry)
    folder = root / "scenarios" / name
    folder.mkdir(parents=True)
    for entry in (SCENARIOS / name).iterdir():
        (folder / entry.name).symlink_to(entry)
    eval_dir = DEMO / "eval" if (DEMO / "eval").is_dir() else None
    return folder / "config.yaml", Request(config=folder / "config.yaml", eval_dir=eval_dir)


@needs_demo
@pytest.mark.parametrize(
    "name", ["per_tensor_loss", pytest.param("sensitive_tail", marks=full_demo)]
)
def test_demo_plan_applied_and_rerun(name: str, tmp_path: Path) -> None:
    """The whole diagnosis (rules included: the tail step answers PTQ304), the written
    config, and a re-run that measures what the plan predicted."""
    config, request = _demo_request(name, tmp_path)
    # no --time-budget: what a budget trims depends on the machine's load, and the re-run
    # must measure the same samples as the plan did
    request = dataclasses.replace(request, quiet=True)
    t = time.perf_counter()
    diagnosis = diagnose(request)
    plan, before = diagnosis.plan, diagnosis.analysis
    assert plan is not None and plan.reached is not None
    assert before is not None and before.quality is not None
    out = write_patched_config(plan, config.parent / "patched.yaml", config)
    again = load_inputs(Request(config=out, eval_dir=request.eval_dir))
    after, _ = run_analysis(again, sensitivity_samples=4)
    seconds = time.perf_counter() - t
    assert after.quality is not None
    assert after.quality.output_cosine == pytest.approx(plan.reached.cosine, abs=1e-4)
    assert after.quality.output_cosine > before.quality.output_cosine
    stages = [(s.stage, s.title) for s in plan.steps]
    if name == "per_tensor_loss":
        first_cal = next(s for s in plan.steps if s.stage == "calibration")
        assert "per_channel" in first_cal.title, stages
        assert first_cal.after is not None and first_cal.before is not None
        assert first_cal.after.cosine > first_cal.before.cosine
    else:  # the tail to the CPU, with its gain in accuracy, written into the config
        [tail] = [s for s in plan.steps if s.stage == "precision"]
        assert tail.title == "Run /head/fc/Gemm on the CPU (float)", stages
        assert tail.after is not None and tail.before is not None
        assert tail.after.top1 is not None and tail.before.top1 is not None
        assert tail.after.top1 > tail.before.top1
        assert after.quality.top1_quant is not None and before.quality.top1_quant is not None
        assert after.quality.top1_quant > before.quality.top1_quant
    print(f"{name}: diagnose + rerun {seconds:.1f} s; {json.dumps(stages)}")


@needs_demo
@full_demo
def test_demo_good_has_no_step_above_minor(tmp_path: Path) -> None:
    _, request = _demo_request("good", tmp_path)
    inputs = load_inputs(request)
    analysis, ctx = run_analysis(inputs, sensitivity_samples=4)
    plan = plan_for_inputs([], analysis, ctx, inputs)
    assert all(not s.severity.at_least(Severity.MAJOR) for s in plan.steps), [
        (s.title, s.severity) for s in plan.steps
    ]


@needs_demo
@full_demo
@pytest.mark.parametrize(("name", "code"), [("bgr_swap", "PTQ001"), ("double_norm", "PTQ002")])
def test_demo_critical_fix_first_with_recovered_accuracy(
    name: str, code: str, tmp_path: Path
) -> None:
    from ptqtui.check.context import Context
    from ptqtui.check.engine import run_rules

    _, request = _demo_request(name, tmp_path)
    inputs = load_inputs(request)
    analysis, ctx = run_analysis(inputs, sensitivity_samples=4)
    findings = run_rules(
        Context.from_inputs(inputs, analysis=analysis), load_rules(entry_points=False)
    ).findings
    plan = plan_for_inputs(findings, analysis, ctx, inputs)
    first = plan.steps[0]
    assert first.codes == (code,) and first.severity is Severity.CRITICAL, plan.steps
    assert first.tried and first.before is not None and first.after is not None
    assert first.before.top1 is not None and first.after.top1 is not None
    assert first.after.top1 > first.before.top1 + 0.3
