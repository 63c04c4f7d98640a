from __future__ import annotations

from ptqtui.rules import ptq201_invalid_config_value as rule

from ptqtui.check.findings import Severity
from ptqtui.remedy import ConfigEdit
from tests.check.factories import config_context, mapper_config


def test_fires_on_illegal_value_with_line_and_remedy(tmp_path):
    ctx = config_context(tmp_path, mapper_config(cal__calibration_type="klx"))
    [finding] = rule.check(ctx)
    # the converter refuses the config: no model at all, so lint fails at its default --fail-on
    assert finding.code == "PTQ201" and finding.severity is Severity.CRITICAL
    assert "klx" in finding.message and "line" in finding.evidence[0].where
    line = ctx.config.line_of("calibration_parameters.calibration_type")
    assert line is not None
    assert finding.remedy.config == (
        ConfigEdit("calibration_parameters.calibration_type", new="kl", old="klx", line=line),
    )


def test_fires_on_misspelt_and_missing_keys(tmp_path):
    config = mapper_config(cal__per_chanel=True, input__norm_type=None)
    findings = rule.check(config_context(tmp_path, config))
    messages = " ".join(f.message for f in findings)
    assert "per_chanel" in messages and "norm_type" in messages
    assert any("per_channel" in (f.fix or "") for f in findings)
    assert all(f.remedy is None for f in findings)  # a key to add or rename: no value to set


def test_a_misspelt_key_is_major_not_critical(tmp_path):
    [finding] = rule.check(config_context(tmp_path, mapper_config(cal__per_chanel=True)))
    assert finding.severity is Severity.MAJOR  # ignored by the converter, not refused


def test_deprecated_key_is_minor(tmp_path):
    [finding] = rule.check(config_context(tmp_path, mapper_config(model__log_level="info")))
    assert finding.severity is Severity.MINOR


def test_quiet_on_valid_config(tmp_path):
    assert rule.check(config_context(tmp_path, mapper_config())) == []
