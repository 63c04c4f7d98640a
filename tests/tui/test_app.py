"""Pilot tests of the main flows over the prepared Diagnosis."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading

from rich.console import Console
from textual.widgets import DataTable, Input, Select, Static, TabbedContent

from ptqtui.diagnosis import Diagnosis
from ptqtui.progress import Cancelled, Progress
from ptqtui.request import Request
from ptqtui.tui.app import TABS, make_app, make_viewer
from ptqtui.tui.screens.dialogs import ErrorDialog, ExplainDialog, ExportDialog, SaveDialog
from ptqtui.tui.screens.nodes import NodeDetailScreen, NodesView
from tests.tui.conftest import bare_diagnosis, clean_diagnosis, whatif_diagnosis

SIZE = (100, 30)


def text_of(app, selector: str) -> str:
    """The plain text a Static shows (rich renderables rendered at 100 columns)."""
    content = app.screen.query_one(selector, Static).content
    if isinstance(content, str):
        return content
    console = Console(width=100, color_system=None, file=io.StringIO())
    with console.capture() as capture:
        console.print(content)
    return capture.get()


def rows(app, selector: str = "#nodes-table") -> list[str]:
    table = app.query_one(selector, DataTable)
    return [str(k.value) for k in table.rows]


async def ready(app, pilot) -> None:
    await app.workers.wait_for_complete()
    for _ in range(100):  # the tabs mount over a few frames: more of them on a loaded machine
        await pilot.pause()
        tabs = app.query(TabbedContent)
        if tabs and tabs.first().active:
            break


async def error_dialog(app, pilot) -> None:
    """Wait for the error dialog the failed worker's state change opens (a message later)."""
    await app.workers.wait_for_complete()
    for _ in range(200):
        await pilot.pause(0.02)
        if isinstance(app.screen, ErrorDialog):
            return
    raise AssertionError(f"no error dialog; the screen is {app.screen!r}")


async def measured(app, pilot, whatif, count: int) -> None:
    """Wait until the service was asked `count` times and the screen shows the result (the
    what-if's worker starts from a message: it may not run yet when the pilot returns)."""
    for _ in range(200):
        await app.workers.wait_for_complete()
        await pilot.pause(0.02)
        if len(whatif.asked) >= count and "measuring" not in text_of(app, "#whatif-result"):
            return
    raise AssertionError(f"asked {len(whatif.asked)} times, expected {count}")


async def test_opens_on_the_summary_once_the_diagnosis_is_ready(live_app):
    async with live_app.run_test(size=SIZE) as pilot:
        await ready(live_app, pilot)
        assert live_app.query_one(TabbedContent).active == "summary"
        assert "loss large 9.4 pts" in text_of(live_app, "#title-bar")
        assert "Feed RGB calibration data" in text_of(live_app, "#summary-next")


async def test_number_keys_visit_every_screen_and_every_binding_has_a_description(live_app):
    async with live_app.run_test(size=SIZE) as pilot:
        await ready(live_app, pilot)
        for key, (tab, _) in zip("123456", TABS, strict=True):
            await pilot.press(key)
            assert live_app.query_one(TabbedContent).active == tab
            assert live_app.focused is not None
            assert live_app.query_one(f"#{tab}-view") in live_app.focused.ancestors_with_self
            for binding in live_app.active_bindings.values():
                assert binding.binding.description, binding


async def test_a_finding_shows_its_detail_and_jumps_to_its_nodes(viewer):
    async with viewer.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        assert "Evidence" in text_of(viewer, "#finding-text")
        await pilot.press("down")
        assert "PTQ301" in text_of(viewer, "#finding-text")
        assert "per_channel on" in text_of(viewer, "#finding-text")
        await pilot.press("n")
        await pilot.pause()
        assert viewer.query_one(TabbedContent).active == "nodes"
        assert rows(viewer) == ["block1/dw/Conv", "block2/dw/Conv", "block3/dw/Conv"]
        await pilot.press("escape")
        assert len(rows(viewer)) == 12


async def test_nodes_sort_by_any_column_and_reverse(viewer):
    async with viewer.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        assert rows(viewer)[0] == "stem/Conv"
        await pilot.press("s", "s", "s", "s")  # #, node, op, type, cosine
        view = viewer.query_one(NodesView)
        assert view.sort_column == "cosine"
        assert rows(viewer)[:2] == ["head/Gemm", "head/Softmax"]  # worst first
        await pilot.press("r")
        assert rows(viewer)[0] == "stem/Conv"
        await pilot.press("s", "s", "s", "s")  # sqnr, sens, then round to # and name
        assert view.sort_column == "name"
        assert rows(viewer)[0] == "block1/Add"


