"""Atomic writes, the one way ptqtui writes a file: a temp file beside the target, flushed to
disk, then renamed over it. A reader never sees half a file and a failure leaves none."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ptqtui.errors import PtqInputError


def write_atomically(path: str | Path, content: str | Callable[[TextIO], None]) -> Path:
    """Write `content` (text, or a function writing to a text stream) to `path` atomically.

    The file gets the mode an ordinary new file gets (0o666 less the umask, not mkstemp's
    0o600); text is written as given (no newline translation). An unwritable path raises a
    PtqInputError naming it; the temp file is removed on any failure."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise PtqInputError(path, f"cannot write: directory {directory} does not exist")
    if path.is_dir():
        raise PtqInputError(path, "is a directory; give a file name to write")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise PtqInputError(path, f"cannot write: {exc.strerror or exc}") from None
    try:
        # names that are not UTF-8 (lone surrogates) become \udcXX escapes: valid UTF-8 text,
        # and in JSON the same name again when read back
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace", newline="") as fh:
            if isinstance(content, str):
                fh.write(content)
            else:
                content(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise PtqInputError(path, f"cannot write: {exc.strerror or exc}") from None
        raise
    return path


def _umask() -> int:
    """The process umask (read by setting it, then restoring it at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
