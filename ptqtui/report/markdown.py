"""Markdown report, for tickets and code-hosting sites."""

from __future__ import annotations

from typing import TextIO

from ptqtui.diagnosis import Diagnosis
from ptqtui.report.sections import sections


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_markdown(diagnosis: Diagnosis, out: TextIO) -> None:
    title = "ptqtui diagnosis" + (f": {diagnosis.title}" if diagnosis.title else "")
    out.write(f"# {title}\n")
    for section in sections(diagnosis):
        out.write(f"\n## {section.title}\n\n")
        if section.rows:
            out.write("| | |\n|---|---|\n")
            for key, value in section.rows:
                out.write(f"| {_cell(key)} | {_cell(value)} |\n")
        for line in section.lines:
            stripped = line.strip()
            if line.startswith("    "):
                out.write(f"  - {stripped}\n")
            else:
                out.write(f"- {stripped}\n")
