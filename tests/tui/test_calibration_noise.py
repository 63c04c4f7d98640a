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


def test_the_sweep_shows_the_task_agreement_with_its_interval() -> None:
    from ptqtui.tui.screens.calibration import _agree_cell, _agree_header
    from ptqtui.tui.widgets.text import pct_interval

    kw = dict(metric="string agreement", samples=100)
    rows = (
        SweepRow("max", (), 0.9956, agreement=0.47, agreement_low=0.375, agreement_high=0.567,
                 chosen=True, **kw),
        SweepRow("kl", (), 0.9900, agreement=0.23, agreement_low=0.158, agreement_high=0.322,
                 **kw),
    )  # fmt: skip
    a = Analysis(scheme="int8", sweep=rows)
    chosen = _chosen(a).plain
    assert "string agreement 47 (38-57) % on 100 samples" in chosen
    assert "( ) = 95 % interval" in chosen
    assert _agree_header("string agreement") == "string agree %"
    assert [_agree_cell(r, 100) for r in rows] == ["47 (38-57)", "23 (16-32)"]
    assert "n = samples" not in chosen  # every row on all 100
    # narrow intervals keep a decimal; no interval, the plain percentage
    assert pct_interval(0.996, 0.995, 0.997) == "99.6 (99.5-99.7) %"
    assert pct_interval(0.5, None, None) == "50.0 %"


def test_a_sweep_row_stopped_early_says_on_how_many_samples() -> None:
    from ptqtui.tui.screens.calibration import _agree_cell

    kw = dict(metric="top-1 agreement")
    rows = (
        SweepRow("max", (), 0.9956, agreement=0.9, agreement_low=0.83, agreement_high=0.94,
                 chosen=True, samples=100, **kw),
        SweepRow("kl", (), 0.9950, agreement=0.6, agreement_low=0.41, agreement_high=0.77,
                 samples=25, **kw),
    )  # fmt: skip
    a = Analysis(scheme="int8", sweep=rows)
    assert [_agree_cell(r, 100) for r in rows] == ["90 (83-94)", "60 (41-77) n=25"]
    assert "n = samples where a row stopped early" in _chosen(a).plain
