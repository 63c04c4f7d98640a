"""Report writers against golden files, on a prepared Diagnosis.

After an intended change, regenerate with PTQTUI_UPDATE_GOLDEN=1 and read the diff.
"""

from __future__ import annotations

import io
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ptqtui.diagnosis import Diagnosis
from ptqtui.report import write_report
from tests.prepared import prepared_diagnosis

GOLDEN = Path(__file__).parent / "golden"
FORMATS = {"text": "txt", "md": "md", "html": "html", "json": "json"}


def render(fmt: str, width: int = 80, diagnosis: Diagnosis | None = None) -> str:
    out = io.StringIO()
    write_report(diagnosis or prepared_diagnosis(), fmt, out, width=width)
    return out.getvalue()


@pytest.mark.parametrize("fmt", FORMATS)
def test_writer_matches_its_golden_file(fmt, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    text = render(fmt)
    golden = GOLDEN / f"prepared.{FORMATS[fmt]}"
    if os.environ.get("PTQTUI_UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_text_fits_80_columns_and_has_no_escape_codes_when_piped():
    text = render("text", 80)
    assert "\x1b[" not in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_text_is_coloured_on_a_terminal_unless_no_color(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    out = Tty()
    write_report(prepared_diagnosis(), "text", out, width=100)
    assert "\x1b[" in out.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    out = Tty()
    write_report(prepared_diagnosis(), "text", out, width=100)
    assert "\x1b[" not in out.getvalue()


@pytest.mark.parametrize("fmt", ["text", "md", "html"])
def test_every_format_says_the_same_things(fmt):
    text = render(fmt, 120)
    d = prepared_diagnosis()
    for needle in [
        "PTQ001", "PTQ301", "PTQ304",  # findings
        "Feed RGB calibration data", "0.9871", "0.9950",  # plan with measured effect
        "+  per_channel: true",  # config diff
        "head/Gemm", "max, max_percentile 0.9999",  # node table, sweep
        "Accumulated error", "PTQ004", "needs --raw-dir",  # curve, skipped
        d.version, "seed",
        "abababababababab",  # input hashes
    ]:  # fmt: skip
        assert needle in text.replace("&#x27;", "'"), f"{fmt} lacks {needle!r}"


def test_json_is_the_diagnosis_and_reads_back():
    data = json.loads(render("json"))
    assert data["schema"] == "ptqtui.diagnosis/2"
    assert Diagnosis.from_json(data) == prepared_diagnosis()
    assert len(data["analysis"]["nodes"]) == 12  # all nodes, not just the worst


def test_html_is_self_contained_and_well_formed():
    text = render("html")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), "no external resources"
    # sensitivity bars, the accumulated-error curve, and the findings' pictures: PTQ301's remedy
    # is per-channel weights, so the weight ranges of its two nodes
    assert text.count("<svg") == 4
    assert text.count('aria-label="PTQ301: max |w| per output channel') == 2

    class Checker(HTMLParser):
        VOID = frozenset({"meta", "br", "img", "input", "link", "hr"})

        def __init__(self) -> None:
            super().__init__()
            self.stack: list[str] = []

        def handle_starttag(self, tag, attrs):
            if tag not in self.VOID:
                self.stack.append(tag)

        def handle_startendtag(self, tag, attrs):
            pass

        def handle_endtag(self, tag):
            assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
            self.stack.pop()

    checker = Checker()
    checker.feed(text)
    assert checker.stack == []


def test_markdown_tables_have_matching_columns():
    for block in render("md").split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln.startswith("|")]
        if lines:
            counts = {ln.replace("\\|", "").count("|") for ln in lines}
            assert len(counts) == 1, block


def test_a_diagnosis_without_analysis_or_plan_still_reports():
    from dataclasses import replace

    bare = replace(prepared_diagnosis(), analysis=None, plan=None, findings=())
    for fmt in FORMATS:
        text = render(fmt, 80, bare)
        assert text
    assert "No findings." in render("text", 80, bare)


def test_text_that_looks_like_markup_is_printed_as_is():
    from dataclasses import replace

    from ptqtui.check.findings import Evidence

    d = prepared_diagnosis()
    odd = replace(
        d.findings[0],
        message="files in [/data/calib] and [b]bold[/b]",
        evidence=(Evidence("dir [/x]", "[red]1[/]", None, "[/data/calib]"),),
    )
    text = render("text", 100, replace(d, findings=(odd,)))
    assert "[/data/calib]" in text and "[red]1[/]" in text and "[b]bold[/b]" in text
