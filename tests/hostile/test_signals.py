"""SIGTERM and SIGHUP (an SSH session dropping) end a report run cleanly: no partial file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.hostile.workspace import make_workspace


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_signal_during_a_report_exits_128_plus_n_and_leaves_no_file(tmp_path, sig):
    ws = make_workspace(tmp_path / "ws", samples=200)
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ptqtui", "-c", "config.yaml", "--report", "json", "-o", "out.json"],
        cwd=ws,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        first = proc.stderr.readline()  # the first progress line: the diagnosis has begun
        assert first.startswith(b"ptqtui: "), first
        proc.send_signal(sig)
        rest = proc.stderr.read().decode("utf-8", errors="replace")
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert code == 128 + sig, rest
    assert f"terminated by {sig.name}" in rest and "Traceback" not in rest
    assert not (ws / "out.json").exists()
    assert not [p for p in ws.iterdir() if p.name.startswith(".out.json")]
