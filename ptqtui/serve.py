"""`ptqtui serve`: the TUI in a browser, through textual-serve, for one user.

Bound to 127.0.0.1 by default (reach it from a laptop with an SSH port forward). Every
request needs the token printed in the URL: the first page sets it as an HttpOnly cookie
that the page's own requests (scripts, the websocket) then carry; anything without it gets
403, so another user of the same machine cannot attach to the session. The page loads
nothing from the network (the upstream page asks Google for a font; ours does not).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import secrets
import shlex
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

COOKIE = "ptqtui_token"
SERVED_ENV = "PTQTUI_SERVED"  # set for the app processes: run the TUI although not on a TTY
_FONT_LINK = '<link\n      rel="stylesheet"\n      href="https://fonts.googleapis.com/'


def app_command(args: Sequence[str]) -> str:
    """The shell command textual-serve runs per browser session: this ptqtui, these args."""
    return shlex.join([sys.executable, "-m", "ptqtui", *args])


def free_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one), kept open for the server."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(16)
    sock.set_inheritable(False)
    return sock


def page_template() -> str:
    """textual-serve's page without the font it would fetch from the network."""
    import textual_serve

    text = (Path(textual_serve.__file__).parent / "templates" / "app_index.html").read_text()
    start = text.find(_FONT_LINK)
    if start >= 0:
        end = text.index("/>", start) + 2
        text = text[:start] + text[end:]
    return text


def make_server(command: str, token: str, title: str) -> Any:
    """A textual-serve Server whose every route needs `token`, with relative URLs (it works
    behind an SSH port forward on any local port)."""
    import aiohttp_jinja2
    import jinja2
    from aiohttp import web
    from textual_serve.server import Server

    @web.middleware
    async def require_token(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        given = request.query.get("token") or request.cookies.get(COOKIE) or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise web.HTTPForbidden(
                text="ptqtui serve: open the URL ptqtui printed, with its token\n"
            )
        response = await handler(request)
        if "token" in request.query and not response.prepared:
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
        return response

    class TokenServer(Server):
        async def _make_app(self) -> web.Application:
            app = web.Application(middlewares=[require_token])
            loader = jinja2.DictLoader({"app_index.html": page_template()})
            aiohttp_jinja2.setup(app, loader=loader)
            app.add_routes(
                [
                    web.get("/", self.handle_index, name="index"),
                    web.get("/ws", self.handle_websocket, name="websocket"),
                    web.get("/download/{key}", self.handle_download, name="download"),
                    web.static("/static", self.statics_path, name="static"),
                ]
            )
            return app

        async def handle_index(self, request: web.Request) -> web.StreamResponse:
            scheme = "wss" if request.secure else "ws"
            context = {
                "font_size": 16,
                "app_websocket_url": f"{scheme}://{request.host}/ws",
                "config": {"static": {"url": "/static/"}},
                "application": {"name": self.title},
            }
            return aiohttp_jinja2.render_template("app_index.html", request, context)

    return TokenServer(command, title=title)


def serve(
    args: Sequence[str],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    title: str = "ptqtui",
    out: Any = None,
) -> int:
    """Serve `ptqtui ARGS` until Ctrl+C or SIGTERM; prints the URL (with its token) first."""
    from aiohttp import web

    out = out or sys.stdout
    token = secrets.token_urlsafe(18)
    sock = free_socket(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    os.environ[SERVED_ENV] = "1"
    server = make_server(app_command(args), token, title)
    print(f"ptqtui serve: http://{shown}:{bound}/?token={token}", file=out, flush=True)
    if host in ("127.0.0.1", "localhost", "::1"):
        print(
            f"ptqtui serve: from another machine: ssh -N -L {bound}:localhost:{bound} "
            "USER@THIS-HOST, then open the URL there; Ctrl+C stops",
            file=out,
            flush=True,
        )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def stop() -> None:
        raise web.GracefulExit()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(sig, stop)
    web.run_app(
        server._make_app(),
        sock=sock,
        handle_signals=False,
        loop=loop,
        print=None,
        access_log=None,
    )
    return 0
