"""Plots and thumbnails: opened from Nodes, Calibration and Findings, keyboard only; each
widget as a snapshot at 80x24 and 120x40 over the prepared Diagnosis.

Update after reading the diff: `pytest tests/tui/test_plots.py --snapshot-update`.
"""

from __future__ import annotations

import pytest

from ptqtui.tui.app import make_viewer
from ptqtui.tui.screens.plots import NodePlotScreen, PlotKind, PlotScreen, SamplesScreen
from ptqtui.tui.widgets.images import HalfBlockImage
from ptqtui.tui.widgets.plots import (
    ActivationHistogram,
    ErrorCurve,
    SensitivityRanking,
    WeightRanges,
    histogram_legend,
    ranked_nodes,
    weights_legend,
)
from tests.prepared import prepared_with_pictures

SIZE = (80, 24)
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


def _viewer():
    return make_viewer(prepared_with_pictures())


def _finding_row(app, code: str) -> int:
    view = app.query_one("FindingsView")
    return next(i for i, f in enumerate(view.findings) if f.code == code)


async def _to_finding(pilot, code: str) -> None:
    await pilot.press("2")
    for _ in range(_finding_row(pilot.app, code)):
        await pilot.press("down")


async def test_nodes_h_and_w_open_the_current_nodes_plots_and_arrows_walk_the_list():
    app = _viewer()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "down", "h")
        screen = app.screen
        assert isinstance(screen, NodePlotScreen) and screen.kind is PlotKind.HISTOGRAM
        assert screen.nodes[screen.index].name == "block1/dw/Conv"
        assert isinstance(screen.query_one("#node-plot"), ActivationHistogram)
        await pilot.press("right")
        assert screen.nodes[screen.index].name == "block1/pw/Conv"
        await pilot.press("w")
        assert isinstance(screen.query_one("#node-plot"), WeightRanges)
        assert "block1/pw/Conv" in str(screen.query_one("#plot-title").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, PlotScreen)
        await pilot.press("g")
        assert isinstance(app.screen.query_one("#sensitivity-plot"), SensitivityRanking)


async def test_calibration_opens_the_longest_tail_first_and_the_curve():
    app = _viewer()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4", "h")
        screen = app.screen
        assert isinstance(screen, NodePlotScreen)
        first = screen.nodes[0]
        tails = [max(abs(n.act_min), abs(n.act_max)) / n.act_p9999 for n in screen.nodes]
        assert tails == sorted(tails, reverse=True) and first.histogram
        await pilot.press("escape", "c")
        assert isinstance(app.screen.query_one("#curve-plot"), ErrorCurve)


async def test_a_long_tail_finding_shows_its_nodes_histogram():
    app = _viewer()
    async with app.run_test(size=SIZE) as pilot:
        await _to_finding(pilot, "PTQ302")
        await pilot.press("p")
        screen = app.screen
        assert isinstance(screen, NodePlotScreen) and screen.kind is PlotKind.HISTOGRAM
        assert [n.name for n in screen.nodes] == ["block1/Add"]


async def test_a_per_channel_finding_shows_weight_ranges():
    app = _viewer()
    async with app.run_test(size=SIZE) as pilot:
        await _to_finding(pilot, "PTQ301")
        await pilot.press("p")
        screen = app.screen
        assert isinstance(screen, NodePlotScreen) and screen.kind is PlotKind.WEIGHTS
        assert screen.nodes[0].name == "block1/dw/Conv"


async def test_sample_findings_show_their_thumbnails():
    app = _viewer()
    async with app.run_test(size=SIZE) as pilot:
        await _to_finding(pilot, "PTQ001")
        await pilot.press("p")
        screen = app.screen
        assert isinstance(screen, SamplesScreen)
        assert [t.view for t in screen.thumbnails] == ["as given", "swap channels"]
        assert len(screen.query(HalfBlockImage)) == 2
        await pilot.press("escape")
        await _to_finding(pilot, "PTQ103")
        await pilot.press("p")
        assert [t.sample for t in app.screen.thumbnails] == ["0017.bin", "0018.bin"]


async def test_a_finding_without_a_picture_says_so():
    app = _viewer()
    async with app.run_test(size=SIZE) as pilot:
        await _to_finding(pilot, "PTQ104")
        await pilot.press("p")
        assert not isinstance(app.screen, PlotScreen | SamplesScreen)


def test_legends_say_what_the_picture_shows():
    d = prepared_with_pictures()
    add = next(n for n in d.analysis.nodes if n.name == "block1/Add")
    legend = histogram_legend(add).plain
    assert "kl" in legend and "p99.99%" in legend and "in use" in legend
    dw = next(n for n in d.analysis.nodes if n.name == "block1/dw/Conv")
    assert "30 of 32 channels use fewer than 16 of 127 levels" in weights_legend(dw).plain
    assert ranked_nodes(d.analysis.nodes)[0].name == "head/Gemm"


# ---------------------------------------------------------------- snapshots
PLOTS = [
    pytest.param(["3", "down", "down", "down", "h"], id="histogram"),
    pytest.param(["3", "down", "w"], id="weights"),
    pytest.param(["4", "c"], id="curve"),
    pytest.param(["3", "g"], id="sensitivity"),
]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("press", PLOTS)
def test_plot_snapshot(snap_compare, press, size):
    assert snap_compare(_viewer(), press=press, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_thumbnails_snapshot(snap_compare, size):
    async def open_samples(pilot):
        await _to_finding(pilot, "PTQ001")
        await pilot.press("p")
        await pilot.wait_for_scheduled_animations()

    assert snap_compare(_viewer(), run_before=open_samples, terminal_size=size)
