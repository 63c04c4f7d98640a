from __future__ import annotations

import io
import json

import pytest

from ptqtui.check.commands import explain, list_rules
from ptqtui.cli_lint import lint
from ptqtui.errors import PtqInputError, UsageError
from tests.check.factories import colour_classifier, mapper_config, write_config

# Realistic configs the converter accepts: every input kind, several inputs, both node_info forms
VALID_CONFIGS = {
    "nv12_classifier.yaml": """\
model_parameters:
  onnx_model: './mobilenetv2.onnx'
  march: "bernoulli2"
  layer_out_dump: False
  working_dir: 'model_output'
  output_model_file_prefix: 'mobilenetv2_224x224_nv12'
input_parameters:
  input_name: ""
  input_type_rt: 'nv12'
  input_type_train: 'rgb'
  input_layout_train: 'NCHW'
  input_shape: ''
  norm_type: 'data_mean_and_scale'
  mean_value: 123.675 116.28 103.53
  scale_value: 0.01712 0.0175 0.01743
calibration_parameters:
  cal_data_dir: './calibration_data_rgb_f32'
  cal_data_type: 'float32'
  calibration_type: 'max'
  max_percentile: 0.99996
compiler_parameters:
  compile_mode: 'latency'
  debug: False
  core_num: 1
  optimize_level: 'O3'
""",
    "yolo_bgr_bayes_e.yaml": """\
model_parameters:
  onnx_model: 'yolov8n.onnx'
  march: "bayes-e"
  working_dir: 'bin_dir/yolov8n'
  output_model_file_prefix: 'yolov8n_640x640_nv12'
  node_info: {
    "/model.22/cv3.0/cv3.0.2/Conv": {'ON': 'BPU', 'InputType': 'int16', 'OutputType': 'int16'},
    "/model.22/cv3.1/cv3.1.2/Conv": {'ON': 'BPU', 'InputType': 'int16', 'OutputType': 'int16'},
    "/model.22/dfl/Softmax": {'ON': 'CPU'}
  }
input_parameters:
  input_name: "images"
  input_type_rt: 'nv12'
  input_space_and_range: 'regular'
  input_type_train: 'rgb'
  input_layout_train: 'NCHW'
  norm_type: 'data_scale'
  scale_value: 0.003921568627451
calibration_parameters:
  cal_data_dir: './calibration_data_rgb_f32_640'
  cal_data_type: 'float32'
  calibration_type: 'default'
  optimization: set_Softmax_input_int8,set_Softmax_output_int8
compiler_parameters:
  jobs: 16
  compile_mode: 'latency'
  debug: true
  advice: 1
  optimize_level: 'O3'
""",
    "bgr_rgb_runtime.yaml": """\
model_parameters:
  onnx_model: 'resnet18.onnx'
  march: bayes
  output_model_file_prefix: resnet18
  node_info: '/layer4/conv2/Conv:int16;/fc/Gemm:int16'
input_parameters:
  input_type_rt: bgr
  input_layout_rt: NHWC
  input_type_train: bgr
  input_layout_train: NCHW
  input_shape: 1x3x224x224
  norm_type: data_mean_and_scale
  mean_value: 103.53 116.28 123.675
  scale_value: 0.01743 0.0175 0.01712
calibration_parameters:
  cal_data_dir: ./calib_bgr
  calibration_type: kl
  per_channel: True
  run_on_cpu: '/fc/Gemm'
  optimization: set_model_output_int8
compiler_parameters:
  compile_mode: bandwidth
  optimize_level: O2
  input_source: {"data": "ddr"}
""",
    "gray_ocr.yaml": """\
model_parameters:
  onnx_model: crnn.onnx
  march: bernoulli2
  output_model_file_prefix: crnn_gray
input_parameters:
  input_type_rt: gray
  input_type_train: gray
  input_layout_train: NCHW
  input_shape: 1x1x32x320
  norm_type: data_mean_and_scale
  mean_value: 127.5
  scale_value: 0.0078125
calibration_parameters:
  cal_data_dir: ./calib_gray
  cal_data_type: uint8
  calibration_type: mix
  run_on_bpu: '/rnn/MatMul'
compiler_parameters:
  compile_mode: latency
  optimize_level: O3
  max_time_per_fc: 1000
""",
    "multi_input.yaml": """\
model_parameters:
  onnx_model: './mobilenet_multi.onnx'
  march: 'bernoulli2'
  output_model_file_prefix: 'mobilenet_multi'
input_parameters:
  input_name: 'image_b; image_g; image_r'
  input_type_rt: 'gray; gray; gray'
  input_type_train: 'gray; gray; gray'
  input_layout_train: 'NCHW; NCHW; NCHW'
  input_shape: '1x1x224x224; 1x1x224x224; 1x1x224x224'
  norm_type: 'data_mean_and_scale; data_mean_and_scale; data_mean_and_scale'
  mean_value: '103.94; 116.78; 123.68'
  scale_value: '0.017; 0.017; 0.017'
calibration_parameters:
  cal_data_dir: './calibration_data_b; ./calibration_data_g; ./calibration_data_r'
  calibration_type: 'max'
  max_percentile: 0.9999
compiler_parameters:
  compile_mode: 'latency'
  optimize_level: 'O3'
""",
    "featuremap_and_image.yaml": """\
model_parameters:
  onnx_model: fusion.onnx
  march: bayes-e
  output_model_file_prefix: fusion
  node_info: {"/head/Sigmoid": {'ON': 'CPU'}}
input_parameters:
  input_name: 'img; radar'
  input_type_rt: 'nv12; featuremap'
  input_type_train: 'yuv444; featuremap'
  input_layout_train: 'NCHW; NCHW'
  input_layout_rt: 'NHWC; NCHW'
  input_shape: '1x3x256x256; 1x64x32x32'
  norm_type: 'data_mean_and_scale; no_preprocess'
  mean_value: '128 128 128; None'
  scale_value: '0.0078125; None'
calibration_parameters:
  cal_data_dir: './cal_img; ./cal_radar_f32'
  cal_data_type: 'uint8; float32'
  calibration_type: 'max'
  per_channel: True
  optimization: asymmetric,bias_correction,set_all_nodes_int16
compiler_parameters:
  compile_mode: balance
  balance_factor: 50
  optimize_level: O3
  core_num: 1
""",
}


