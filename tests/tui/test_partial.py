"""Results as they come: prepared partial Diagnoses (no onnxruntime) fill the screens in."""

from __future__ import annotations

import dataclasses
import threading

from textual.widgets import DataTable, Select, TabbedContent

from ptqtui.analysis.results import AnalysisStage
from ptqtui.diagnosis import Partial
from ptqtui.progress import Cancelled, Progress
from ptqtui.request import Request
from ptqtui.tui.app import make_app
from ptqtui.tui.widgets.pending import PendingLine, StageClock, describe
from tests.tui.conftest import Run, whatif_diagnosis

SIZE = (100, 30)
STAGES = tuple(AnalysisStage)


def early_and_half():
    """The prepared Diagnosis as a run hands it on: first the summary and the findings of the
    rules that need no simulation, then with the node table and sensitivity done."""
    d = whatif_diagnosis(bias_row=False)
    early = dataclasses.replace(d, analysis=None, plan=None, findings=d.findings[:2])
    a = d.analysis
    half = dataclasses.replace(a, curve=(), sweep=(), pending=STAGES[4:])
    return d, Partial(early, STAGES), Partial(dataclasses.replace(early, analysis=half), STAGES[4:])


class Stepper:
    """A diagnose that hands on its partial results one step at a time, when the test says."""

    def __init__(self, *, finish: bool = True, first: int = 0, second: int | None = 21) -> None:
        self.final, self.early, self.half = early_and_half()
        self.go = threading.Event()
        self.at = threading.Event()
        self.finish = finish
        self.reports = (first, second)  # sensitivity's progress, of 50, before each step

    def step(self) -> None:
        self.at.clear()
        self.go.set()

    def __call__(self, request, rules=(), *, progress=None, cancel=None, on_partial=None):
        def wait() -> None:
            self.at.set()
            while not self.go.wait(0.05):
                if cancel.is_set():
                    raise Cancelled()
            self.go.clear()

        first, second = self.reports
        on_partial(self.early)
        progress(Progress("sensitivity", first, 50))
        wait()
        if second is not None:
            progress(Progress("sensitivity", second, 50))
        wait()
        on_partial(self.half)
        wait()
        if not self.finish:
            cancel.wait(10)
            raise Cancelled()
        return Run(self.final, None)


def lines(app) -> list[str]:
    return [str(line.render()) for line in app.query(PendingLine)]


async def settle(pilot, stepper: Stepper) -> None:
    """Wait (without blocking the app's loop, which starts the worker) for the next step."""
    await until(pilot, stepper.at.is_set)
    await pilot.pause(0.1)


async def until(pilot, predicate, seconds: float = 30.0) -> None:
    """Wait for the app to show what the predicate looks for (the UI catches up)."""
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    assert predicate()


def node_rows(app) -> int:
    tables = app.query("#nodes-table")
    return len(tables.first(DataTable).rows) if tables else 0


async def test_the_screens_fill_in_as_the_stages_finish():
    stepper = Stepper()
    app = make_app(Request(title="demo: bgr_swap"), diagnose=stepper)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, stepper)
        await until(pilot, lambda: bool(app.query("#findings-view")))  # with the first results
        assert app.diagnosis is None
        assert "Findings (2+)" in str(app.query_one(TabbedContent).get_tab("findings").label)
        assert app.query_one("#summary-view") and app.query_one("#findings-view")
        await pilot.press("3")
        assert not app.query("#nodes-view")  # no node table yet, only what is pending
        await until(pilot, lambda: "sensitivity: measuring... 0 %" in lines(app))
        assert "node table: waiting" in lines(app)

        stepper.step()
        await settle(pilot, stepper)
        await until(
            pilot, lambda: any(x.startswith("sensitivity: measuring... 42 %") for x in lines(app))
        )

        stepper.step()
        await settle(pilot, stepper)
        assert app.query_one(TabbedContent).active == "nodes"  # the user's tab stays
        await until(pilot, lambda: node_rows(app) > 0)
        assert not any(line.startswith(("node table", "sensitivity")) for line in lines(app))
        await pilot.press("4")
        assert {"accumulated error: waiting", "method sweep: waiting"} <= set(lines(app))
        assert "plan: waiting" in lines(app)  # on the plan tab too (all panes are composed)

        stepper.step()
        await app.workers.wait_for_complete()
        await until(pilot, lambda: bool(app.query("#plan-view")))
        assert app.diagnosis is stepper.final and lines(app) == []
        assert app.query_one(TabbedContent).active == "calibration"
        assert app.query_one("#sweep-table", DataTable).rows
        label = str(app.query_one(TabbedContent).get_tab("findings").label)
        assert f"Findings ({len(stepper.final.findings)})" in label
        await pilot.press("q")
    assert app.return_value is stepper.final


