"""`ptqtui log LOG` and `--mapper-log` as a user meets them: real processes and real files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from ptqtui.inputs.config import load_config
from ptqtui.inputs.resolve import load_inputs
from ptqtui.request import Request

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "tests" / "fixtures" / "logs"
DEMO = ROOT / "demo_data"


def ptqtui(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ptqtui", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_log_alone_says_what_the_log_holds_and_exits_1_on_a_collapsed_output():
    result = ptqtui("log", str(LOGS / "x5_modelwise_collapsed.log"))
    assert result.returncode == 1 and result.stderr == ""
    out = result.stdout
    assert "calibration samples: 24" in out
    assert "chose max-percentile:percentile=0.99995,per_channel" in out
    assert "probs   0.000021" in out and "collapsed" in out
    assert "[critical] PTQ407" in out and "[minor] PTQ401" in out
    assert "With the model and data" in out


def test_log_json_has_every_row_and_the_findings(tmp_path):
    out = tmp_path / "log.json"
    result = ptqtui("log", str(LOGS / "x3_kl_cpu_split.log"), "--report", "json", "-o", str(out))
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["schema"] == "ptqtui.converter-log/1"
    assert len(data["log"]["nodes"]) == 9 and len(data["log"]["outputs"]) == 1
    assert data["summary"]["cpu_nodes"] == ["133", "output_reshape_0"]
    assert {f["code"] for f in data["findings"]} >= {"PTQ401", "PTQ403", "PTQ406"}
    assert data["would_add"]


def test_log_markdown_and_fail_on(tmp_path):
    result = ptqtui(
        "log", str(LOGS / "x3_kl_cpu_split.log"), "--report", "md", "--fail-on", "minor"
    )
    assert result.returncode == 1
    assert result.stdout.startswith("# Converter log x3_kl_cpu_split.log")


def test_a_file_that_is_not_a_log_is_exit_2_and_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here\n")
    result = ptqtui("log", "notes.txt", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("ptqtui: notes.txt: ") and "not a log" in line


def test_mapper_log_flag_is_read_and_an_unreadable_one_is_an_input_error(tmp_path):
    config = DEMO / "scenarios" / "good" / "config.yaml"
    request = Request(config=config, mapper_log=LOGS / "x5_modelwise_collapsed.log")
    inputs = load_inputs(request)
    assert inputs.mapper_log is not None and inputs.mapper_log.samples == 24
    bad = tmp_path / "x.log"
    bad.write_text("hello\n")
    result = ptqtui("-c", str(config), "--mapper-log", str(bad), "--report", "text", "--quiet")
    assert result.returncode == 2 and "not a log" in result.stderr


def test_the_log_is_found_next_to_the_config_and_said_so(tmp_path):
    scenario = tmp_path / "good"
    shutil.copytree(DEMO / "scenarios" / "good", scenario)
    text = (scenario / "config.yaml").read_text()
    text = text.replace("../../model.onnx", str(DEMO / "model.onnx")).replace(
        "../../calibration/", str(DEMO / "calibration") + "/"
    )
    (scenario / "config.yaml").write_text(text)
    assert load_config(scenario / "config.yaml").working_dir == scenario / "model_output"
    inputs = load_inputs(Request(config=scenario / "config.yaml"))
    assert inputs.mapper_log is None and "mapper_log" in inputs.missing
    (scenario / "model_output").mkdir()
    shutil.copy(LOGS / "x3_kl_cpu_split.log", scenario / "model_output" / "hb_mapper_makertbin.log")
    inputs = load_inputs(Request(config=scenario / "config.yaml"))
    assert inputs.mapper_log is not None and inputs.mapper_log.samples == 31
    assert any("converter's log found at" in n for n in inputs.notes)
