from __future__ import annotations

import numpy as np
import pytest
from ptqtui.rules import ptq005_preprocessing_drift as rule

from ptqtui.check.context import MissingFact
from ptqtui.check.findings import Severity
from tests.check.factories import make_context, natural_images, to_nchw


def _eval():
    return [(im, i % 5) for i, im in enumerate(natural_images(25, seed=9))]


def test_fires_on_scale_drift(tmp_path):
    calib = [x / 255.0 for x in to_nchw(natural_images(20), np.float32)]
    [finding] = rule.check(make_context(tmp_path, calib=calib, eval_images=_eval()))
    assert finding.remedy is None  # which of the two sets is wrong is not known: no typed cure
    assert finding.severity is Severity.MAJOR and "preprocessed differently" in finding.message


def test_fires_on_channel_order_drift(tmp_path):
    calib = to_nchw([im[:, :, ::-1] for im in natural_images(20)])
    [finding] = rule.check(make_context(tmp_path, calib=calib, eval_images=_eval()))
    assert "reversed" in finding.message and finding.related == ("PTQ001",)


def test_quiet_on_same_pipeline(tmp_path):
    assert rule.check(make_context(tmp_path, eval_images=_eval())) == []


def test_needs_eval_data(tmp_path):
    with pytest.raises(MissingFact):
        rule.check(make_context(tmp_path))
