"""The demo through the command line, as CI uses ptqtui: exit codes and Ctrl+C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from ptqtui.demo import demo_dir

pytestmark = pytest.mark.skipif(
    not (demo_dir() / "scenarios" / "index.json").exists(), reason="demo data not generated"
)


@pytest.mark.parametrize("scenario, code", [("good", 0), ("bgr_swap", 1)])
def test_fail_on_gives_the_expected_exit_code(scenario, code, tmp_path):
    out = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "ptqtui", "demo", scenario, "--report", "json", "-o", str(out),
         "--quiet"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == code, result.stderr
    assert json.loads(out.read_text())["schema"] == "ptqtui.diagnosis/2"
    assert result.stdout == "" and result.stderr == ""


def test_ctrl_c_exits_130_and_leaves_no_file(tmp_path):
    out = tmp_path / "report.html"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ptqtui", "demo", "--report", "html", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    line = ""
    while "calibration" not in line and time.monotonic() < deadline:  # mid-analysis
        line = proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert list(tmp_path.iterdir()) == []
