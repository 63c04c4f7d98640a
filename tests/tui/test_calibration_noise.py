"""The Calibration tab's "within noise": only when the gain is within the noise of the
difference of the two rows (their spreads added), not within twice the larger spread."""

from __future__ import annotations

from ptqtui.analysis.results import Analysis, SweepRow
from ptqtui.tui.screens.calibration import _chosen


def _analysis(gain: float, noise: float) -> Analysis:
    chosen = SweepRow("max", (), 0.7755, noise=noise, chosen=True)
    best = SweepRow("default", (), 0.7755 + gain, noise=0.0)
    return Analysis(scheme="int8", sweep=(chosen, best))


def test_a_gain_beyond_the_noise_is_not_within_noise() -> None:
    # the case: +0.2245 with a noise of 0.12 was said to be "within noise"
    assert "within noise" not in _chosen(_analysis(0.2245, 0.12)).plain


def test_a_gain_within_the_noise_is_said_so() -> None:
    assert "within noise" in _chosen(_analysis(0.05, 0.12)).plain
