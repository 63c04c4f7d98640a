from __future__ import annotations

from pathlib import Path

import pytest
from ptqtui.rules import ptq306_output_quantization as rule

from ptqtui.check.context import MissingFact
from ptqtui.check.findings import Severity
from ptqtui.inputs.config import load_config
from ptqtui.quant.scheme import QuantSettings
from ptqtui.remedy import SettingsDelta
from tests.advise.fakes import FakeContext, FakeSim

CONFIG = """\
model_parameters:
  onnx_model: m.onnx
  march: bayes-e
  output_model_file_prefix: m
input_parameters:
  input_type_train: rgb
  input_layout_train: NCHW
  input_type_rt: rgb
  norm_type: no_preprocess
calibration_parameters:
  calibration_type: max
  optimization: {opt}
compiler_parameters:
  compile_mode: latency
  optimize_level: O3
"""


def _config(tmp_path: Path, opt: str):
    path = tmp_path / "m.yaml"
    path.write_text(CONFIG.format(opt=opt))
    return load_config(path)


def _sim(cost: float) -> FakeSim:
    return FakeSim(
        QuantSettings("max", set_model_output_int8=True),
        lambda s: 0.99 - (cost if s.set_model_output_int8 else 0.0),
    )


def test_fires_when_int8_outputs_cost(tmp_path):
    config = _config(tmp_path, "set_model_output_int8,asymmetric")
    [f] = rule.check(FakeContext(config=config, sim=_sim(0.004)))
    assert f.severity is Severity.MINOR and "0.0040" in f.message
    assert f.remedy.settings == SettingsDelta(set_model_output_int8=False)
    assert f.remedy.settings.apply(_sim(0.004).settings) == QuantSettings("max")


def test_quiet_when_outputs_are_float_or_free(tmp_path):
    assert rule.check(FakeContext(config=_config(tmp_path, "asymmetric"), sim=_sim(0.004))) == []
    config = _config(tmp_path, "set_model_output_int8")
    assert rule.check(FakeContext(config=config, sim=_sim(0.0001))) == []


def test_skipped_without_simulator(tmp_path):
    with pytest.raises(MissingFact):
        rule.check(FakeContext(config=_config(tmp_path, "set_model_output_int8"), sim=object()))
