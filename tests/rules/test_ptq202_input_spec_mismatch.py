from __future__ import annotations

from ptqtui.rules import ptq202_input_spec_mismatch as rule

from tests.check.factories import colour_classifier, config_context, mapper_config


def test_fires_on_wrong_shape_with_remedy(tmp_path):
    ctx = config_context(
        tmp_path, mapper_config(input__input_shape="1x3x224x224"), model=colour_classifier()
    )
    [finding] = rule.check(ctx)
    assert "1x3x224x224" in finding.message and "?x3x16x16" in finding.message
    [change] = finding.remedy.config
    assert (change.key, change.old, change.new) == (
        "input_parameters.input_shape",
        "1x3x224x224",
        "1x3x16x16",
    )
    assert change.line is not None


def test_fires_on_layout_name_and_mean_count(tmp_path):
    config = mapper_config(
        input__input_layout_train="NHWC", input__input_name="image", input__mean_value="128 128"
    )
    findings = rule.check(config_context(tmp_path, config, model=colour_classifier()))
    text = " ".join(f.message for f in findings)
    assert "input_name 'image'" in text and "closest: images" in text
    assert "mean_value has 2 values" in text
    assert "NHWC" in text
    edits = {e.key: (e.old, e.new) for f in findings if f.remedy for e in f.remedy.config}
    # the layout is guessed from the shape (the name matches no model input): no edit for it
    assert edits == {"input_parameters.input_name": ("image", "images")}


def test_layout_of_a_matched_input_is_an_edit(tmp_path):
    config = mapper_config(input__input_layout_train="NHWC")
    findings = rule.check(config_context(tmp_path, config, model=colour_classifier()))
    edits = [e for f in findings if f.remedy for e in f.remedy.config]
    layout = [e for e in edits if e.key == "input_parameters.input_layout_train"]
    assert [(e.old, e.new) for e in layout] == [("NHWC", "NCHW")]


def test_config_only_checks_without_model(tmp_path):
    config = mapper_config(input__input_type_train="gray", input__input_type_rt="gray")
    [finding] = rule.check(config_context(tmp_path, config))
    assert "needs 1 channel" in finding.message
    assert finding.remedy is None


def test_odd_size_with_nv12(tmp_path):
    config = mapper_config(input__input_shape="1x3x15x15")
    findings = rule.check(config_context(tmp_path, config))
    assert any("even" in f.message for f in findings)


def test_quiet_on_matching_config(tmp_path):
    ctx = config_context(tmp_path, mapper_config(), model=colour_classifier())
    assert rule.check(ctx) == []


def test_quiet_on_a_feature_vector_input_without_the_model(tmp_path):
    """1x16x1x1 has no image layout to guess: no finding from the shape alone."""
    from ptqtui.check.context import Context
    from ptqtui.inputs.config import load_config

    path = tmp_path / "mapper.yaml"
    path.write_text(
        "model_parameters:\n  onnx_model: absent.onnx\n  march: bernoulli2\n"
        "  output_model_file_prefix: m\n"
        "input_parameters:\n  input_type_train: featuremap\n  input_type_rt: featuremap\n"
        "  input_layout_train: NCHW\n  input_shape: 1x16x1x1\n  norm_type: no_preprocess\n"
        "calibration_parameters:\n  cal_data_dir: ./feat_f32\n  calibration_type: max\n"
        "compiler_parameters:\n  compile_mode: latency\n  optimize_level: O3\n"
    )
    ctx = Context(config=load_config(path))
    assert [f for f in rule.check(ctx) if "layout" in f.message] == []


def test_a_per_input_edit_rewrites_only_its_input_of_the_value(tmp_path):
    config = mapper_config(
        input__input_name="images;other",
        input__input_shape="1x3x224x224;1x3x16x16",
        input__input_type_train="rgb;rgb",
        input__input_type_rt="rgb;rgb",
        input__input_layout_train="NCHW;NCHW",
        input__norm_type="data_mean_and_scale;data_mean_and_scale",
    )
    findings = rule.check(config_context(tmp_path, config, model=colour_classifier()))
    [shape] = [f for f in findings if "input_shape 1x3x224x224" in f.message]
    [change] = shape.remedy.config
    assert (change.old, change.new) == ("1x3x224x224;1x3x16x16", "1x3x16x16;1x3x16x16")
