"""The Plan screen's what-ifs as remedies: measured by the service, patched into the config,
saved beside it; what the march allows; CPU or int16, never both."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import yaml
from textual.widgets import Select

from ptqtui.diagnosis import FileRef
from ptqtui.inputs.config import load_config
from ptqtui.remedy import DType, NodeChange, Placement
from ptqtui.request import Request
from ptqtui.tui.app import make_app, make_viewer
from ptqtui.tui.screens.dialogs import ConfirmDialog, SaveDialog
from ptqtui.tui.whatif import Choices, Toggle, relocate_paths
from tests.tui.conftest import ROW_SETTINGS, FakeWhatIf, Run, whatif_diagnosis
from tests.tui.test_app import SIZE, measured, ready, text_of

CONFIG = """\
# the user's config
model_parameters:
  onnx_model: model.onnx  # float model
  march: {march}
  working_dir: model_output
calibration_parameters:
  cal_data_dir: ./calibration
  calibration_type: default
"""


def with_config(tmp_path: Path, march: str = "bayes"):
    """The Diagnosis with remedies, its config here and unchanged (model and data beside it)."""
    folder = tmp_path / "project"
    (folder / "calibration").mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"not read here")
    text = CONFIG.format(march=march)
    config = folder / "config.yaml"
    config.write_text(text)
    d = whatif_diagnosis()
    files = tuple(
        FileRef("config", str(config), hashlib.sha256(text.encode()).hexdigest())
        if f.role == "config"
        else f
        for f in d.files
    )
    return dataclasses.replace(d, files=files), config


def live(diagnosis, whatif: FakeWhatIf, **kwargs):
    return make_app(Request(), diagnose=lambda *a, **k: Run(diagnosis, whatif), **kwargs)


def pick_row(app, index: int) -> None:
    app.query_one("#whatif-method", Select).value = index


async def test_every_sweep_row_is_measured_with_exactly_its_settings(whatif):
    d = whatif_diagnosis()
    sweep = d.analysis.sweep
    app = live(d, whatif)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("5")
        for index, row in enumerate(sweep):
            if row.chosen:
                continue
            pick_row(app, index)
            await measured(app, pilot, whatif, len(whatif.asked) + 1)
            assert whatif.settings_asked()[-1] == ROW_SETTINGS[row.label], row.label
            assert whatif.asked[-1] == row.remedy, row.label
            assert "cosine 0.9871" in text_of(app, "#whatif-result")
    asked = whatif.settings_asked()
    assert len(asked) == len(sweep) - 1  # every row but the configured one
    flags = {(s.asymmetric, s.bias_correction) for s in asked}
    assert {(True, False), (False, True)} <= flags  # the rows the string round trip lost


async def test_a_node_toggle_keeps_the_rows_calibration(whatif):
    d = whatif_diagnosis()
    labels = [r.label for r in d.analysis.sweep]
    app = live(d, whatif)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("5")
        pick_row(app, labels.index("max 0.9999 + per_channel + bias_correction"))
        await measured(app, pilot, whatif, 1)
        app.query_one("#whatif-nodes").focus()
        await pilot.press("i")  # head/Gemm to int16
        await measured(app, pilot, whatif, 2)
        assert "cosine 0.9881" in text_of(app, "#whatif-result")
    last = whatif.settings_asked()[-1]
    assert (last.calibration_type, last.max_percentile) == ("max", 0.9999)
    assert last.per_channel and last.bias_correction and not last.asymmetric
    assert [(o.node, o.input_dtype) for o in last.node_overrides] == [("head/Gemm", "int16")]


@pytest.mark.parametrize(
    ("label", "item"),
    [("max 0.9999 + per_channel + asymmetric", "asymmetric"),
     ("max 0.9999 + per_channel + bias_correction", "bias_correction")],
)  # fmt: skip
async def test_a_flagged_rows_config_diff_keeps_its_optimization(tmp_path, label, item):
    d, _ = with_config(tmp_path)
    app = make_viewer(d, export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        pick_row(app, [r.label for r in d.analysis.sweep].index(label))
        await pilot.pause()
        diff = text_of(app, "#config-diff")
        assert "+++ b/config.yaml" in diff
        assert f"optimization: {item}" in diff
        await pilot.press("w", "enter")
        await pilot.pause()
    saved = yaml.safe_load((tmp_path / "config.ptqtui.yaml").read_text())
    cal = saved["calibration_parameters"]
    assert cal["optimization"] == item and cal["per_channel"] is True
    assert (cal["calibration_type"], cal["max_percentile"]) == ("max", 0.9999)


@pytest.mark.parametrize(("march", "int16"), [("bernoulli2", False), ("bayes", True)])
async def test_int16_is_offered_only_where_the_march_has_it(tmp_path, march, int16):
    d, _ = with_config(tmp_path, march=march)
    app = make_viewer(d)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        app.query_one("#whatif-nodes").focus()
        await pilot.pause()
        keys = {b.binding.key for b in app.active_bindings.values()}
        assert "c" in keys and ("i" in keys) is int16
        assert ("no int16 on bernoulli2" in text_of(app, "#whatif-title")) is not int16
        await pilot.press("i")
        assert (app.query_one("#plan-view").choices == Choices()) is not int16
        if not int16:
            await pilot.press("c")
            diff = text_of(app, "#config-diff")
            assert "run_on_cpu: head/Gemm" in diff and "int16" not in diff


async def test_a_node_is_on_the_cpu_or_in_int16_never_both(whatif):
    app = live(whatif_diagnosis(), whatif)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("5")
        app.query_one("#whatif-nodes").focus()
        view = app.query_one("#plan-view")
        await pilot.press("c", "i")  # head/Gemm to the CPU, then int16: int16 only
        await ready(app, pilot)
        assert view.choices.nodes == (NodeChange("head/Gemm", dtype=DType.INT16),)
        assert "'ON': CPU" not in text_of(app, "#config-diff")
        await pilot.press("c")  # and to the CPU: int16 cleared
        await ready(app, pilot)
        assert view.choices.nodes == (NodeChange("head/Gemm", Placement.CPU),)
        assert "int16" not in text_of(app, "#config-diff")
        await pilot.press("c")  # back: the config as given
        assert view.choices == Choices()
    for remedy in whatif.asked:
        for change in remedy.settings.nodes:
            assert not (change.placement is Placement.CPU and change.dtype is DType.INT16)


def test_toggles_from_a_node_the_config_already_moves():
    from ptqtui.analysis.results import NodeRow, Similarity

    sim = Similarity(1.0, 0.0, 0.0, 60.0, 0.0)
    cpu = NodeRow("tail", "Gemm", "out", "float", "CPU", sim)
    wide = NodeRow("wide", "Conv", "out", "int16", "BPU", sim)
    c = Choices().toggled(cpu, Toggle.INT16)
    assert c.nodes == (NodeChange("tail", Placement.BPU, DType.INT16),)
    assert c.toggled(cpu, Toggle.INT16) == Choices()  # back to the CPU, as configured
    assert Choices().toggled(cpu, Toggle.CPU).nodes == (NodeChange("tail", Placement.BPU),)
    w = Choices().toggled(wide, Toggle.INT16)
    assert w.nodes == (NodeChange("wide", dtype=DType.INT8),)
    assert Choices().toggled(wide, Toggle.CPU).nodes == (NodeChange("wide", Placement.CPU),)
    assert Choices().toggled(wide, Toggle.CPU).toggled(wide, Toggle.CPU) == Choices()


async def test_save_writes_beside_the_config_and_asks_before_overwriting(tmp_path):
    d, config = with_config(tmp_path)
    app = make_viewer(d)  # no export folder: the config's own
    beside = config.parent / "config.ptqtui.yaml"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        app.query_one("#whatif-nodes").focus()
        await pilot.press("i", "w")
        assert isinstance(app.screen, SaveDialog)
        assert app.screen.query_one("#save-path").value == str(beside)
        await pilot.press("enter")
        await pilot.pause()
        first = beside.read_text()
        assert "head/Gemm" in first and "onnx_model: model.onnx" in first  # paths as they were
        await pilot.press("c", "w", "enter")  # head/Gemm to the CPU instead; same file
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        assert "exists" in text_of(app, "#confirm-question")
        await pilot.press("n")
        await pilot.pause()
        assert beside.read_text() == first
        await pilot.press("w", "enter", "y")
        await pilot.pause()
    node_info = yaml.safe_load(beside.read_text())["model_parameters"]["node_info"]
    assert node_info == {"head/Gemm": {"ON": "CPU"}}  # int16 gone with the move
    assert config.read_text() == CONFIG.format(march="bayes")  # the user's file untouched
    assert sorted(p.name for p in config.parent.iterdir()) == [
        "calibration", "config.ptqtui.yaml", "config.yaml", "model.onnx",
    ]  # fmt: skip


async def test_a_config_saved_elsewhere_names_the_same_files(tmp_path):
    d, config = with_config(tmp_path)
    app = make_viewer(d)
    elsewhere = tmp_path / "runs" / "try1"
    elsewhere.mkdir(parents=True)
    target = elsewhere / "mine.yaml"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        app.query_one("#whatif-nodes").focus()
        await pilot.press("i", "w")
        app.screen.query_one("#save-path").value = str(target)
        await pilot.press("enter")
        await pilot.pause()
    saved = target.read_text()
    assert saved.startswith("# the user's config") and "# float model" in saved
    original, copy = load_config(config), load_config(target)
    assert copy.model_path == original.model_path == config.parent / "model.onnx"
    assert copy.working_dir == original.working_dir == config.parent / "model_output"
    cal_dir = yaml.safe_load(saved)["calibration_parameters"]["cal_data_dir"]
    assert (target.parent / cal_dir).resolve() == (config.parent / "calibration").resolve()


def test_relocating_keeps_absolute_paths_and_every_input_folder(tmp_path):
    text = (
        "model_parameters:\n  onnx_model: /models/m.onnx\n  working_dir: out\n"
        "calibration_parameters:\n  cal_data_dir: 'a;b/c'\n"
    )
    moved = yaml.safe_load(relocate_paths(text, tmp_path / "x", tmp_path / "y" / "z"))
    assert moved["model_parameters"] == {
        "onnx_model": "/models/m.onnx",
        "working_dir": "../../x/out",
    }
    assert moved["calibration_parameters"]["cal_data_dir"] == "../../x/a;../../x/b/c"
    assert relocate_paths(text, tmp_path, tmp_path) == text
    far = yaml.safe_load(relocate_paths(text, Path("/elsewhere/x"), tmp_path))
    assert far["model_parameters"]["working_dir"] == "/elsewhere/x/out"  # no climb to /


async def test_a_v1_file_opens_with_node_what_ifs_and_no_calibration_ones():
    import json

    from ptqtui.diagnosis import Diagnosis

    path = Path(__file__).parents[1] / "report/fixtures/diagnosis-v1.json"
    d = Diagnosis.from_json(json.loads(path.read_text()))
    assert d.analysis.sweep and all(r.remedy is None for r in d.analysis.sweep)
    app = make_viewer(d)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        assert not app.query("#whatif-method")
        assert "no calibration what-ifs" in text_of(app, "#whatif-no-rows")
        assert "pick a calibration" not in text_of(app, "#whatif-title")
        app.query_one("#whatif-nodes").focus()
        await pilot.press("c")
        assert "{'ON': CPU}" in text_of(app, "#config-diff")


async def test_the_plans_config_saved_elsewhere_names_the_same_files_even_if_changed(tmp_path):
    d, config = with_config(tmp_path)
    patched = CONFIG.format(march="bayes").replace("default", "max")
    d = dataclasses.replace(d, plan=dataclasses.replace(d.plan, patched_config=patched))
    config.write_text(CONFIG.format(march="bayes") + "# edited since the diagnosis\n")
    out = tmp_path / "out"
    out.mkdir()
    app = make_viewer(d)
    async with app.run_test(size=SIZE) as pilot:
        assert app.config_patch is None  # changed since: no what-if diffs from it
        await pilot.press("5", "w")
        app.screen.query_one("#save-path").value = str(out / "plan.yaml")
        await pilot.press("enter")
        await pilot.pause()
    saved = yaml.safe_load((out / "plan.yaml").read_text())
    assert saved["model_parameters"]["onnx_model"] == "../project/model.onnx"
    assert saved["calibration_parameters"]["calibration_type"] == "max"


def test_a_fragment_names_every_change_of_the_remedy():
    from ptqtui.remedy import Remedy, SettingsDelta
    from ptqtui.tui.whatif import yaml_fragment

    delta = SettingsDelta(
        "max", 0.9999, per_channel=True, asymmetric=True, bias_correction=True,
        nodes=(NodeChange("a", Placement.CPU), NodeChange("b", dtype=DType.INT16)),
    )  # fmt: skip
    assert yaml.safe_load(yaml_fragment(Remedy(settings=delta))) == {
        "calibration_parameters": {
            "calibration_type": "max",
            "max_percentile": 0.9999,
            "per_channel": True,
            "optimization": "asymmetric,bias_correction",
        },
        "model_parameters": {
            "node_info": {"a": {"ON": "CPU"}, "b": {"InputType": "int16", "OutputType": "int16"}}
        },
    }
    assert yaml_fragment(Remedy()) == ""


async def test_what_ifs_continue_the_plan_on_the_data_its_pipeline_steps_fix(whatif):
    """A plan whose step 1 swaps the channels: every what-if is measured on the swapped data,
    and its gain is against the config as given on that same data (not the data as given)."""
    from ptqtui.remedy import InputChange, InputFix, Remedy

    d = whatif_diagnosis()
    swap = InputChange(InputFix.SWAP_CHANNELS, "images")
    steps = list(d.plan.steps)
    steps[0] = dataclasses.replace(
        steps[0], stage="pipeline", tried=True, remedy=Remedy(inputs=(swap,))
    )
    d = dataclasses.replace(d, plan=dataclasses.replace(d.plan, steps=tuple(steps)))
    app = live(d, whatif)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("5")
        app.query_one("#whatif-nodes").focus()
        await pilot.press("i")
        await measured(app, pilot, whatif, 2)
        result = text_of(app, "#whatif-result")
    choice, reference = whatif.asked[-2:]
    assert choice.inputs == (swap,) and choice.settings is not None  # the toggle, on fixed data
    assert reference == Remedy(inputs=(swap,))  # the config as given, on the same data
    assert "cosine 0.9881 (+0.0010)" in result
    assert "swap channels of images" in " ".join(result.split())


async def test_without_pipeline_fixes_a_what_if_is_measured_on_the_data_as_given(whatif):
    d = whatif_diagnosis()
    assert not any(s.stage == "pipeline" and s.remedy and s.remedy.inputs for s in d.plan.steps)
    app = live(d, whatif)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("5")
        app.query_one("#whatif-nodes").focus()
        await pilot.press("i")
        await measured(app, pilot, whatif, 1)
    assert len(whatif.asked) == 1 and whatif.asked[0].inputs == ()
