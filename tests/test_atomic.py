"""write_atomically: the one way ptqtui writes a file."""

from __future__ import annotations

import os

import pytest

from ptqtui.atomic import write_atomically
from ptqtui.errors import PtqInputError


def test_writes_text_or_a_writer_with_an_ordinary_files_mode(tmp_path):
    old = os.umask(0o022)
    try:
        a = write_atomically(tmp_path / "a.txt", "one\r\ntwo\n")
        b = write_atomically(tmp_path / "b.txt", lambda fh: fh.write("three\n"))
    finally:
        os.umask(old)
    assert a.read_bytes() == b"one\r\ntwo\n"  # as given: no newline translation
    assert b.read_text() == "three\n"
    assert a.stat().st_mode & 0o777 == 0o644 == b.stat().st_mode & 0o777


def test_a_failing_writer_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "report.txt"
    target.write_text("old\n")

    def half(fh):
        fh.write("new, half")
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError):
        write_atomically(target, half)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.txt"]


def test_an_unwritable_place_is_one_line_naming_the_path(tmp_path):
    with pytest.raises(PtqInputError, match=r"no_dir.*does not exist"):
        write_atomically(tmp_path / "no_dir" / "x.txt", "x")
    target = tmp_path / "a_dir"
    target.mkdir()
    (target / "inside").write_text("keep")
    with pytest.raises(PtqInputError, match="a_dir: is a directory"):
        write_atomically(target, "x")  # a directory cannot be replaced by a file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_dir"]
