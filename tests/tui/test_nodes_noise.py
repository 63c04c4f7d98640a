"""The nodes table labels an int16 figure within the measured noise (issue 13)."""

from __future__ import annotations

from dataclasses import replace

from ptqtui.advise.properties import cosine_noise
from ptqtui.tui.screens.nodes import _int16_cell
from tests.prepared import prepared_diagnosis


def test_a_small_negative_int16_gain_is_labelled_within_noise_and_a_large_one_is_not():
    d = prepared_diagnosis()
    noise = cosine_noise(d)
    assert noise is not None and noise > 0
    n = d.analysis.nodes[0]
    assert _int16_cell(replace(n, int16_gain=-noise / 2), noise) == f"{-noise / 2:+.4f} (noise)"
    assert _int16_cell(replace(n, int16_gain=-0.016), noise) == "-0.0160"
    assert _int16_cell(replace(n, int16_gain=-0.016), None) == "-0.0160"  # noise not measured
    assert _int16_cell(replace(n, int16_gain=0.0051), noise) == "+0.0051"
