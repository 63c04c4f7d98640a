"""Sample thumbnails in the terminal: the terminal's graphics protocol (Sixel, Kitty) where it
has one, half-block characters (two pixels a cell, 24-bit colour) everywhere else.

textual-image finds the graphics protocol by asking the terminal when it is imported, which
works only before Textual takes the terminal, and it loads numpy: the CLI calls `prepare()`
just before the app starts; without it (tests, `ptqtui serve`, a pipe) half-blocks are drawn
by `HalfBlockImage`. PTQTUI_IMAGES=halfblock skips the question.
"""

from __future__ import annotations

import io
import os
import sys
from base64 import b64decode
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from textual.widget import Widget
from textual.widgets import Static

_graphics: Any = None  # the textual-image widget class when the terminal has a protocol


def prepare() -> None:
    """Ask the terminal for a graphics protocol (before the app starts; a TTY only)."""
    global _graphics
    if os.environ.get("PTQTUI_IMAGES") == "halfblock" or not sys.__stdout__:
        return
    if not sys.__stdout__.isatty():
        return
    try:  # importing textual-image asks the terminal; a pty without a size makes it divide by 0
        from textual_image.renderable import HalfcellImage, UnicodeImage
        from textual_image.renderable import Image as Detected
        from textual_image.widget import Image as AutoImage
    except Exception:  # any failure of the detection: our half blocks, which work everywhere
        return
    if Detected not in (HalfcellImage, UnicodeImage):
        _graphics = AutoImage


def decode_rgb(png: str) -> tuple[int, int, bytes]:
    """Width, height and RGB bytes of a base64 PNG."""
    from PIL import Image as PILImage  # lazy: only when a thumbnail is shown

    img = PILImage.open(io.BytesIO(b64decode(png))).convert("RGB")
    return img.width, img.height, img.tobytes()


class HalfBlocks:
    """A Rich renderable: each cell is an upper half block, top pixel as the foreground and
    the pixel under it as the background."""

    def __init__(self, width: int, height: int, rgb: bytes) -> None:
        self.width, self.height, self.rgb = width, height, rgb

    def _pixel(self, x: int, y: int) -> str:
        i = 3 * (y * self.width + x)
        r, g, b = self.rgb[i : i + 3]
        return f"#{r:02x}{g:02x}{b:02x}"

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for y in range(0, self.height, 2):
            for x in range(self.width):
                top = self._pixel(x, y)
                bottom = self._pixel(x, y + 1) if y + 1 < self.height else None
                yield Segment("▀", Style(color=top, bgcolor=bottom))
            yield Segment.line()


class HalfBlockImage(Static):
    """A thumbnail drawn in half blocks: any terminal with colour, any browser."""

    def __init__(self, png: str, **kwargs: Any) -> None:
        super().__init__(HalfBlocks(*decode_rgb(png)), **kwargs)


def image_widget(png: str, **kwargs: Any) -> Widget:
    """The graphics protocol's widget where `prepare()` found one, else half blocks."""
    if _graphics is not None:
        from PIL import Image as PILImage

        return _graphics(PILImage.open(io.BytesIO(b64decode(png))).convert("RGB"), **kwargs)
    return HalfBlockImage(png, **kwargs)


__all__ = ["HalfBlockImage", "HalfBlocks", "decode_rgb", "image_widget", "prepare"]
