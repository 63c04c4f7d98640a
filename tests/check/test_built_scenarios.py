"""Every pipeline and data mistake, built from the test model and images (not the demo):
the full rule set names it at its severity, and no other rule says critical."""

from __future__ import annotations

import numpy as np
import pytest

from ptqtui.check.engine import run_rules
from ptqtui.check.findings import Severity
from ptqtui.check.registry import load_rules
from tests.check.factories import (
    MEAN,
    SCALE,
    colour_classifier,
    make_context,
    natural_images,
    to_nchw,
)

RULES = tuple(r for r in load_rules(entry_points=False) if r.info.category != "numerics")


def _images():
    return natural_images(40, seed=11)


def _eval():
    return [(im, i % 5) for i, im in enumerate(natural_images(20, seed=12))]


def _normalised(images):
    m = np.asarray(MEAN).reshape(1, 3, 1, 1)
    s = np.asarray(SCALE).reshape(1, 3, 1, 1)
    return [((x - m) * s).astype(np.float32) for x in to_nchw(images, np.float32)]


def _abnormal(images):
    images = list(images)
    images[3] = np.zeros_like(images[3])
    images[9] = np.full_like(images[9], 255)
    images[15] = np.clip(images[15].astype(int) * 3 + 40, 0, 255).astype(np.uint8)
    images[21] = images[2].copy()
    return images


SCENARIOS = {
    "good": ({"calib": to_nchw(_images())}, None),
    "bgr_swap": ({"calib": to_nchw([im[:, :, ::-1] for im in _images()])}, ("PTQ001", "critical")),
    "double_norm": ({"calib": _normalised(_images())}, ("PTQ002", "critical")),
    "model_normalises": (
        {"calib": to_nchw(_images()), "model": colour_classifier(own_normalisation=True)},
        ("PTQ002", "critical"),
    ),
    "skimage_range": (
        {"calib": [x / 255.0 for x in to_nchw(_images(), np.float32)]},
        ("PTQ003", "critical"),
    ),
    "tofile_dtype": (
        {"calib": to_nchw(_images(), np.float32), "cal__cal_data_type": "uint8"},
        ("PTQ101", "critical"),
    ),
    "tofile_layout": ({"calib": [im[None] for im in _images()]}, ("PTQ102", "critical")),
    "abnormal": ({"calib": to_nchw(_abnormal(_images()))}, ("PTQ103", "major")),
    "few": ({"calib": to_nchw(_images()[:5])}, ("PTQ104", "major")),
    "one_class": ({"calib": to_nchw(natural_images(40, classes=[1]))}, ("PTQ105", "major")),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_built_scenario(tmp_path, name):
    kwargs, expected = SCENARIOS[name]
    ctx = make_context(tmp_path, eval_images=_eval(), **kwargs)
    run = run_rules(ctx, RULES)
    failed = [f.message for f in run.findings if " failed: " in f.message]
    assert not failed, failed
    found = {f.code: f.severity for f in run.findings}
    if expected is None:
        assert all(not f.severity.at_least(Severity.MAJOR) for f in run.findings), run.findings
        return
    code, severity = expected
    assert code in found, run.findings
    assert found[code].at_least(Severity(severity))
    others = [f for f in run.findings if f.code != code and f.severity is Severity.CRITICAL]
    assert not others, others
