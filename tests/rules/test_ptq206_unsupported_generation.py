from __future__ import annotations

from ptqtui.rules import ptq206_unsupported_generation as rule

from ptqtui.check.findings import Severity
from tests.check.factories import config_context, mapper_config

HB_COMPILE = """\
model_parameters:
  onnx_model: model.onnx
  march: nash-e
  output_model_file_prefix: m
input_parameters:
  input_type_rt: nv12
  input_type_train: rgb
  mean_value: 123.675,116.28,103.53
  std_value: 58.395,57.12,57.375
calibration_parameters:
  cal_data_dir: ./calib
  quant_config: {"model_config": {"all_node_type": "int16"}}
compiler_parameters:
  optimize_level: O2
"""


def test_fires_plainly_on_hb_compile_config(tmp_path):
    [finding] = rule.check(config_context(tmp_path, HB_COMPILE))
    assert finding.remedy is None  # another toolchain: nothing to edit
    assert finding.severity is Severity.MINOR and "hb_compile" in finding.message
    assert finding.evidence[0].observed == "nash-e"


def test_stray_hb_compile_key_is_major(tmp_path):
    config = mapper_config(cal__quant_config={"model_config": {"all_node_type": "int16"}})
    [finding] = rule.check(config_context(tmp_path, config))
    assert finding.severity is Severity.MAJOR and "quant_config" in finding.message


def test_quiet_on_makertbin_config(tmp_path):
    assert rule.check(config_context(tmp_path, mapper_config())) == []
