"""Plain text report, wrapped to the terminal width."""

from __future__ import annotations

import textwrap
from typing import TextIO

from ptqtui.diagnosis import Diagnosis
from ptqtui.report.sections import sections


def write_text(diagnosis: Diagnosis, out: TextIO, *, width: int = 100) -> None:
    width = max(width, 60)
    title = "ptqtui diagnosis" + (f": {diagnosis.title}" if diagnosis.title else "")
    out.write(f"{title}\n{'=' * min(len(title), width)}\n")
    for section in sections(diagnosis):
        out.write(f"\n{section.title}\n{'-' * min(len(section.title), width)}\n")
        label_width = min(max((len(k) for k, _ in section.rows), default=0), 24)
        for key, value in section.rows:
            prefix = f"  {key:<{label_width}}  "
            wrapped = textwrap.wrap(
                value, width=width, initial_indent=prefix, subsequent_indent=" " * len(prefix)
            )
            out.write("\n".join(wrapped or [prefix.rstrip()]) + "\n")
        for line in section.lines:
            indent = len(line) - len(line.lstrip())
            wrapped = textwrap.wrap(
                line.strip(),
                width=width,
                initial_indent="  " + " " * indent,
                subsequent_indent="  " + " " * (indent + 4),
            )
            out.write("\n".join(wrapped) + "\n")
