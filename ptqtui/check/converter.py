"""The core of `ptqtui log LOG`: what the converter's own log says, alone (no model, no
data): its facts and the converter rules' findings. The command line is `ptqtui.cli_log`;
the report is `report.document.build_log`'s."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ptqtui.analysis.converter import reading
from ptqtui.check.context import Context
from ptqtui.check.engine import run_rules
from ptqtui.check.findings import Finding
from ptqtui.check.registry import load_rules
from ptqtui.inputs.mapper_log import MapperLog, iter_worst_nodes, load_mapper_log

LOG_SCHEMA = "ptqtui.converter-log/1"
LOG_CATEGORY = "converter"
WORST_SHOWN = 10  # the converter's worst nodes listed

# What a full run adds to the log alone: said once here, shown by every writer.
WOULD_ADD = (
    "the simulator's per-node cosine beside the converter's, node by node, with a rank "
    "agreement on the worst nodes (do both point at the same nodes?)",
    "each node's sensitivity (only it quantized) and the accumulated-error curve: a sensitive "
    "node or error piling up along the model",
    "the calibration methods and percentiles measured on your data, and which int16 / CPU "
    "nodes reach the target, each with its measured gain",
    "checks of the calibration data itself (channel order, value range, layout, normalisation)",
)


@dataclass(frozen=True, slots=True)
class LogReport:
    """The log's facts, the converter rules' findings, and what a full run would add."""

    log: MapperLog
    findings: tuple[Finding, ...]
    skipped: tuple[tuple[str, str], ...]

    def to_json(self) -> dict[str, object]:
        log = dataclasses.asdict(self.log)
        log["path"] = str(self.log.path)
        return {
            "schema": LOG_SCHEMA,
            "log": _finite(log),
            "summary": {
                "cpu_nodes": [n.name for n in self.log.cpu_nodes],
                "subgraphs": len(self.log.subgraphs),
                "chosen_method": self.log.chosen_method,
            },
            "findings": [_finding_json(f) for f in self.findings],
            "skipped": [{"what": c, "reason": r} for c, r in self.skipped],
            "would_add": list(WOULD_ADD),
        }


def read_log(path: Path, rule_dirs: Sequence[Path] = ()) -> LogReport:
    """Parse the log and run the converter rules on it alone."""
    log = load_mapper_log(path)
    rules = tuple(r for r in load_rules(rule_dirs) if r.info.category == LOG_CATEGORY)
    run = run_rules(Context(mapper_log=log), rules)
    return LogReport(log, run.findings, tuple((s.code, s.reason) for s in run.skipped))


def summary_lines(log: MapperLog) -> list[str]:
    """What the log says, one fact a line (shared by the writers)."""
    lines = []
    state = "complete" if log.complete else "no end line: truncated or failed"
    lines.append(f"log: {log.path.name}, {log.lines} lines, {state}")
    if log.march:
        lines.append(f"march: {log.march}")
    if log.samples is not None:
        lines.append(f"calibration samples: {log.samples}")
    if log.method_run or log.chosen:
        method = log.method_run or "?"
        chosen = f", chose {log.chosen}" if log.chosen else ""
        flags = f" (per_channel {'on' if log.per_channel else 'off'}, asymmetric " + (
            f"{'on' if log.asymmetric else 'off'})"
        )
        lines.append(f"calibration: {method}{chosen}{flags}")
    if log.grid is not None:
        extra = f"; accepts similarity {log.grid.similarity:g}" if log.grid.similarity else ""
        lines.append(f"search grid: {log.grid.describe()}{extra}")
    if log.nodes:
        bpu = sum(1 for n in log.nodes if n.on == "BPU")
        lines.append(
            f"node table: {len(log.nodes)} rows ({bpu} BPU, {len(log.cpu_nodes)} CPU), "
            f"{len(log.subgraphs)} BPU subgraph(s)"
        )
    for s in log.dtype_settings:
        lines.append(f"{s.side} of {s.node} set to {s.dtype}")
    return lines


def worst_rows(log: MapperLog) -> list[tuple[str, str, str, str]]:
    return [
        (n.name, n.type, f"{n.cosine:.6f}", n.dtype or "")
        for n in iter_worst_nodes(log, WORST_SHOWN)
    ]


def output_rows(log: MapperLog) -> list[tuple[str, ...]]:
    return [
        (
            o.name,
            f"{o.cosine:.6f}",
            f"{o.l1:.6g}",
            f"{o.l2:.6g}",
            f"{o.chebyshev:.6g}",
            reading(o.cosine),
        )
        for o in log.outputs
    ]


OUTPUT_HEADER = ("output", "cosine", "L1", "L2", "Chebyshev", "reading")
WORST_HEADER = ("node", "type", "cosine", "dtype")


def _finding_json(f: Finding) -> dict[str, object]:
    data = dataclasses.asdict(f)
    data["severity"] = f.severity.value
    return _finite(_enums(data))  # type: ignore[return-value]


def _enums(value: object) -> object:
    import enum

    if isinstance(value, dict):
        return {k: _enums(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_enums(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _finite(value: object) -> object:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
