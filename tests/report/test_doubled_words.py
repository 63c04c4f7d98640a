"""No report line repeats a word ("input input", "the the")."""

from __future__ import annotations

import io
import re

from ptqtui.report import write_report
from tests.prepared import prepared_diagnosis

DOUBLED = re.compile(r"\b([A-Za-z_]{2,}) \1\b")


def test_the_text_report_has_no_doubled_word() -> None:
    out = io.StringIO()
    write_report(prepared_diagnosis(), "text", out, width=200)
    assert DOUBLED.findall(out.getvalue()) == []
    assert DOUBLED.findall("input input x") == ["input"]  # the check itself finds them
