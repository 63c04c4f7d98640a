"""What may be read from the user's disk: regular files only, and no more bytes than trusted.

A FIFO blocks the reader forever, a device (`/dev/zero`) never ends, a sparse file claims
terabytes: each is refused from `stat` alone, before a byte is read.
"""

from __future__ import annotations

import enum
import stat
from dataclasses import dataclass
from pathlib import Path

from ptqtui.errors import PtqInputError


class FileKind(enum.Enum):
    """What a path turned out to be, symbolic links followed."""

    REGULAR = "a regular file"
    MISSING = "no such file"
    DANGLING_LINK = "a dangling symbolic link"
    LINK_LOOP = "a symbolic link that cannot be followed (a loop?)"
    UNREADABLE = "cannot be examined"
    DIRECTORY = "a directory"
    FIFO = "a FIFO (named pipe), not a regular file"
    DEVICE = "a device, not a regular file"
    SOCKET = "a socket, not a regular file"
    OTHER = "not a regular file"


@dataclass(frozen=True, slots=True)
class FileCheck:
    kind: FileKind
    size: int = 0
    reason: str | None = None  # the system's words when the kind is UNREADABLE

    def describe(self) -> str:
        if self.kind is FileKind.UNREADABLE:
            return f"cannot be examined: {self.reason}"
        if self.kind is FileKind.MISSING:
            return self.kind.value
        return f"is {self.kind.value}"


def examine(path: Path) -> FileCheck:
    """What `path` is, from `stat` alone (nothing is opened)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return FileCheck(FileKind.DANGLING_LINK if path.is_symlink() else FileKind.MISSING)
    except OSError as exc:
        if path.is_symlink():
            return FileCheck(FileKind.LINK_LOOP)
        return FileCheck(FileKind.UNREADABLE, reason=exc.strerror or str(exc))
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return FileCheck(FileKind.REGULAR, st.st_size)
    if stat.S_ISDIR(mode):
        return FileCheck(FileKind.DIRECTORY)
    if stat.S_ISFIFO(mode):
        return FileCheck(FileKind.FIFO)
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return FileCheck(FileKind.DEVICE)
    if stat.S_ISSOCK(mode):
        return FileCheck(FileKind.SOCKET)
    return FileCheck(FileKind.OTHER)


def check_regular_file(path: Path, expected: str) -> int:
    """The size of `path` if it is a regular file; else PtqInputError naming what it is."""
    found = examine(path)
    if found.kind is FileKind.REGULAR:
        return found.size
    if found.kind is FileKind.DIRECTORY:
        raise PtqInputError(path, f"is a directory, expected {expected}")
    raise PtqInputError(path, found.describe())


def read_bounded(path: Path, limit: int, expected: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (a larger one is refused unread)."""
    size = check_regular_file(path, expected)
    if size > limit:
        raise PtqInputError(path, f"{size} bytes is far too large for {expected}")
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise PtqInputError(path, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:  # it grew while we looked
        raise PtqInputError(path, f"more than {limit} bytes, far too large for {expected}")
    return data
