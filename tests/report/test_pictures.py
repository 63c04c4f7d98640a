"""Pictures in the reports: which picture a finding gets, and each writer's rendering of it."""

from __future__ import annotations

import dataclasses
import io
import re

from ptqtui.check.findings import Finding, Severity
from ptqtui.report import write_report
from ptqtui.report.pictures import PictureKind, picture_of, pictures
from tests.prepared import prepared_with_pictures


def _render(fmt: str) -> str:
    out = io.StringIO()
    write_report(prepared_with_pictures(), fmt, out, width=100)
    return out.getvalue()


def _by_code(code: str):
    d = prepared_with_pictures()
    return next(f for f in d.findings if f.code == code), d


def test_each_finding_gets_the_picture_its_remedy_points_at():
    d = prepared_with_pictures()
    kinds = {f.code: p.kind for f, p in pictures(d)}
    assert kinds == {
        "PTQ001": PictureKind.SAMPLES,  # swap channels: the samples, as given and swapped
        "PTQ103": PictureKind.SAMPLES,  # drop samples: the ones to drop
        "PTQ301": PictureKind.WEIGHTS,  # per_channel: the weight ranges
        "PTQ302": PictureKind.HISTOGRAM,  # a percentile: the histogram with the thresholds
        "PTQ304": PictureKind.SENSITIVITY,  # int16 for a node: the sensitivity ranking
    }
    f, _ = _by_code("PTQ301")
    [weights] = [p for g, p in pictures(d) if g.code == "PTQ301"]
    assert [n.name for n in weights.nodes] == list(f.related)


def test_a_finding_without_remedy_shows_its_nodes_histograms_and_one_without_nodes_none():
    f, d = _by_code("PTQ302")
    plain = dataclasses.replace(f, remedy=None)
    picture = picture_of(plain, d.thumbnails, d.analysis.nodes)
    assert picture is not None and picture.kind is PictureKind.HISTOGRAM
    assert picture_of(Finding("PTQ104", Severity.INFO, "m"), d.thumbnails, d.analysis.nodes) is None


def test_html_is_self_contained_and_draws_every_picture():
    page = _render("html")
    assert page.count('<img src="data:image/png;base64,') == 4
    assert "|x| at the input of block1/Add" in page and "per-tensor max 3.85" in page
    assert re.search(r'<line [^>]*stroke="#b00020" stroke-width="2"', page)  # the one in use
    # nothing from the network: no scripts, stylesheets or images by URL
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script" not in page and "<link" not in page


def test_markdown_has_the_threshold_table_and_text_bars():
    md = _render("md")
    assert "| p99.99% | 4.7 | in use |" in md
    assert "<- p99.99% (in use)" in md
    assert "channels   0-31  ▁▁▁█" in md
    assert "| 0001.bin: swap channels | 32x32 |" in md


def test_text_report_fits_80_columns_with_pictures():
    out = io.StringIO()
    write_report(prepared_with_pictures(), "text", out, width=80)
    text = out.getvalue()
    assert "<- kl" in text and max(len(line) for line in text.splitlines()) <= 80