async def test_nodes_filter_by_name_op_type_and_threshold(viewer):
    async with viewer.run_test(size=SIZE) as pilot:
        await pilot.press("3", "slash")
        await pilot.press(*"dw")
        assert rows(viewer) == ["block1/dw/Conv", "block2/dw/Conv", "block3/dw/Conv"]
        await pilot.press("enter")  # back to the table
        assert viewer.focused is viewer.query_one("#nodes-table")
        await pilot.press("escape")
        viewer.query_one("#node-op", Select).value = "Gemm"
        await pilot.pause()
        assert rows(viewer) == ["head/Gemm"]
        viewer.query_one("#node-op", Select).clear()
        viewer.query_one("#node-below", Input).value = "0.99"
        await pilot.pause()
        assert rows(viewer) == ["head/Gemm", "head/Softmax"]
        assert "2 of 12 nodes" in text_of(viewer, "#nodes-status")


async def test_a_node_detail_shows_metrics_range_and_histogram(viewer):
    async with viewer.run_test(size=SIZE) as pilot:
        await pilot.press("3", "enter")
        assert isinstance(viewer.screen, NodeDetailScreen)
        body = text_of(viewer, "#node-body")
        assert "SQNR dB" in body and "activations" in body and "threshold" in body
        assert "Histogram" in body and "█" in body
        await pilot.press("escape")
        assert not isinstance(viewer.screen, NodeDetailScreen)


async def test_toggling_a_node_remeasures_in_the_background(live_app, whatif):
    async with live_app.run_test(size=SIZE) as pilot:
        await ready(live_app, pilot)
        await pilot.press("5")
        live_app.query_one("#whatif-nodes").focus()
        await pilot.press("i")  # head/Gemm, the most sensitive, to int16
        await measured(live_app, pilot, whatif, 1)
        assert "cosine 0.9881" in text_of(live_app, "#whatif-result")
        diff = text_of(live_app, "#config-diff")
        assert "head/Gemm: {InputType: int16, OutputType: int16}" in diff
        await pilot.press("i")  # and back: the config as given
        assert "the config as given" in text_of(live_app, "#whatif-result")
        await pilot.press("enter")  # the node's detail, from the what-if table too
        assert isinstance(live_app.screen, NodeDetailScreen)
        assert "head/Gemm" in text_of(live_app, "#node-title")


async def test_view_mode_toggles_update_the_diff_but_are_not_measured(viewer):
    async with viewer.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        viewer.query_one("#whatif-nodes").focus()
        await pilot.press("down", "c")  # head/Softmax to the CPU
        assert "not measured (view mode)" in text_of(viewer, "#whatif-result")
        assert "head/Softmax: {'ON': CPU}" in text_of(viewer, "#config-diff")
        viewer.query_one("#whatif-method", Select).value = 8  # max 0.9999 + per_channel
        await pilot.pause()
        assert "per_channel: true" in text_of(viewer, "#config-diff")


async def test_changing_only_the_calibration_shows_what_the_sweep_measured(viewer):
    async with viewer.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        viewer.query_one("#whatif-method", Select).value = 8
        await pilot.pause()
        assert "the sweep measured cosine 0.9958" in text_of(viewer, "#whatif-result")


async def test_save_config_writes_the_chosen_changes_next_to_nothing_of_the_user(viewer, tmp_path):
    async with viewer.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        viewer.query_one("#whatif-nodes").focus()
        await pilot.press("i", "w")
        assert isinstance(viewer.screen, SaveDialog)
        await pilot.press("enter")
        await pilot.pause()
    saved = tmp_path / "config.ptqtui.yaml"
    text = saved.read_text()
    assert "head/Gemm: {InputType: int16, OutputType: int16}" in text
    assert text.startswith("# ptqtui:")


async def test_export_dialog_writes_a_report_atomically(viewer, tmp_path):
    async with viewer.run_test(size=SIZE) as pilot:
        await pilot.press("x")
        assert isinstance(viewer.screen, ExportDialog)
        await pilot.press("down", "down", "down")  # md, text, html, json
        path = viewer.screen.query_one("#export-path", Input)
        assert path.value == str(tmp_path / "ptqtui-report.json")
        await pilot.press("down")  # patched config: named after the user's, never it
        assert path.value == str(tmp_path / "config.ptqtui.yaml")
        await pilot.press("up", "enter")
        await pilot.pause()
    written = tmp_path / "ptqtui-report.json"
    assert Diagnosis.from_json(json.loads(written.read_text())) == whatif_diagnosis()
    assert [p.name for p in tmp_path.iterdir()] == ["ptqtui-report.json"]  # no temp file left
    assert written.stat().st_mode & 0o777 != 0o600  # an ordinary file, not mkstemp's


