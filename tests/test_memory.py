import ctypes.util
import subprocess
import sys
import textwrap

import pytest

PATTERN = textwrap.dedent(
    """
    import sys
    import numpy as np
    from ptqtui import memory

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    big = np.ones(30 << 18, np.float32)  # a 30 MiB block freed: glibc's threshold rises to it
    del big
    before = rss()
    held, pins = [], []
    for _ in range(40):  # 40 x 8 MiB, each followed by a small block that pins the heap's top
        held.append(np.ones(2 << 20, np.float32))
        pins.append(np.ones(1000, np.float32))
    del held
    if sys.argv[1] == "released":
        memory.release()
    print(rss() - before)
    """
)


def _kept_mib(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PATTERN, mode], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
    reason="glibc's malloc only",
)
def test_large_arrays_freed_go_back_to_the_system_when_released():
    assert _kept_mib("kept") > 200  # glibc keeps the freed 320 MiB as heap
    assert _kept_mib("released") < 50
