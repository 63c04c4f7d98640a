"""The TUI as the CLI starts it: --write-config, exit codes, signals in a real terminal."""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ptqtui import cli
from ptqtui.request import Request
from tests.tui.conftest import whatif_diagnosis

PATCHED = "# patched\ncalibration_parameters:\n  calibration_type: max\n"


class StubApp:
    """What cli._run_tui needs of the app: run() and how it ended."""

    def __init__(self, result, return_code: int, crashed: bool = False) -> None:
        self.result, self.return_code, self.crashed = result, return_code, crashed

    def run(self):
        return self.result


def run_tui_with(monkeypatch, app: StubApp, request: Request) -> int:
    import ptqtui.tui.app

    monkeypatch.setattr(ptqtui.tui.app, "make_app", lambda request, **kw: app)
    return cli._run_tui(request)


def test_write_config_is_honoured_when_the_tui_ran(monkeypatch, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("calibration_parameters:\n  calibration_type: default\n")
    d = whatif_diagnosis()
    d = dataclasses.replace(d, plan=dataclasses.replace(d.plan, patched_config=PATCHED))
    out = tmp_path / "patched.yaml"
    request = Request(config=config, write_config=out, fail_on="never")
    assert run_tui_with(monkeypatch, StubApp(d, 0), request) == 0
    assert out.read_text() == PATCHED


def test_write_config_is_not_written_when_the_tui_closed_early(monkeypatch, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("calibration_parameters: {}\n")
    out = tmp_path / "patched.yaml"
    request = Request(config=config, write_config=out)
    assert run_tui_with(monkeypatch, StubApp(None, 130), request) == 130
    assert run_tui_with(monkeypatch, StubApp(None, 143), request) == 143  # SIGTERM
    assert not out.exists()


def test_a_crashed_tui_exits_3(monkeypatch):
    assert run_tui_with(monkeypatch, StubApp(None, 1, crashed=True), Request()) == 3


# ---------------------------------------------------------------- a real terminal

LEAVE_ALT_SCREEN = b"\x1b[?1049l"
SHOW_CURSOR = b"\x1b[?25h"
MOUSE_OFF = b"\x1b[?1000l"


def _read_until(fd: int, want: bytes, timeout: float) -> bytes:
    out = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end and want not in out:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def _drain(fd: int, proc: subprocess.Popen, timeout: float) -> bytes:
    out = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            out += chunk
            if not chunk and proc.poll() is not None:
                break
        elif proc.poll() is not None:
            break
    return out


def run_in_a_terminal(args: list[str], cwd: Path, ready: bytes, signum: int) -> tuple[int, bytes]:
    """Start `python -m ptqtui ARGS` on a pty, wait for `ready` on screen, send `signum`;
    the exit code and everything the app wrote."""
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ptqtui", *args],
        stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    try:
        started = _read_until(master, ready, timeout=120)
        assert b"\x1b[?1049h" in started, started[-500:]  # the alternate screen is on
        proc.send_signal(signum)
        rest = _drain(master, proc, timeout=60)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, started + rest


def assert_restored(written: bytes) -> None:
    tail = written[written.rindex(b"\x1b[?1049h") :]
    for sequence in (LEAVE_ALT_SCREEN, SHOW_CURSOR, MOUSE_OFF):
        assert sequence in tail, (sequence, tail[-300:])
    assert b"Traceback" not in written


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_restores_the_terminal_and_exits_128_plus_n(tmp_path, signum):
    saved = tmp_path / "report.json"
    saved.write_text(json.dumps(whatif_diagnosis().to_json()))
    before = sorted(p.name for p in tmp_path.iterdir())
    code, written = run_in_a_terminal(["view", str(saved)], tmp_path, b"Summary", signum)
    assert code == 128 + signum
    assert_restored(written)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no file left behind


@pytest.mark.skipif(os.environ.get("PTQTUI_QUICK") == "1", reason="PTQTUI_QUICK=1: ~15 s")
def test_sigterm_during_the_demo_diagnosis_stops_it_at_once(tmp_path):
    """The worker thread is calibrating on onnxruntime when the signal comes."""
    out = tmp_path / "patched.yaml"
    args = ["demo", "bgr_swap", "--write-config", str(out)]
    start = time.monotonic()
    code, written = run_in_a_terminal(args, tmp_path, b"calibration", signal.SIGTERM)
    assert code == 143
    assert time.monotonic() - start < 60
    assert_restored(written)
    assert list(tmp_path.iterdir()) == []  # --write-config not written, nothing half-written
