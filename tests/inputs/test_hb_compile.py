"""hb_compile (OE 3.x, march nash-*) configs: read with their schema, quant_config typed,
linted by the config rules, simulated through QuantSettings."""

from __future__ import annotations

from pathlib import Path

import pytest

from ptqtui.check.commands import lint_config
from ptqtui.check.findings import Severity
from ptqtui.check.registry import load_rules
from ptqtui.inputs.config import load_config
from ptqtui.inputs.hb_compile import QuantConfigError, read_quant_config
from ptqtui.inputs.model import load_model
from ptqtui.quant.settings import settings_from_config

CONFIGS = Path(__file__).resolve().parents[1] / "fixtures" / "hb_compile"
PUBLIC_STYLE = (
    "ocr_det_nashe.yaml",
    "ocr_rec_int16_nashe.yaml",
    "detector_search_nashm.yaml",
    "encoder_int16_nashp.yaml",
    "classifier_json_nashe.yaml",
)


def _config_rules():
    return tuple(r for r in load_rules(entry_points=False) if r.info.category == "config")


@pytest.mark.parametrize("name", PUBLIC_STYLE)
def test_public_style_configs_lint_without_a_major(name):
    result = lint_config(CONFIGS / name, _config_rules())
    assert result.error is None
    majors = [f for f in result.findings if f.severity.at_least(Severity.MAJOR)]
    assert majors == [], [f.message for f in majors]


def test_genuine_mistakes_are_found():
    result = lint_config(CONFIGS / "mistakes_nashe.yaml", _config_rules())
    messages = " | ".join(f.message for f in result.findings if f.code == "PTQ201")
    assert "klx" in messages and "'O3' is not one of O0, O1, O2" in messages
    assert "scale_value and std_value are mutually exclusive" in messages


def test_newer_style_inputs_std_and_derived_norm_type():
    config = load_config(CONFIGS / "detector_search_nashm.yaml")
    assert config.generation == "hb_compile" and config.march == "nash-m"
    [spec] = config.inputs
    assert spec.norm_type == "data_mean_and_scale"
    assert spec.mean == (123.675, 116.28, 103.53)
    assert spec.scale == pytest.approx((1 / 58.395, 1 / 57.12, 1 / 57.375))
    qc = config.quant_config
    assert qc is not None and qc.searched and qc.source == "inline"
    assert qc.node_qtypes == (("/head/cls/Sigmoid", "int16"),)
    settings = settings_from_config(config)
    assert settings.calibration_type == "default"  # the converter's search, as ours
    [override] = settings.node_overrides
    assert (override.node, override.input_dtype) == ("/head/cls/Sigmoid", "int16")


def test_quant_config_json_file_into_settings_with_op_config_resolved_on_the_model():
    config = load_config(CONFIGS / "classifier_json_nashe.yaml")
    qc = config.quant_config
    assert qc is not None and qc.source.endswith("quant_config.json")
    assert qc.calibration_types == ("kl",) and qc.per_channel == (True,) and qc.bias_correction
    assert qc.unsupported == (("op_config.Conv.qtype", "qtype 'dual-int16' is not simulated"),)
    graph = load_model(config.model_path)
    s = settings_from_config(config, graph=graph)
    assert (s.calibration_type, s.per_channel, s.bias_correction) == ("kl", True, True)
    overrides = {o.node: (o.on, o.input_dtype) for o in s.node_overrides}
    assert overrides == {
        "/head/fc/Gemm": ("CPU", None),  # float16: simulated as float
        "/b4/pw/conv/Conv": ("BPU", "int16"),
        "/head/softmax/Softmax": ("BPU", "int16"),  # op_config Softmax, found in the model
    }


def test_all_node_type_int16():
    s = settings_from_config(load_config(CONFIGS / "encoder_int16_nashp.yaml"))
    assert s.set_all_nodes_int16 and s.calibration_type == "max"


def test_an_unreadable_quant_config_is_a_value_problem(tmp_path):
    with pytest.raises(QuantConfigError, match="does not exist"):
        read_quant_config("nope.json", tmp_path / "c.yaml")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(QuantConfigError, match="not JSON"):
        read_quant_config("bad.json", tmp_path / "c.yaml")
    with pytest.raises(QuantConfigError, match="mapping"):
        read_quant_config(3, tmp_path / "c.yaml")
