"""`ptqtui serve`: a real server on loopback, the page over HTTP, the TUI over its websocket."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from ptqtui.cli import main
from tests.prepared import prepared_with_pictures

URL = re.compile(r"http://127\.0\.0\.1:(\d+)/\?token=([\w-]+)")


@pytest.fixture
def served(tmp_path):
    report = tmp_path / "report.json"
    report.write_text(json.dumps(prepared_with_pictures().to_json()))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ptqtui", "serve", str(report)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "NO_COLOR": ""},
    )
    try:
        line = proc.stdout.readline()
        match = URL.search(line)
        assert match, line
        yield match.group(0), int(match.group(1)), match.group(2)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode is not None


def _get(url: str, cookie: str | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), response.headers.get("Set-Cookie", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), ""


def test_the_page_needs_the_token_and_loads_nothing_from_the_network(served):
    url, port, _ = served
    status, page, cookie = _get(url)
    assert status == 200 and "textual.js" in page and "HttpOnly" in cookie
    assert not re.search(r'(src|href)="https?://', page)  # no font from Google
    assert _get(f"http://127.0.0.1:{port}/")[0] == 403
    assert _get(f"http://127.0.0.1:{port}/?token=wrong")[0] == 403
    assert _get(f"http://127.0.0.1:{port}/static/js/textual.js")[0] == 403
    jar = cookie.split(";")[0]
    assert _get(f"http://127.0.0.1:{port}/static/js/textual.js", jar)[0] == 200


def test_the_tui_runs_in_the_websocket_and_reaches_the_plan_tab(served):
    from aiohttp import ClientSession, WSMsgType

    _, port, token = served

    async def session() -> str:
        seen = ""
        cookies = {"ptqtui_token": token}
        async with ClientSession(cookies=cookies) as http:
            ws_url = f"ws://127.0.0.1:{port}/ws?width=100&height=30"
            async with http.ws_connect(ws_url) as ws:
                await ws.send_json(["resize", {"width": 100, "height": 30}])

                async def read_until(text: str, seconds: float) -> bool:
                    nonlocal seen
                    end = time.monotonic() + seconds
                    while time.monotonic() < end:
                        try:
                            msg = await ws.receive(timeout=1.0)
                        except asyncio.TimeoutError:
                            continue
                        if msg.type == WSMsgType.BINARY:
                            seen += msg.data.decode("utf-8", "replace")
                        elif msg.type in (WSMsgType.CLOSED, WSMsgType.ERROR):
                            return False
                        if text in seen:
                            return True
                    return False

                assert await read_until("Summary", 60), seen[-2000:]
                seen = ""
                await ws.send_json(["stdin", "5"])
                assert await read_until("Feed RGB calibration data", 30), seen[-2000:]
                await ws.send_json(["stdin", "q"])
        return seen

    asyncio.run(session())


def test_bad_arguments_fail_once_with_exit_2(tmp_path, capsys):
    assert main(["serve"]) == 2
    assert main(["serve", str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err
    assert main(["serve", "--port", "70000", "x.json"]) == 2
