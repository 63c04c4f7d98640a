"""A measured difference is labelled within noise only when it is."""

from __future__ import annotations

import math

from ptqtui.quant.noise import signed_label, within_noise


def test_within_noise_only_inside_a_measured_noise():
    assert within_noise(-0.016, 0.02) and within_noise(0.0003, 0.0006)
    assert not within_noise(-0.016, 0.005)
    assert not within_noise(-0.016, None) and not within_noise(-0.016, math.nan)
    assert not within_noise(0.0, 0.0)  # no noise measured: nothing is within it


def test_the_label():
    assert signed_label(-0.016, 0.02) == "-0.0160 (within noise)"
    assert signed_label(-0.016, 0.001) == "-0.0160"
