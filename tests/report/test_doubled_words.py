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


def test_an_input_named_input_is_not_input_input() -> None:
    import dataclasses

    from ptqtui.report.document import input_label

    d = prepared_diagnosis()
    assert d.model is not None and d.model.inputs
    renamed = dataclasses.replace(d.model.inputs[0], name="input")
    d = dataclasses.replace(d, model=dataclasses.replace(d.model, inputs=(renamed,)))
    out = io.StringIO()
    write_report(d, "text", out, width=200)
    assert "input input" not in out.getvalue() and DOUBLED.findall(out.getvalue()) == []
    assert input_label("images") == "input images"
