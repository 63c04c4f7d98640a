"""JSON reports: the Diagnosis itself (`"schema": "ptqtui.diagnosis/2"`, docs/report-schema.md),
and the lint results (`"schema": "ptqtui.lint/1"`)."""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from ptqtui.diagnosis import Diagnosis

if TYPE_CHECKING:
    from ptqtui.check.commands import LintResult
    from ptqtui.check.converter import LogReport

LINT_SCHEMA = "ptqtui.lint/1"


def write_json(diagnosis: Diagnosis, out: TextIO) -> None:
    json.dump(diagnosis.to_json(), out, indent=2, allow_nan=False, ensure_ascii=False)
    out.write("\n")


def write_lint_json(results: Sequence[LintResult], out: TextIO) -> None:
    """Every config's path, error, findings, skipped rules and notes."""
    data = {
        "schema": LINT_SCHEMA,
        "configs": [
            {
                "path": r.path,
                "error": r.error,
                "findings": [dataclasses.asdict(f) for f in r.findings],
                "skipped": [{"what": code, "reason": why} for code, why in r.skipped],
                "notes": list(r.notes),
            }
            for r in results
        ],
    }
    json.dump(data, out, indent=2, ensure_ascii=False, default=_plain)
    out.write("\n")


def _plain(value: Any) -> Any:
    """Enums (severity, remedy vocabularies) as their values."""
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON")


def write_log_json(report: LogReport, out: TextIO) -> None:
    """`ptqtui log --report json`: the log's facts, findings and what a full run adds."""
    json.dump(report.to_json(), out, indent=2, ensure_ascii=False)
    out.write("\n")
