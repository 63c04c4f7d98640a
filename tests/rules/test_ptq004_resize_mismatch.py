from __future__ import annotations

import cv2
import numpy as np
import pytest
from ptqtui.rules import ptq004_resize_mismatch as rule

from ptqtui.check.context import MissingFact
from ptqtui.check.findings import Severity
from tests.check.factories import make_context, natural_images


def _raw_and_bins(interpolation):
    raws = natural_images(6, seed=3, size=64)
    bins = [
        cv2.resize(im, (16, 16), interpolation=interpolation).transpose(2, 0, 1)[None]
        for im in raws
    ]
    return {f"s{i:03d}": im for i, im in enumerate(raws)}, [np.ascontiguousarray(b) for b in bins]


def test_fires_when_files_were_made_with_nearest(tmp_path):
    raws, bins = _raw_and_bins(cv2.INTER_NEAREST)
    [finding] = rule.check(make_context(tmp_path, calib=bins, raw_images=raws))
    assert finding.remedy is None  # the script that wrote the files resized: no typed cure
    assert "nearest" in finding.message and finding.evidence[0].expected == "linear"
    assert finding.severity in (Severity.MINOR, Severity.MAJOR)


def test_quiet_when_files_were_made_with_linear(tmp_path):
    raws, bins = _raw_and_bins(cv2.INTER_LINEAR)
    assert rule.check(make_context(tmp_path, calib=bins, raw_images=raws)) == []


def test_needs_raw_dir(tmp_path):
    with pytest.raises(MissingFact, match="raw-dir"):
        rule.check(make_context(tmp_path))
