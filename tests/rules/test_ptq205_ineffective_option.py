from __future__ import annotations

from ptqtui.rules import ptq205_ineffective_option as rule

from ptqtui.check.findings import Severity
from tests.check.factories import colour_classifier, config_context, mapper_config


def test_fires_on_per_channel_with_default(tmp_path):
    [finding] = rule.check(config_context(tmp_path, mapper_config(cal__per_channel=True)))
    assert "per_channel" in finding.message
    [change] = finding.remedy.config
    assert change.key == "calibration_parameters.per_channel" and change.remove
    assert change.old is True and change.line is not None


def test_fires_on_percentile_without_max_and_asymmetric(tmp_path):
    config = mapper_config(
        cal__max_percentile=0.9999, cal__optimization="asymmetric,set_model_output_int8"
    )
    findings = rule.check(config_context(tmp_path, config))
    text = " ".join(f.message for f in findings)
    assert "max_percentile" in text and "asymmetric" in text
    percentile = next(f for f in findings if f.evidence[0].what == "max_percentile")
    [change] = percentile.remedy.config
    assert (change.key, change.old, change.new) == (
        "calibration_parameters.calibration_type",
        "default",
        "max",
    )


def test_ignored_mean_is_major(tmp_path):
    config = mapper_config(input__norm_type="data_scale")
    [finding] = rule.check(config_context(tmp_path, config))
    assert finding.severity is Severity.MAJOR and "mean_value" in finding.message
    [change] = finding.remedy.config
    assert (change.old, change.new) == ("data_scale", "data_mean_and_scale")


def test_op_item_without_such_op(tmp_path):
    config = mapper_config(cal__optimization="set_LayerNormalization_input_int16")
    findings = rule.check(config_context(tmp_path, config, model=colour_classifier()))
    assert len(findings) == 1 and "LayerNormalization" in findings[0].message
    assert findings[0].remedy is None


def test_skip_calibration_is_major(tmp_path):
    config = mapper_config(cal__calibration_type="skip")
    findings = rule.check(config_context(tmp_path, config))
    assert findings[0].severity is Severity.MAJOR
    [change] = findings[0].remedy.config
    assert (change.key, change.old, change.new) == (
        "calibration_parameters.calibration_type",
        "skip",
        "default",
    )


def test_quiet_on_effective_options(tmp_path):
    config = mapper_config(
        cal__calibration_type="max",
        cal__max_percentile=0.99995,
        cal__per_channel=True,
        cal__optimization="set_Softmax_input_int8,set_Softmax_output_int8,asymmetric",
    )
    assert rule.check(config_context(tmp_path, config, model=colour_classifier())) == []


def test_quiet_on_model_output_items_with_a_model(tmp_path):
    """set_model_output_int8 names the model's outputs, not an op type called 'model'."""
    for item in ("set_model_output_int8", "set_model_output_int16"):
        config = mapper_config(cal__calibration_type="max", cal__optimization=item)
        ctx = config_context(tmp_path, config, model=colour_classifier())
        assert rule.check(ctx) == [], item
