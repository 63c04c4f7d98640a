"""Issue 15's table, row by row: each input that once crashed, hung or misled now ends cleanly."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import onnx
import pytest

from tests.hostile.workspace import assert_clean, make_workspace, ptqtui

REPORT = ("-c", "config.yaml", "--report", "json", "--quiet")


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("hostile") / "base")


@pytest.fixture
def ws(base, tmp_path) -> Path:
    """A fresh copy of the workspace for one test to spoil."""
    return Path(shutil.copytree(base, tmp_path / "ws", symlinks=True))


def _json(run) -> dict:
    assert_clean(run)
    return json.loads(run.stdout.decode("utf-8"))


def _one_line(run) -> str:
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, run.stderr
    return lines[0]


def _codes(report: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in report["findings"]:
        out.setdefault(f["code"], []).append(f)
    return out


def test_dangling_symlink_in_calibration_folder_is_skipped_with_the_reason(ws):
    (ws / "cal" / "zz_gone.bin").symlink_to(ws / "nowhere.bin")
    report = _json(ptqtui(*REPORT, cwd=ws))
    assert report["calibration"]["samples"] == 6
    assert any("zz_gone.bin" in s and "dangling" in s for s in report["calibration"]["skipped"])


def test_symlink_loop_in_calibration_folder_is_skipped_with_the_reason(ws):
    (ws / "cal" / "loop_a.bin").symlink_to("loop_b.bin")
    (ws / "cal" / "loop_b.bin").symlink_to("loop_a.bin")
    report = _json(ptqtui(*REPORT, cwd=ws))
    skipped = [s for s in report["calibration"]["skipped"] if "loop_" in s]
    assert len(skipped) == 2 and all("cannot be followed" in s for s in skipped)


def test_non_utf8_file_name_keeps_json_valid_and_view_opens_it(ws):
    name = os.fsencode(ws / "cal") + b"/caf\xe9\xff.bin"
    shutil.copyfile(ws / "cal" / "s000.bin", name)
    run = ptqtui(*REPORT, "-o", "out.json", cwd=ws)
    assert_clean(run)
    text = (ws / "out.json").read_bytes().decode("utf-8")  # valid UTF-8
    report = json.loads(text)
    assert report["calibration"]["samples"] == 7
    # the name is escaped (\\udce9), and reads back as the same name: here a duplicate of s000
    assert any("caf\udce9\udcff.bin" in f["message"] for f in report["findings"])
    stdout = ptqtui(*REPORT, cwd=ws)
    assert _json(stdout)["calibration"]["samples"] == 7
    view = ptqtui("view", "out.json", "--report", "text", cwd=ws)
    assert_clean(view)
    assert view.returncode == 0 and b"ptqtui diagnosis" in view.stdout


def test_output_naming_an_existing_folder_is_exit_2_before_any_work(ws):
    (ws / "outdir").mkdir()
    (ws / "saved.json").write_bytes(ptqtui(*REPORT, cwd=ws).stdout)
    for args in (
        (*REPORT, "-o", "outdir"),
        ("-c", "config.yaml", "--report", "text", "--write-config", "outdir"),
        ("view", "saved.json", "--report", "text", "-o", "outdir"),
        ("diff", "saved.json", "saved.json", "-o", "outdir"),
    ):
        run = ptqtui(*args, cwd=ws)
        assert run.returncode == 2 and "outdir" in _one_line(run), run.stderr
        assert "is a directory" in run.stderr
    assert list((ws / "outdir").iterdir()) == []


def test_input_shape_in_the_other_layout_is_a_ptq202_finding(ws):
    config = ws / "config.yaml"
    config.write_text(config.read_text().replace("1x3x16x16", "1x16x16x3"))
    run = ptqtui(*REPORT, cwd=ws)
    report = _json(run)
    [shape] = [f for f in _codes(report)["PTQ202"] if f["evidence"][0]["what"].startswith("shape")]
    assert shape["evidence"][0]["observed"] == "1x16x16x3"
    assert shape["evidence"][0]["expected"] == "1x3x16x16"
    skipped = {s["what"]: s["reason"] for s in report["skipped"]}
    assert "PTQ202" in skipped["analysis"] and "onnxruntime" not in run.stderr


@pytest.mark.parametrize("extra", [(), ("--eval-dir", "cal")])
def test_negative_seed_is_refused_in_one_line(ws, extra):
    run = ptqtui(*REPORT, "--seed", "-1", *extra, cwd=ws)
    assert run.returncode == 2 and "--seed" in _one_line(run)
    assert run.stdout == b""


@pytest.mark.parametrize(
    "args",
    [
        REPORT,
        ("rules",),
        ("explain", "PTQ002"),
        ("demo", "--list"),
        ("lint", "config.yaml"),
        ("view", "saved.json", "--report", "text"),
        ("diff", "saved.json", "saved.json"),
        ("--help",),
        ("--version",),
    ],
    ids=lambda a: a[0],
)
def test_closed_stdout_is_not_an_error(base, args):
    if not (base / "saved.json").exists():
        (base / "saved.json").write_bytes(ptqtui(*REPORT, cwd=base).stdout)
    run = ptqtui(*args, cwd=base, close_stdout=True)
    assert_clean(run)
    assert run.returncode in (0, 1)


def test_yaml_alias_bomb_is_refused_at_once(ws):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    lines += ["model_parameters:", "  onnx_model: model.onnx", "  march: *a9"]
    (ws / "config.yaml").write_text("\n".join(lines) + "\n")
    for args in (REPORT, ("lint", "config.yaml")):
        start = time.monotonic()
        run = ptqtui(*args, cwd=ws, timeout=30)
        assert time.monotonic() - start < 20
        assert run.returncode == 2 and "alias" in run.stderr, run.stderr


def test_only_undecodable_images_is_a_critical_finding(ws):
    for path in (ws / "cal").iterdir():
        path.unlink()
    for i in range(3):
        (ws / "cal" / f"img{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated" * i)
    run = ptqtui(*REPORT, cwd=ws)
    assert run.returncode == 1
    [finding] = _codes(_json(run))["PTQ104"]
    assert finding["severity"] == "critical" and "none of the 3" in finding["message"]


def test_zero_scale_value_is_a_finding_about_the_scale(ws):
    config = ws / "config.yaml"
    config.write_text(config.read_text().replace("0.01712 0.01751 0.01743", "0 0 0"))
    report = _json(ptqtui(*REPORT, cwd=ws))
    [finding] = [
        f
        for f in _codes(report)["PTQ201"]
        if "input_parameters.scale_value" in f["evidence"][0]["what"]
    ]
    assert "by zero" in finding["message"] and finding["severity"] in ("major", "critical")


def test_checker_nit_onnxruntime_runs_is_a_note_and_the_diagnosis_goes_on(ws):
    model = onnx.load(ws / "model.onnx")
    for value in ("1", "2"):  # as onnxruntime's quant_pre_process can leave them
        entry = model.metadata_props.add()
        entry.key, entry.value = "onnx.infer", value
    onnx.save(model, ws / "model.onnx")
    report = _json(ptqtui(*REPORT, cwd=ws))
    assert any("checker" in n and "onnxruntime runs it" in n for n in report["notes"])
    assert report["analysis"] is not None


def test_model_neither_checker_nor_onnxruntime_loads_is_exit_2(ws):
    model = onnx.load(ws / "model.onnx")
    model.graph.node[1].op_type = "NoSuchOp"
    onnx.save(model, ws / "model.onnx")
    run = ptqtui(*REPORT, cwd=ws)
    assert run.returncode == 2 and "model.onnx" in _one_line(run)


def test_onnxruntime_own_log_lines_never_reach_the_terminal(ws):
    # the tiny model's Reshape fixes batch 1: the simulator's batched probe fails inside
    # onnxruntime, which used to print its error line in the middle of the progress
    run = ptqtui("-c", "config.yaml", "--report", "text", cwd=ws)
    assert_clean(run)
    assert all(line.startswith("ptqtui: ") for line in run.stderr.splitlines()), run.stderr


def test_output_naming_the_model_or_data_the_config_names_is_refused(ws):
    before = (ws / "model.onnx").read_bytes()
    for target in ("model.onnx", "cal", "./cal/../model.onnx"):
        run = ptqtui("-c", "config.yaml", "--report", "text", "-o", target, cwd=ws)
        assert run.returncode == 2 and "never overwritten" in _one_line(run), run.stderr
    assert (ws / "model.onnx").read_bytes() == before
