"""The YAML -> QuantSettings adapter."""

from __future__ import annotations

import pytest

from ptqtui.inputs.config import load_config
from ptqtui.quant.settings import QuantFlags, settings_from_config

YAML = """\
model_parameters:
  onnx_model: m.onnx
  march: bernoulli2
  node_info: {
    "conv1": {'ON': 'BPU', 'InputType': 'int16'},
    "fc": {'ON': 'CPU'}
  }
input_parameters:
  input_name: x
  input_type_train: rgb
  input_type_rt: nv12
  input_layout_train: NCHW
calibration_parameters:
  cal_data_dir: ./cal
  calibration_type: max
  max_percentile: 0.9999
  per_channel: true
  run_on_cpu: dw
  optimization: set_model_output_int8,bias_correction
compiler_parameters:
  compile_mode: latency
  optimize_level: O3
"""


def test_config_values_reach_the_settings(tmp_path):
    path = tmp_path / "mapper.yaml"
    path.write_text(YAML)
    s = settings_from_config(load_config(path))
    assert (s.calibration_type, s.max_percentile, s.per_channel) == ("max", 0.9999, True)
    assert s.bias_correction and s.set_model_output_int8 and not s.asymmetric
    assert s.run_on_cpu == ("dw",)
    by_node = {o.node: o for o in s.node_overrides}
    assert by_node["conv1"].input_dtype == "int16" and by_node["fc"].on == "CPU"


def test_flags_override_and_no_config_gives_converter_defaults(tmp_path):
    assert settings_from_config(None).calibration_type == "default"
    s = settings_from_config(None, QuantFlags(calibration_type="kl", asymmetric=True))
    assert (s.calibration_type, s.asymmetric) == ("kl", True)
    with pytest.raises(ValueError, match="calibration type"):
        QuantFlags(calibration_type="entropy")
