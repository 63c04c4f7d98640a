"""Progress on stderr: Rich bars on a terminal, one plain line per stage otherwise."""

from __future__ import annotations

import io

from ptqtui.progress import Progress
from ptqtui.report.progress import StderrProgress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    with StderrProgress(out) as show:
        show(Progress("calibration", 0, 100, "observing activations"))
        show(Progress("calibration", 50, 100))
        show(Progress("sensitivity", 0, 408))
    assert out.getvalue().splitlines() == [
        "ptqtui: calibration, 100 steps (observing activations) ...",
        "ptqtui: sensitivity, 408 steps ...",
    ]


def test_bars_on_a_terminal_survive_text_that_looks_like_markup():
    out = Tty()
    with StderrProgress(out) as show:
        show(Progress("rules", 0, 3, "[/data/calib] [b]"))
        show(Progress("rules", 3, 3, "[/x]"))
        show(Progress("plan [max p=0.99995]", 1, None))
    text = out.getvalue()
    assert "rules done in" in text and "\x1b[" in text


def test_quiet_says_nothing():
    out = Tty()
    with StderrProgress(out, quiet=True) as show:
        show(Progress("rules", 0, 3))
    assert out.getvalue() == ""


def test_the_bar_shows_the_percent_done():
    out = Tty()
    with StderrProgress(out) as show:
        show(Progress("sensitivity", 0, 4))
        show(Progress("sensitivity", 1, 4, "conv1"))
        assert show._bars is not None
        show._bars.refresh()
    assert "25%" in out.getvalue()


def test_one_bar_the_running_stage_and_its_time_left():
    out = Tty()
    with StderrProgress(out) as show:
        show(Progress("calibration", 0, None))
        show(Progress("node table", 8, 8))
        show(Progress("sensitivity", 0, 4))
        show(Progress("sensitivity", 2, 4, "conv1"))
        assert show._bars is not None
        assert [t.description for t in show._bars.tasks] == ["sensitivity: conv1"]
        show._bars.refresh()
    text = out.getvalue()
    assert "calibration done in" in text and "node table done in" in text
    assert "50%" in text and "eta" in text
