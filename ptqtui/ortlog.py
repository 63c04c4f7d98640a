"""onnxruntime sessions that never print: its own log lines must not reach the user's terminal.

onnxruntime logs a failed run (say a batched probe of a model whose Reshape fixes batch 1:
`GEMM: Dimension mismatch`, `cannot be reshaped`) on the C-level stderr before raising; the
caller handles the exception, so the line is noise in the middle of the progress. Severity 4
(fatal) keeps only what precedes a crash.
"""

from __future__ import annotations

from typing import Any

ORT_LOG_SEVERITY = 4  # onnxruntime's FATAL: errors are raised as exceptions, handled by callers


def session_options() -> Any:
    """SessionOptions whose session logs nothing below fatal (the default logger too)."""
    import onnxruntime as ort  # lazy: slow to import, the TUI must start fast

    ort.set_default_logger_severity(ORT_LOG_SEVERITY)
    opts = ort.SessionOptions()
    opts.log_severity_level = ORT_LOG_SEVERITY
    return opts
