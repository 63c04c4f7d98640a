"""Memory given back to the system: a diagnosis allocates and frees large arrays all run long.

glibc's malloc serves large blocks from its heap once a freed block raised its dynamic mmap
threshold, and keeps the freed heap: after the observation pass of a 640x640 detector (one
segment's 597 MiB of activations a sample, allocated and dropped) the process held 760 MiB of
which 510 MiB were free heap. ``release`` (``malloc_trim``) gives it back: after each
observed sample and each analysis stage. A fixed mmap threshold (every large array in its own
mapping) kept the observation's peak lower still (553 against 769 MiB on 8 samples) but
doubled its CPU time (12.9 against 7.4 s): each temporary array was mapped and zeroed afresh.
Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim  # noqa: B018 (glibc only)
    except (OSError, AttributeError):
        return None
    return libc


def release() -> None:
    """Give the free heap back to the system (after a stage that dropped large arrays)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