@pytest.mark.parametrize("name", sorted(VALID_CONFIGS))
def test_valid_configs_lint_clean(tmp_path, name):
    path = write_config(tmp_path / name, VALID_CONFIGS[name])
    out = io.StringIO()
    code = lint([str(path), "--fail-on", "minor"], out)
    assert f"\n{path}: clean\n" in out.getvalue() and code == 0
    assert "note: model" in out.getvalue()  # the model is not there: node names not checked


def test_lint_checks_node_names_when_the_model_exists(tmp_path):
    (tmp_path / "model.onnx").write_bytes(colour_classifier().SerializeToString())
    config = mapper_config(model__node_info={"/head/Softmx": {"ON": "CPU"}})
    path = write_config(tmp_path / "mapper.yaml", config)
    out = io.StringIO()
    assert lint([str(path)], out) == 0  # major is below the default --fail-on critical
    assert "PTQ203" in out.getvalue() and "/head/Softmax" in out.getvalue()
    assert lint([str(path), "--fail-on", "major"], io.StringIO()) == 1


def test_lint_many_files_json_and_bad_input(tmp_path):
    good = write_config(tmp_path / "a.yaml", mapper_config())
    bad = write_config(tmp_path / "b.yaml", mapper_config(cal__calibration_type="klx"))
    out = io.StringIO()
    assert lint([str(good), str(bad), "--report", "json", "--fail-on", "major"], out) == 1
    data = json.loads(out.getvalue())
    assert data["schema"] == "ptqtui.lint/1"
    assert [len(c["findings"]) for c in data["configs"]] == [0, 1]
    assert data["configs"][1]["findings"][0]["severity"] == "critical"
    broken = write_config(tmp_path / "c.yaml", "model_parameters: [1, 2\n")
    text = io.StringIO()
    assert lint([str(good), str(broken)], text) == 2
    assert f"{broken}: error: line 2: invalid YAML" in text.getvalue()  # the path said once
    for fmt in ("md", "html", "text"):
        text = io.StringIO()
        lint([str(bad), "--report", fmt], text)
        assert "PTQ201" in text.getvalue() and "1 critical" in text.getvalue()
        assert "klx" in text.getvalue()  # the finding as a diagnosis shows it


