"""Help and text output fit 80 columns and wrap rather than cut; --help names every subcommand."""

from __future__ import annotations

import dataclasses
import io

import pytest

from ptqtui import cli
from ptqtui.check.commands import explain, list_rules
from ptqtui.check.registry import load_rules
from tests.prepared import prepared_diagnosis

WIDTH = 80


def _widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def test_help_lists_every_subcommand_within_80_columns(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    assert _widest(text) <= WIDTH
    for name in cli.SUBCOMMANDS:
        assert f"{cli.PROG} {name}" in text, name


@pytest.mark.parametrize("name", cli.SUBCOMMANDS)
def test_subcommand_help_fits_80_columns(monkeypatch, capsys, name):
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    with pytest.raises(SystemExit):
        cli.main([name, "--help"])
    assert _widest(capsys.readouterr().out) <= WIDTH


def test_rules_and_explain_wrap_at_80_columns_and_keep_every_word():
    out = io.StringIO()
    list_rules(out, width=WIDTH)
    assert _widest(out.getvalue()) <= WIDTH
    for rule in load_rules(()):
        out = io.StringIO()
        explain(rule.info.code, out, width=WIDTH)
        text = out.getvalue()
        assert _widest(text) <= WIDTH, rule.info.code
        assert " ".join(rule.info.why.split()) in " ".join(text.split())  # wrapped, not cut


@pytest.mark.parametrize("columns, widest", [(None, WIDTH), ("120", 120), ("junk", WIDTH)])
def test_text_report_written_with_o_honours_columns(tmp_path, monkeypatch, columns, widest):
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    out = tmp_path / "report.txt"
    cli.emit(prepared_diagnosis(), "text", out)
    text = out.read_text(encoding="utf-8")
    assert _widest(text) <= widest
    if widest > WIDTH:
        assert _widest(text) > WIDTH  # the room is used, not ignored


def test_a_long_finding_title_is_wrapped_whole_in_a_saved_text_report(tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    d = prepared_diagnosis()
    long = "the calibration samples " + "and their many channels " * 12 + "end here"
    first = dataclasses.replace(d.findings[0], message=long)
    d = dataclasses.replace(d, findings=(first, *d.findings[1:]))
    out = tmp_path / "report.txt"
    cli.emit(d, "text", out)
    text = out.read_text(encoding="utf-8")
    assert _widest(text) <= WIDTH and "end here" in text
    assert long in " ".join(text.split())
