"""`ptqtui rules`, `ptqtui explain CODE` and `ptqtui lint CONFIG.yaml ...`."""

from __future__ import annotations

import argparse
import enum
import html
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from ptqtui.check.context import Context
from ptqtui.check.engine import RuleRun, run_rules
from ptqtui.check.findings import Finding, Severity
from ptqtui.check.registry import Rule, find_rule, load_rules
from ptqtui.errors import PtqInputError, UsageError

LINT_SCHEMA = "ptqtui.lint/1"
LINT_FORMATS = ("text", "md", "json", "html")
FAIL_ON = ("critical", "major", "minor", "never")
EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT = 0, 1, 2  # as a full run (cli.ExitCode)
LINT_CATEGORY = "config"


def list_rules(out: TextIO, rule_dirs: Sequence[Path] = ()) -> None:
    """One line per rule: code, default severity, name, title."""
    rules = load_rules(rule_dirs)
    if not rules:
        out.write("No rules are installed.\n")
        return
    for rule in rules:
        info = rule.info
        out.write(f"{info.code}  {info.severity.value:<8}  {info.name:<32} {info.title}\n")


def explain(code: str, out: TextIO, rule_dirs: Sequence[Path] = ()) -> None:
    """A rule's title, why, fix and example; UsageError for an unknown code."""
    rule = find_rule(load_rules(rule_dirs), code)
    if rule is None:
        raise UsageError(f"no rule {code!r}; 'ptqtui rules' lists them")
    info = rule.info
    out.write(f"{info.code} {info.name} ({info.category}, default {info.severity.value})\n\n")
    out.write(f"{info.title}\n\nWhy: {info.why}\n\nFix: {info.fix}\n")
    if info.needs:
        out.write(f"\nNeeds: {', '.join(info.needs)}\n")
    if info.example:
        out.write("\nExample:\n")
        for line in info.example.splitlines():
            out.write(f"  {line}\n")
    if not rule.source.startswith("ptqtui.rules."):
        out.write(f"\nFrom: {rule.source}\n")


# ---------------------------------------------------------------- lint


@dataclass(frozen=True, slots=True)
class LintResult:
    path: str
    findings: tuple[Finding, ...]
    skipped: tuple[tuple[str, str], ...]  # (code, reason)
    notes: tuple[str, ...]
    error: str | None = None  # the config could not be read


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _lint_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ptqtui lint",
        description="Check hb_mapper configs alone (no data needed; node names are checked "
        "when the config's onnx_model exists). Exit 0 clean, 1 findings at or above "
        "--fail-on, 2 unreadable config or bad usage.",
    )
    parser.add_argument("configs", nargs="+", type=Path, metavar="CONFIG.yaml")
    parser.add_argument("--model", type=Path, metavar="MODEL.onnx", help="model for node names")
    parser.add_argument("--report", choices=LINT_FORMATS, default="text")
    parser.add_argument("-o", "--output", type=Path, metavar="PATH")
    parser.add_argument("--fail-on", choices=FAIL_ON, default="critical")
    parser.add_argument("--rules", type=Path, action="append", default=[], metavar="DIR")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--debug", action="store_true")
    return parser


def lint(argv: Sequence[str], out: TextIO | None = None) -> int:
    """Run the config rules on every CONFIG.yaml; returns the exit code (0, 1 or 2)."""
    ns = _lint_parser().parse_args(list(argv))
    rules = tuple(r for r in load_rules(ns.rules) if r.info.category == LINT_CATEGORY)
    results = [lint_config(path, rules, model=ns.model) for path in ns.configs]
    for r in results:
        if r.error and not ns.quiet:
            print(f"ptqtui: {r.path}: {r.error}", file=sys.stderr)
    if ns.output is not None:
        with open(ns.output, "w", encoding="utf-8") as fh:
            write_lint(results, ns.report, fh)
    else:
        write_lint(results, ns.report, out or sys.stdout)
    if any(r.error for r in results):
        return EXIT_BAD_INPUT
    if ns.fail_on == "never":
        return EXIT_OK
    threshold = Severity.parse(ns.fail_on)
    worst = [f for r in results for f in r.findings if f.severity.at_least(threshold)]
    return EXIT_FINDINGS if worst else EXIT_OK