def test_lint_writes_its_output_atomically(tmp_path):
    bad = write_config(tmp_path / "b.yaml", mapper_config(cal__calibration_type="klx"))
    out = tmp_path / "lint.md"
    assert lint([str(bad), "--report", "md", "-o", str(out), "--fail-on", "major"]) == 1
    text = out.read_text()
    assert text.startswith("# ptqtui lint") and f"## {bad}: 1 critical" in text
    assert "### [critical] PTQ201" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.yaml", "lint.md"]
    with pytest.raises(PtqInputError, match="does not exist"):
        lint([str(bad), "-o", str(tmp_path / "no" / "lint.txt")])


def test_lint_bad_usage():
    with pytest.raises(UsageError):
        lint(["--report", "pdf", "x.yaml"])


def test_list_and_explain():
    out = io.StringIO()
    list_rules(out)
    assert "PTQ201  critical" in out.getvalue()
    out = io.StringIO()
    explain("ptq205", out)
    text = out.getvalue()
    assert text.startswith("PTQ205 ineffective-option") and "Why:" in text and "Example:" in text
    with pytest.raises(UsageError):
        explain("PTQ999", io.StringIO())


def test_cli_wiring(tmp_path, capsys):
    from ptqtui.cli import main

    good = write_config(tmp_path / "a.yaml", mapper_config())
    bad = write_config(tmp_path / "b.yaml", mapper_config(cal__calibration_type="klx"))
    assert main(["lint", str(good)]) == 0
    assert main(["lint", str(bad)]) == 1  # the converter refuses it: critical, the default
    assert main(["lint", str(tmp_path / "missing.yaml")]) == 2
    assert main(["lint"]) == 2  # usage
    capsys.readouterr()
    assert main(["rules"]) == 0 and "PTQ001" in capsys.readouterr().out
    assert main(["explain", "double-normalization"]) == 0
    assert "PTQ002" in capsys.readouterr().out
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "bad.py").write_text("RULE = 1\ndef check(ctx):\n    return []\n")
    assert main(["rules", "--rules", str(rules_dir)]) == 2
    assert "bad.py" in capsys.readouterr().err


def test_lint_json_writes_a_remedy_with_its_enums_as_values():
    import json

    from ptqtui.check.commands import LintResult
    from ptqtui.check.findings import Finding, Severity
    from ptqtui.remedy import InputChange, InputFix, NodeChange, Placement, Remedy, SettingsDelta
    from ptqtui.report.json import write_lint_json

    remedy = Remedy(
        inputs=(InputChange(InputFix.DROP_SAMPLES, "x", ("a.bin",)),),
        settings=SettingsDelta(nodes=(NodeChange("n", Placement.CPU),)),
    )
    out = io.StringIO()
    finding = Finding("PTQ999", Severity.MINOR, "m", remedy=remedy)
    write_lint_json([LintResult("x.yaml", (finding,), (), ())], out)
    data = json.loads(out.getvalue())["configs"][0]["findings"][0]
    assert data["remedy"]["inputs"][0]["fix"] == "drop-samples"
    assert data["remedy"]["settings"]["nodes"][0]["placement"] == "CPU"
