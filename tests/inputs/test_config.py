"""The hb_mapper YAML parser on realistic configs and on the mistakes users make."""

from __future__ import annotations

from pathlib import Path

import pytest

from ptqtui.errors import PtqInputError
from ptqtui.inputs.config import load_config

CONFIGS = Path(__file__).parent / "configs"


def write(tmp_path: Path, text: str, name: str = "mapper.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_single_nv12_input_trained_on_rgb():
    config = load_config(CONFIGS / "nv12_from_rgb.yaml")
    assert config.problems == ()
    assert config.generation == "makertbin"
    [spec] = config.inputs
    assert (spec.type_train, spec.type_rt, spec.layout_train) == ("rgb", "nv12", "NCHW")
    assert spec.shape == (1, 3, 224, 224)
    assert spec.norm_type == "data_mean_and_scale"
    assert spec.mean == (123.675, 116.28, 103.53)
    assert spec.scale == (0.01712, 0.0175, 0.01743)
    # paths are relative to the YAML's directory, as the converter reads them
    assert spec.cal_data_dir == CONFIGS / "calibration_data_rgb_f32"
    assert config.model_path == CONFIGS / "mobilenet_v2.onnx"
    assert spec.cal_dtype == "float32" and not spec.cal_dtype_conflict
    assert config.lines["calibration_parameters.calibration_type"] == 22
    assert config.get("calibration_parameters.calibration_type") == "default"


def test_featuremap_with_node_info_dict_and_run_on_cpu():
    config = load_config(CONFIGS / "featuremap_int16.yaml")
    assert config.problems == ()
    [spec] = config.inputs
    assert spec.type_train == "featuremap" and spec.norm_type == "no_preprocess"
    assert spec.mean is None and spec.scale is None
    nodes = {s.node: s for s in config.node_settings}
    conv = nodes["backbone/conv1/Conv"]
    assert (conv.on, conv.input_type, conv.output_type) == ("BPU", "int16", "int16")
    assert conv.line == 9
    assert nodes["head/cls/Conv"].input_types == ((0, "int16"),)
    cpu = nodes["head/Softmax_out"]
    assert (cpu.on, cpu.source) == ("CPU", "run_on_cpu")
    assert config.optimization == ("set_model_output_int8",)
    assert config.get("calibration_parameters.max_percentile") == 0.99995
    assert config.get("calibration_parameters.per_channel") is True


def test_three_inputs_with_semicolon_lists_and_node_info_string():
    config = load_config(CONFIGS / "three_inputs.yaml")
    assert config.problems == ()
    image, depth, feat = config.inputs
    assert [s.name for s in config.inputs] == ["image", "depth", "feat"]
    assert (image.type_rt, image.type_train) == ("nv12", "bgr")
    assert image.mean == (103.53, 116.28, 123.675) and image.scale == (0.017,) * 3
    assert depth.mean is None and depth.scale == (0.0039,)
    assert depth.shape == (1, 1, 128, 128) and feat.shape == (1, 16, 1, 1)
    assert feat.norm_type == "no_preprocess"
    # dtype from the directory suffix when cal_data_type is absent
    assert (image.cal_dtype, feat.cal_dtype) == ("uint8", "float32")
    assert [s.cal_data_dir.name for s in config.inputs] == ["image", "depth", "feat_f32"]
    assert {s.node: s.input_type for s in config.node_settings} == {
        "fuse/Add": "int16",
        "head/Conv": "int16",
    }
    assert config.optimization == ("set_Softmax_input_int8", "set_Softmax_output_int8")


def _swap(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


def test_illegal_enum_value_is_a_problem_with_its_line(tmp_path):
    text = (CONFIGS / "nv12_from_rgb.yaml").read_text()
    path = write(tmp_path, _swap(text, "calibration_type: 'default'", "calibration_type: 'klx'"))
    config = load_config(path)
    [problem] = config.problems
    assert problem.kind == "value" and problem.line == 22
    assert problem.message == (
        "calibration_type 'klx' is not one of default, mix, kl, max, load, skip"
    )
    assert problem.suggestion == "kl"


def test_unknown_key_and_wrong_type_and_missing_key(tmp_path):
    text = (CONFIGS / "nv12_from_rgb.yaml").read_text()
    text = _swap(text, "calibration_type: 'default'", "calibration_typ: 'max'\n  per_channel: 3")
    text = _swap(text, '  march: "bernoulli2"\n', "")
    config = load_config(write(tmp_path, text))
    kinds = {p.kind: p for p in config.problems}
    assert kinds["unknown-key"].suggestion == "calibration_type"
    assert kinds["unknown-key"].line == 21  # one line up: march was removed above it
    assert kinds["type"].key == "calibration_parameters.per_channel"
    assert "march" in kinds["missing-key"].message


def test_cal_data_type_disagreeing_with_the_dir_suffix_is_recorded(tmp_path):
    text = (CONFIGS / "nv12_from_rgb.yaml").read_text()
    text = _swap(text, "cal_data_type: 'float32'", "cal_data_type: 'uint8'")
    [spec] = load_config(write(tmp_path, text)).inputs
    assert spec.cal_dtype == "uint8" and spec.cal_dtype_conflict


def test_mean_value_count_must_match_inputs(tmp_path):
    text = (CONFIGS / "three_inputs.yaml").read_text()
    text = _swap(text, "mean_value: '103.53 116.28 123.675;;'", "mean_value: '103.53 116.28'")
    config = load_config(write(tmp_path, text))
    assert config.problems, "a mean_value list that does not match the inputs is a problem"
    assert all(p.line is not None for p in config.problems)


def test_hb_compile_generation_is_recognised(tmp_path):
    path = write(
        tmp_path,
        "model_parameters:\n  onnx_model: m.onnx\n  march: nash-e\n"
        "  output_model_file_prefix: m\n"
        "input_parameters:\n  input_type_train: rgb\n  input_type_rt: nv12\n"
        "  input_layout_train: NCHW\n  norm_type: data_scale\n  scale_value: 0.0039\n"
        "calibration_parameters:\n  cal_data_dir: c\n  quant_config: q.json\n",
    )
    config = load_config(path)
    assert (
        config.generation == "hb_compile"
    )  # read with its own schema (tests/inputs/test_hb_compile.py)
    [problem] = config.problems_of("value")  # the quant_config file q.json does not exist
    assert problem.key == "calibration_parameters.quant_config" and "q.json" in problem.message


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("model_parameters: [1, 2\n", "line"),
        ("- just\n- a list\n", "top level is a list"),
        ("\x00\x01binary", ""),
    ],
)
def test_unreadable_yaml_raises_one_clean_error(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(PtqInputError) as err:
        load_config(path)
    line = str(err.value)
    assert "\n" not in line and "mapper.yaml" in line and fragment in line


def test_missing_config_file(tmp_path):
    with pytest.raises(PtqInputError, match=r"nope\.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_yaml_text_helpers_serve_the_reader_and_the_patcher():
    import yaml as pyyaml

    from ptqtui.errors import PtqInputError
    from ptqtui.inputs import yamltext

    assert yamltext.parse_node_string(" a/Conv:int16; b:int8 ;") == [
        ("a/Conv", "int16"),
        ("b", "int8"),
    ]
    assert yamltext.node_item("int16") == ("", "int16")  # no 'name:': the reader reports it
    root = yamltext.compose("model_parameters:\n  node_info:\n")
    assert isinstance(root, pyyaml.MappingNode)
    group = root.value[0][1]
    assert yamltext.is_null(group.value[0][1]) and not yamltext.is_null(group.value[0][0])
    with pytest.raises(PtqInputError) as err:
        yamltext.compose("a: 1\n  b: [\n", "/some/dir/mapper.yaml")
    assert err.value.path == "mapper.yaml" and err.value.line == 2
