"""onnxruntime sessions that never print and never spin.

Its own log lines must not reach the user's terminal.

onnxruntime logs a failed run (say a batched probe of a model whose Reshape fixes batch 1:
`GEMM: Dimension mismatch`, `cannot be reshaped`) on the C-level stderr before raising; the
caller handles the exception, so the line is noise in the middle of the progress. Severity 4
(fatal) keeps only what precedes a crash.

onnxruntime's intra-op threads spin after each operator by default, waiting for the next. A
diagnosis runs the graph in several sessions one after another (segments, the exposing
sessions, a worker's own), and on a shared 2-core machine the idle sessions' spinning threads
took the cores from the running one. Measured at load ~9 (2 cores), a sample's pass with
spinning on / off: PP-OCRv4 det 640 whole graph 0.56 / 0.39 s, cut in 7 segments 0.89 /
0.41 s; EfficientNet-Lite1 240 0.118 / 0.085 s; the demo model 3 / 2 ms.
"""

from __future__ import annotations

import functools
from typing import Any

ORT_LOG_SEVERITY = 4  # onnxruntime's FATAL: errors are raised as exceptions, handled by callers


def session_options() -> Any:
    """SessionOptions whose session logs nothing below fatal (the default logger too) and
    whose threads sleep when idle."""
    import onnxruntime as ort  # lazy: slow to import, the TUI must start fast

    ort.set_default_logger_severity(ORT_LOG_SEVERITY)
    opts = ort.SessionOptions()
    opts.log_severity_level = ORT_LOG_SEVERITY
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if _shared_arena():
        opts.add_session_config_entry("session.use_env_allocators", "1")
    return opts


@functools.cache
def _shared_arena() -> bool:
    """One CPU arena for every session of the process (registered once): sessions run one
    after another, so it holds the largest run's memory, where one arena a session held the
    sum. Measured on PP-OCRv4 det 640 cut in 7 segments, 4 samples observed then 4 int8
    passes: peak RSS 698 -> 566 MiB. False where onnxruntime refuses it."""
    import onnxruntime as ort

    arena = ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR
    info = ort.OrtMemoryInfo("Cpu", arena, 0, ort.OrtMemType.DEFAULT)
    try:  # onnxruntime's defaults: no limit, blocks doubled as it grows (kSameAsRequested
        # fragmented it: 711 MiB held where doubling held 533)
        ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, -1, -1, -1))
    except Exception:  # onnxruntime's errors share no base class
        return False
    return True
