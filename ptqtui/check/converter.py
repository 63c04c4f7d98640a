"""`ptqtui log LOG`: what the converter's own log says, alone (no model, no data)."""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ptqtui.analysis.converter import reading
from ptqtui.check.context import Context
from ptqtui.check.engine import run_rules
from ptqtui.check.findings import Finding, Severity
from ptqtui.check.registry import load_rules
from ptqtui.errors import UsageError
from ptqtui.inputs.mapper_log import MapperLog, iter_worst_nodes, load_mapper_log

LOG_SCHEMA = "ptqtui.converter-log/1"
LOG_FORMATS = ("text", "md", "json", "html")
FAIL_ON = ("critical", "major", "minor", "never")
LOG_CATEGORY = "converter"
EXIT_OK, EXIT_FINDINGS = 0, 1
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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def log_command(argv: Sequence[str], out: TextIO | None = None) -> int:
    """`ptqtui log LOG`; returns the exit code (0, 1; unreadable logs raise PtqInputError)."""
    parser = _Parser(
        prog="ptqtui log",
        description="Read the converter's hb_mapper_makertbin.log alone: samples, method, "
        "node and output tables, and what they mean. Exit 0 nothing at or above --fail-on, "
        "1 findings at or above it, 2 unreadable log.",
    )
    parser.add_argument("log", type=Path, metavar="LOG")
    parser.add_argument("--report", choices=LOG_FORMATS, default="text")
    parser.add_argument("-o", "--output", type=Path, metavar="PATH")
    parser.add_argument("--fail-on", choices=FAIL_ON, default="critical")
    parser.add_argument("--rules", type=Path, action="append", default=[], metavar="DIR")
    parser.add_argument("--debug", action="store_true")
    ns = parser.parse_args(list(argv))
    report = read_log(ns.log, ns.rules)
    if ns.output is not None:
        from ptqtui.cli import write_atomically

        write_atomically(ns.output, lambda fh: write_log_report(report, ns.report, fh))
    else:
        write_log_report(report, ns.report, out or sys.stdout)
    if ns.fail_on == "never":
        return EXIT_OK
    threshold = Severity.parse(ns.fail_on)
    return (
        EXIT_FINDINGS
        if report.findings and any(f.severity.at_least(threshold) for f in report.findings)
        else EXIT_OK
    )


# ---------------------------------------------------------------- writers


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


def write_log_report(report: LogReport, fmt: str, out: TextIO) -> None:
    if fmt == "json":
        json.dump(report.to_json(), out, indent=2)
        out.write("\n")
    elif fmt == "md":
        _write_md(report, out)
    elif fmt == "html":
        _write_html(report, out)
    else:
        _write_text(report, out)


def _worst(log: MapperLog) -> list[tuple[str, str, str, str]]:
    return [
        (n.name, n.type, f"{n.cosine:.6f}", n.dtype or "")
        for n in iter_worst_nodes(log, WORST_SHOWN)
    ]


def _outputs(log: MapperLog) -> list[tuple[str, ...]]:
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


def _finding_lines(f: Finding) -> list[str]:
    lines = [f"[{f.severity.value}] {f.code} {f.message}"]
    for e in f.evidence:
        text = f"{e.what}: {e.observed}"
        if e.expected:
            text += f" (expected {e.expected})"
        lines.append(f"    evidence: {text}")
    if f.fix:
        lines.append(f"    fix: {f.fix}")
    if f.remedy is not None and not f.remedy.is_empty():
        lines.append(f"    try: {f.remedy.describe()}")
    return lines


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*header).rstrip()] + [fmt.format(*r).rstrip() for r in rows]


OUTPUT_HEADER = ("output", "cosine", "L1", "L2", "Chebyshev", "reading")
WORST_HEADER = ("node", "type", "cosine", "dtype")


def _write_text(report: LogReport, out: TextIO) -> None:
    log = report.log
    for line in summary_lines(log):
        out.write(f"{line}\n")
    if log.outputs:
        out.write("\nmodel outputs (the converter's measure):\n")
        for line in _table(_outputs(log), OUTPUT_HEADER):
            out.write(f"  {line}\n")
    worst = _worst(log)
    if worst:
        out.write(f"\nlowest per-node cosine ({len(worst)} of {len(log.nodes)}):\n")
        for line in _table(worst, WORST_HEADER):
            out.write(f"  {line}\n")
    out.write(f"\nfindings: {len(report.findings) or 'none'}\n")
    for f in report.findings:
        for line in _finding_lines(f):
            out.write(f"  {line}\n")
    for code, reason in report.skipped:
        out.write(f"  skipped {code}: {reason}\n")
    out.write("\nwith the model and data (ptqtui MODEL.onnx -c CONFIG --mapper-log LOG), also:\n")
    for item in WOULD_ADD:
        out.write(f"  - {item}\n")


def _md_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    text = "| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
    return text + "".join("| " + " | ".join((f"`{r[0]}`", *r[1:])) + " |\n" for r in rows)


def _write_md(report: LogReport, out: TextIO) -> None:
    log = report.log
    out.write(f"# Converter log `{log.path.name}`\n\n")
    for line in summary_lines(log):
        out.write(f"- {line}\n")
    if log.outputs:
        out.write("\n## Model outputs\n\n" + _md_table(_outputs(log), OUTPUT_HEADER))
    worst = _worst(log)
    if worst:
        out.write("\n## Lowest per-node cosine\n\n" + _md_table(worst, WORST_HEADER))
    out.write("\n## Findings\n\n")
    if not report.findings:
        out.write("none\n")
    for f in report.findings:
        lines = _finding_lines(f)
        out.write(f"- **{f.severity.value}** `{f.code}` {f.message}\n")
        for line in lines[1:]:
            out.write(f"  - {line.strip()}\n")
    out.write("\n## With the model and data\n\n")
    for item in WOULD_ADD:
        out.write(f"- {item}\n")


def _write_html(report: LogReport, out: TextIO) -> None:
    out.write("<!doctype html><meta charset='utf-8'><title>ptqtui log</title>")
    out.write(f"<h1>Converter log {html.escape(report.log.path.name)}</h1><ul>")
    for line in summary_lines(report.log):
        out.write(f"<li>{html.escape(line)}</li>")
    out.write("</ul><h2>Findings</h2><ul>")
    for f in report.findings:
        lines = _finding_lines(f)
        out.write(f"<li><b>{html.escape(lines[0])}</b><pre>")
        out.write(html.escape("\n".join(line.strip() for line in lines[1:])))
        out.write("</pre></li>")
    out.write("</ul><h2>With the model and data</h2><ul>")
    for item in WOULD_ADD:
        out.write(f"<li>{html.escape(item)}</li>")
    out.write("</ul>\n")


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
