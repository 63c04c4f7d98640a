"""Run one benchmark configuration in a fresh Python process and read its figures back.

Each configuration gets its own process so that its peak RSS (``ru_maxrss`` of that process
alone) is its own: nothing measured earlier in the run can inflate it.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_worker(module: str, config: dict, timeout: float = 3600) -> dict:
    """``python -m module --worker JSON`` in a subprocess; its last stdout line is JSON, its
    stderr passes through."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", module, "--worker", json.dumps(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,  # the worker's stderr (its progress, a traceback) goes through
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode} (the worker's stderr is above)"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> str:
    cpus = os.cpu_count()
    try:
        import onnxruntime as ort

        ort_version = ort.__version__
    except ImportError:
        ort_version = "?"
    flags = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = "VNNI" if "vnni" in text else "no VNNI"
    except OSError:
        pass
    return (
        f"{platform.machine()}, {cpus} cores ({flags}), Python {platform.python_version()}, "
        f"onnxruntime {ort_version}; the cores are shared with other jobs, so times are noisy"
    )


def emit(result: dict) -> None:
    """Worker side: print the result as the last line of stdout."""
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(result), flush=True)