async def test_q_while_results_come_cancels_cleanly():
    stepper = Stepper(finish=False)
    app = make_app(Request(title="demo: bgr_swap"), diagnose=stepper)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, stepper)
        stepper.step()
        await settle(pilot, stepper)
        stepper.step()
        await settle(pilot, stepper)
        await pilot.press("q")
        await app.workers.wait_for_complete()
    assert app.return_code == 130 and app.return_value is None
    assert not any(w.is_running for w in app.workers)


async def test_a_diagnose_without_partial_results_still_opens_the_screens_at_the_end():
    final = whatif_diagnosis()

    def plain(request, rules=(), *, progress=None, cancel=None):
        return final

    app = make_app(Request(), diagnose=plain)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await until(pilot, lambda: bool(app.query("#plan-view")))
        assert app.diagnosis is final and lines(app) == []
        # let the screens just mounted finish (a Select mounts its overlay a message later):
        # leaving before that ended once in textual's NoMatches at shutdown in a full run
        await until(pilot, lambda: all(s.query("SelectOverlay") for s in app.query(Select)))


def test_the_time_left_is_the_rate_so_far():
    clock = StageClock(Progress("sensitivity", 25, 100), at=20.0, started=10.0)
    assert clock.percent() == 25 and clock.left() == 30.0
    assert str(describe("sensitivity", clock)) == "sensitivity: measuring... 25 %, ~30 s left"
    early = StageClock(Progress("sensitivity", 1, 100), at=10.2, started=10.0)
    assert early.left() is None  # too soon to say
    unknown = StageClock(Progress("planning", 3, None), at=20.0, started=10.0)
    assert unknown.percent() is None and str(describe("plan", unknown)) == "plan: measuring..."
    assert str(describe("plan", None)) == "plan: waiting"


def test_half_filled_nodes_screen(snap_compare):
    """The Nodes screen with its table and the sensitivity still being measured."""
    stepper = Stepper(finish=False, first=21, second=None)  # one report: no clock in the picture
    half = early_and_half()[2]
    node_rows = tuple(
        dataclasses.replace(
            r,
            sensitivity_cosine=None,
            sensitivity_weights=None,
            sensitivity_activations=None,
            int16_gain=None,
        )
        for r in half.diagnosis.analysis.nodes
    )
    analysis = dataclasses.replace(half.diagnosis.analysis, nodes=node_rows, pending=STAGES[3:])
    stepper.half = Partial(dataclasses.replace(half.diagnosis, analysis=analysis), STAGES[3:])

    async def half_way(pilot):
        await settle(pilot, stepper)
        stepper.step()
        await settle(pilot, stepper)
        stepper.step()
        await settle(pilot, stepper)
        await pilot.press("3")
        await pilot.pause(0.1)
        await pilot.wait_for_scheduled_animations()  # the tab underline slides to Nodes

    app = make_app(Request(title="demo: bgr_swap"), diagnose=stepper)
    assert snap_compare(app, run_before=half_way, terminal_size=(80, 24))