async def test_export_refuses_the_users_own_config(viewer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo_data/scenarios/bgr_swap").mkdir(parents=True)
    config = tmp_path / "demo_data/scenarios/bgr_swap/config.yaml"
    config.write_text("model_parameters: {}\n")
    async with viewer.run_test(size=SIZE) as pilot:
        assert viewer.export("md", config) is None
        await pilot.pause()
        assert isinstance(viewer.screen, ErrorDialog)
    assert config.read_text() == "model_parameters: {}\n"


async def test_palette_offers_export_and_explain(viewer):
    async with viewer.run_test(size=SIZE) as pilot:
        titles = [c.title for c in viewer.get_system_commands(viewer.screen)]
        assert "export: markdown report" in titles
        assert "explain: PTQ001" in titles
        assert "sort: nodes by cosine" in titles
        viewer.action_explain("PTQ001")
        await pilot.pause()
        assert isinstance(viewer.screen, ExplainDialog)
        assert "BGR" in text_of(viewer, "#explain-body")


async def test_progress_shows_the_stage_and_q_cancels_cleanly():
    started = threading.Event()

    def slow(request, rules=(), *, progress=None, cancel=None):
        progress(Progress("calibration", 3, 10, "100 samples"))
        started.set()
        assert cancel is not None
        cancel.wait(10)
        raise Cancelled()

    app = make_app(Request(title="demo: bgr_swap"), diagnose=slow)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(600):  # poll: a blocking wait would hold the loop that starts the worker
            if started.is_set():
                break
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        assert "calibration" in text_of(app, "#progress-stage")
        assert "3/10" in text_of(app, "#progress-stage")
        await pilot.press("q")
        await app.workers.wait_for_complete()
    assert app.return_code == 130
    assert app.return_value is None


async def test_a_failed_diagnosis_opens_an_error_dialog_and_a_bug_exits_3():
    def broken(request, rules=(), *, progress=None, cancel=None):
        raise RuntimeError("onnxruntime could not load the model")

    app = make_app(Request(), diagnose=broken)
    async with app.run_test(size=SIZE) as pilot:
        await error_dialog(app, pilot)
        assert "could not load the model" in text_of(app, "#error-message")
        await pilot.press("q")
    assert app.return_code == 3  # an internal error, as the CLI's


async def test_unreadable_input_in_the_diagnosis_exits_2(tmp_path):
    from ptqtui.errors import PtqInputError

    def unreadable(request, rules=(), *, progress=None, cancel=None):
        raise PtqInputError(tmp_path / "model.onnx", "not an ONNX model")

    app = make_app(Request(), diagnose=unreadable)
    async with app.run_test(size=SIZE) as pilot:
        await error_dialog(app, pilot)
        assert "model.onnx" in text_of(app, "#error-message")
        await pilot.press("q")
    assert app.return_code == 2


async def test_an_exception_in_the_app_itself_exits_3():
    def boom() -> None:
        raise RuntimeError("a bug in a screen")

    app = make_viewer(whatif_diagnosis())
    try:
        async with app.run_test(size=SIZE) as pilot:
            app.call_later(boom)
            await pilot.pause()
    except RuntimeError:
        pass  # the pilot re-raises it for the test
    assert app.crashed and app.return_code == 3


async def test_exit_code_follows_fail_on(live_app):
    async with live_app.run_test(size=SIZE) as pilot:
        await ready(live_app, pilot)
        await pilot.press("q")
    assert live_app.return_code == 1  # a critical finding, --fail-on critical
    assert live_app.return_value == whatif_diagnosis()


async def test_a_diagnosis_without_analysis_or_plan_still_shows_every_screen():
    app = make_viewer(bare_diagnosis())
    async with app.run_test(size=SIZE) as pilot:
        for key in "123456":
            await pilot.press(key)
        assert "not measured" in text_of(app, "#summary-headline")
        assert "No plan" in text_of(app, "#plan-route")
        await pilot.press("3")
        assert "No node table" in text_of(app, "#nodes-status")


async def test_no_findings_reads_as_none():
    app = make_viewer(clean_diagnosis())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        assert "No findings" in text_of(app, "#finding-text")
        await pilot.press("n", "e")  # nothing to act on: no crash


def test_importing_the_app_leaves_numpy_onnx_and_onnxruntime_unloaded():
    code = (
        "import sys, ptqtui.tui.app; "
        "print(sorted(m for m in ('numpy', 'onnx', 'onnxruntime', 'cv2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_progress_reports_of_one_stage_replace_each_other_but_not_another_stages():
    from ptqtui.tui.messages import ProgressMade

    older = ProgressMade(Progress("calibration", 3, 10), 0.0)
    assert older.can_replace(ProgressMade(Progress("calibration", 4, 10), 0.1))
    assert not older.can_replace(ProgressMade(Progress("sensitivity", 0, 96), 0.2))
