"""Every screen at 80x24 and 120x40, over the prepared Diagnosis with its sweep remedies (no
clocks, relative paths).

Update after reading the diff: `pytest tests/tui/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import pytest

from ptqtui.tui.app import make_viewer
from tests.tui.conftest import bare_diagnosis, whatif_diagnosis

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
SCREENS = [
    pytest.param(["1"], id="summary"),
    pytest.param(["2", "down"], id="findings"),
    pytest.param(["3"], id="nodes"),
    pytest.param(["3", "enter"], id="node-detail"),
    pytest.param(["4"], id="calibration"),
    pytest.param(["5"], id="plan"),
    pytest.param(["6"], id="log"),
]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("press", SCREENS)
def test_screen(snap_compare, press, size):
    app = make_viewer(whatif_diagnosis(bias_row=False))
    assert snap_compare(app, press=press, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_plan_after_a_toggle(snap_compare, size):
    async def toggle(pilot):
        await pilot.press("5")
        pilot.app.query_one("#whatif-nodes").focus()
        await pilot.pause()
        await pilot.press("i")
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()  # the tab underline slides to Plan

    app = make_viewer(whatif_diagnosis(bias_row=False))
    assert snap_compare(app, run_before=toggle, terminal_size=size)


def test_summary_without_simulator_results(snap_compare):
    assert snap_compare(make_viewer(bare_diagnosis()), terminal_size=(80, 24))
