"""`ptqtui log LOG`, the command-line side: arguments, output, exit code. Reading the log and
running the converter rules is `ptqtui.check.converter.read_log`; the report is
`report.document.build_log`'s (text, md, html) or `report.json.write_log_json`'s."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ptqtui.atomic import write_atomically
from ptqtui.check.converter import LogReport, read_log
from ptqtui.check.findings import Severity
from ptqtui.cli_lint import _Parser
from ptqtui.errors import ExitCode
from ptqtui.request import FAIL_ON, REPORT_FORMATS


def log_command(argv: Sequence[str], out: TextIO | None = None) -> int:
    """`ptqtui log LOG`; returns the exit code (0, 1; unreadable logs raise PtqInputError)."""
    parser = _Parser(
        prog="ptqtui log",
        description="Read the converter's hb_mapper_makertbin.log alone: samples, method, "
        "node and output tables, and what they mean. Exit 0 nothing at or above --fail-on, "
        "1 findings at or above it, 2 unreadable log.",
    )
    parser.add_argument("log", type=Path, metavar="LOG")
    parser.add_argument("--report", choices=REPORT_FORMATS, default="text")
    parser.add_argument("-o", "--output", type=Path, metavar="PATH")
    parser.add_argument("--fail-on", choices=FAIL_ON, default="critical")
    parser.add_argument("--rules", type=Path, action="append", default=[], metavar="DIR")
    parser.add_argument("--debug", action="store_true")
    ns = parser.parse_args(list(argv))
    report = read_log(ns.log, ns.rules)
    if ns.output is not None:
        write_atomically(ns.output, lambda fh: write_log(report, ns.report, fh))
    else:
        write_log(report, ns.report, out or sys.stdout)
    if ns.fail_on == "never":
        return ExitCode.OK
    threshold = Severity.parse(ns.fail_on)
    worst = [f for f in report.findings if f.severity.at_least(threshold)]
    return ExitCode.FINDINGS if worst else ExitCode.OK


def write_log(report: LogReport, fmt: str, out: TextIO, *, width: int = 100) -> None:
    """The log report in `fmt` (text, md, html: the neutral document; json: its schema)."""
    from ptqtui.report.document import build_log

    if fmt == "json":
        from ptqtui.report.json import write_log_json

        write_log_json(report, out)
    elif fmt == "md":
        from ptqtui.report.markdown import render_markdown

        render_markdown(build_log(report), out)
    elif fmt == "html":
        from ptqtui.report.html import render_html

        render_html(build_log(report), f"ptqtui log {report.log.path.name}", out)
    else:
        from ptqtui.report.text import render_text

        render_text(build_log(report), out, width=width)