def lint_config(path: Path, rules: Sequence[Rule], *, model: Path | None = None) -> LintResult:
    """The config rules on one YAML file, with its model when the file exists."""
    from ptqtui.inputs.config import load_config
    from ptqtui.inputs.model import load_model

    try:
        config = load_config(path)
    except PtqInputError as exc:
        problem = f"line {exc.line}: {exc.problem}" if exc.line is not None else exc.problem
        return LintResult(str(path), (), (), (), error=problem)
    notes: list[str] = []
    missing: dict[str, str] = {}
    graph = None
    model_path = model or config.model_path
    if model_path is None:
        missing["graph"] = f"{config.path.name} names no onnx_model; node names not checked"
    elif not model_path.exists():
        missing["graph"] = f"model {model_path} not found; node names not checked"
        notes.append(missing["graph"])
    else:
        try:
            graph = load_model(model_path)
        except PtqInputError as exc:
            missing["graph"] = f"model not read ({exc.one_line()}); node names not checked"
            notes.append(missing["graph"])
    ctx = Context(config=config, graph=graph, missing=missing)
    run: RuleRun = run_rules(ctx, rules)
    return LintResult(
        str(path),
        run.findings,
        tuple((s.code, s.reason) for s in run.skipped),
        tuple(notes),
    )


def _counts(findings: Sequence[Finding]) -> str:
    parts = []
    for sev in Severity:
        n = sum(1 for f in findings if f.severity is sev)
        if n:
            parts.append(f"{n} {sev.value}")
    return ", ".join(parts)


def write_lint(results: Sequence[LintResult], fmt: str, out: TextIO) -> None:
    if fmt == "json":
        json.dump(_lint_json(results), out, indent=2)
        out.write("\n")
    elif fmt == "md":
        _write_md(results, out)
    elif fmt == "html":
        _write_html(results, out)
    else:
        _write_text(results, out)


def _finding_json(f: Finding) -> dict[str, object]:
    data = asdict(f)
    data["severity"] = f.severity.value
    data["remedy"] = _plain(data["remedy"])  # its enums (input fix, placement, dtype) as values
    return data


def _plain(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _lint_json(results: Sequence[LintResult]) -> dict[str, object]:
    return {
        "schema": LINT_SCHEMA,
        "configs": [
            {
                "path": r.path,
                "error": r.error,
                "findings": [_finding_json(f) for f in r.findings],
                "skipped": [{"what": c, "reason": why} for c, why in r.skipped],
                "notes": list(r.notes),
            }
            for r in results
        ],
    }


def _finding_lines(f: Finding) -> list[str]:
    lines = [f"[{f.severity.value}] {f.code} {f.message}"]
    for e in f.evidence:
        text = f"{e.what}: {e.observed}"
        if e.expected:
            text += f" (expected {e.expected})"
        if e.where:
            text += f" at {e.where}"
        lines.append(f"    evidence: {text}")
    if f.fix:
        lines.append(f"    fix: {f.fix}")
    if f.remedy is not None and not f.remedy.is_empty():
        lines.append(f"    change: {f.remedy.describe()}")
    return lines


def _write_text(results: Sequence[LintResult], out: TextIO) -> None:
    for r in results:
        if r.error:
            out.write(f"{r.path}: error: {r.error}\n")
            continue
        summary = _counts(r.findings) or "clean"
        out.write(f"{r.path}: {summary}\n")
        for f in r.findings:
            for line in _finding_lines(f):
                out.write(f"  {line}\n")
        for note in r.notes:
            out.write(f"  note: {note}\n")


def _write_md(results: Sequence[LintResult], out: TextIO) -> None:
    out.write("# ptqtui lint\n\n")
    for r in results:
        out.write(f"## `{r.path}`\n\n")
        if r.error:
            out.write(f"**error**: {r.error}\n\n")
            continue
        if not r.findings:
            out.write("clean\n\n")
        for f in r.findings:
            out.write(f"- **{f.severity.value}** `{f.code}` {f.message}\n")
            for line in _finding_lines(f)[1:]:
                out.write(f"  - {line.strip()}\n")
        for note in r.notes:
            out.write(f"- note: {note}\n")
        out.write("\n")


def _write_html(results: Sequence[LintResult], out: TextIO) -> None:
    out.write("<!doctype html><meta charset='utf-8'><title>ptqtui lint</title><h1>ptqtui lint</h1>")
    for r in results:
        out.write(f"<h2>{html.escape(r.path)}</h2>")
        if r.error:
            out.write(f"<p><b>error</b>: {html.escape(r.error)}</p>")
            continue
        if not r.findings:
            out.write("<p>clean</p>")
        out.write("<ul>")
        for f in r.findings:
            lines = _finding_lines(f)
            out.write(f"<li><b>{html.escape(lines[0])}</b><pre>")
            out.write(html.escape("\n".join(line.strip() for line in lines[1:])))
            out.write("</pre></li>")
        out.write("</ul>")
    out.write("\n")
