"""One self-contained HTML page (inline CSS), readable offline."""

from __future__ import annotations

from html import escape
from typing import TextIO

from ptqtui.diagnosis import Diagnosis
from ptqtui.report.sections import sections

_CSS = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td{border-bottom:1px solid #ddd;padding:.25rem .5rem;
vertical-align:top}td:first-child{white-space:nowrap;color:#555}li.sub{list-style:none;color:#555}
"""


def write_html(diagnosis: Diagnosis, out: TextIO) -> None:
    title = "ptqtui diagnosis" + (f": {diagnosis.title}" if diagnosis.title else "")
    out.write(
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>{escape(title)}</h1>\n"
    )
    for section in sections(diagnosis):
        out.write(f"<h2>{escape(section.title)}</h2>\n")
        if section.rows:
            out.write("<table>\n")
            for key, value in section.rows:
                out.write(f"<tr><td>{escape(key)}</td><td>{escape(value)}</td></tr>\n")
            out.write("</table>\n")
        if section.lines:
            out.write("<ul>\n")
            for line in section.lines:
                cls = ' class="sub"' if line.startswith("    ") else ""
                out.write(f"<li{cls}>{escape(line.strip())}</li>\n")
            out.write("</ul>\n")
    out.write("</body></html>\n")
