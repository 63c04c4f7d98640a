"""Report writers over a Diagnosis: text, markdown, JSON, HTML."""

from __future__ import annotations

from typing import TextIO

from ptqtui.diagnosis import Diagnosis


def write_report(diagnosis: Diagnosis, fmt: str, out: TextIO, *, width: int = 100) -> None:
    if fmt == "json":
        from ptqtui.report.json import write_json

        write_json(diagnosis, out)
    elif fmt == "md":
        from ptqtui.report.markdown import write_markdown

        write_markdown(diagnosis, out)
    elif fmt == "html":
        from ptqtui.report.html import write_html

        write_html(diagnosis, out)
    else:
        from ptqtui.report.text import write_text

        write_text(diagnosis, out, width=width)
