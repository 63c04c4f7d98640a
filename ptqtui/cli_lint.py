"""`ptqtui lint CONFIG.yaml ...`, the command-line side: arguments, output, exit code. The
checking itself is `ptqtui.check.commands.lint_config`; the report is `report.document`'s."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ptqtui.atomic import write_atomically
from ptqtui.check.commands import LINT_CATEGORY, LintResult, lint_config
from ptqtui.check.findings import Severity
from ptqtui.check.registry import load_rules
from ptqtui.errors import ExitCode, UsageError
from ptqtui.request import FAIL_ON, REPORT_FORMATS


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2) instead of printing and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def lint_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ptqtui lint",
        description="Check hb_mapper configs alone (no data needed; node names are checked "
        "when the config's onnx_model exists). Exit 0 clean, 1 findings at or above "
        "--fail-on, 2 unreadable config or bad usage.",
    )
    parser.add_argument("configs", nargs="+", type=Path, metavar="CONFIG.yaml")
    parser.add_argument("--model", type=Path, metavar="MODEL.onnx", help="model for node names")
    parser.add_argument("--report", choices=REPORT_FORMATS, default="text")
    parser.add_argument("-o", "--output", type=Path, metavar="PATH")
    parser.add_argument("--fail-on", choices=FAIL_ON, default="critical")
    parser.add_argument("--rules", type=Path, action="append", default=[], metavar="DIR")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--debug", action="store_true")
    return parser


def lint(argv: Sequence[str], out: TextIO | None = None) -> int:
    """Run the config rules on every CONFIG.yaml; returns the exit code (0, 1 or 2)."""
    ns = lint_parser().parse_args(list(argv))
    rules = tuple(r for r in load_rules(ns.rules) if r.info.category == LINT_CATEGORY)
    results = [lint_config(path, rules, model=ns.model) for path in ns.configs]
    for r in results:
        if r.error and not ns.quiet:
            print(f"ptqtui: {r.path}: {r.error}", file=sys.stderr)
    if ns.output is not None:
        write_atomically(ns.output, lambda fh: write_lint(results, ns.report, fh))
    else:
        write_lint(results, ns.report, out or sys.stdout)
    return lint_exit_code(results, ns.fail_on)


def lint_exit_code(results: Sequence[LintResult], fail_on: str) -> ExitCode:
    if any(r.error for r in results):
        return ExitCode.USAGE
    if fail_on == "never":
        return ExitCode.OK
    threshold = Severity.parse(fail_on)
    worst = [f for r in results for f in r.findings if f.severity.at_least(threshold)]
    return ExitCode.FINDINGS if worst else ExitCode.OK


def write_lint(results: Sequence[LintResult], fmt: str, out: TextIO, *, width: int = 100) -> None:
    """The lint report in `fmt` (text, md, html: the neutral document; json: its schema)."""
    from ptqtui.report.document import build_lint

    if fmt == "json":
        from ptqtui.report.json import write_lint_json

        write_lint_json(results, out)
    elif fmt == "md":
        from ptqtui.report.markdown import render_markdown

        render_markdown(build_lint(results), out)
    elif fmt == "html":
        from ptqtui.report.html import render_html

        render_html(build_lint(results), "ptqtui lint", out)
    else:
        from ptqtui.report.text import render_text

        render_text(build_lint(results), out, width=width)
