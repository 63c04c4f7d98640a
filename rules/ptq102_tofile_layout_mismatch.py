"""PTQ102: .bin files written in one layout and read in the other; files of mixed sizes."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from typing import TYPE_CHECKING

import numpy as np
from ptqtui.rules._remedies import input_remedy

from ptqtui.check.context import OTHER_LAYOUT
from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.inputs.data import IMAGE_SUFFIXES, NPY_SUFFIXES
from ptqtui.remedy import InputFix

if TYPE_CHECKING:
    from ptqtui.check.context import Context

RULE = RuleInfo(
    code="PTQ102",
    name="tofile-layout-mismatch",
    category="data",
    severity=Severity.CRITICAL,
    title="Calibration files were written NHWC and are read NCHW (or the reverse)",
    why="Read in the wrong layout, every image becomes interleaved noise: calibration sees "
    "nothing like the real inputs and the scales are wrong everywhere.",
    fix="Write the files in input_layout_train (arr.transpose(0, 3, 1, 2) for NHWC -> NCHW) "
    "before numpy.tofile, and write every file with the same shape and dtype.",
    needs=("sample_stats",),
    example="[critical] PTQ102 the .bin files of input images look written NHWC but are read "
    "NCHW: read NHWC they are 4.2x smoother (median over 32 files)",
)

# Natural images read in the right layout have neighbour differences well below their spread;
# read in the wrong one, neighbours are other channels or rows: several times rougher.
SMOOTHER_RATIO = 0.5  # the other reading is at least 2x smoother ...
AGREEING_SHARE = 0.6  # ... on this share of the files
LISTED = 5


def check(ctx: Context) -> list[Finding]:
    sset = ctx.sample_stats
    layouts = {lay.name: lay for lay in ctx.calibration.layouts}
    findings = []
    for name in sset.inputs:
        ratios = []
        for s in sset.of(name):
            if s.smoothness is None:
                continue
            read, other = s.smoothness
            if math.isfinite(read) and math.isfinite(other) and read > 0:
                ratios.append(other / read)
        if len(ratios) < 2:
            continue
        agreeing = sum(r < SMOOTHER_RATIO for r in ratios) / len(ratios)
        median = statistics.median(ratios)
        if median < SMOOTHER_RATIO and agreeing >= AGREEING_SHARE:
            declared = layouts[name].layout or "NCHW"
            measured = f"roughness ratio median {median:.2f} over {len(ratios)} files"
            verdict = next((v for v in ctx.maybe("probe") or () if v.input == name), None)
            if verdict is not None and verdict.classifier:
                measured += "; " + verdict.measured(OTHER_LAYOUT)
            other = "NHWC" if declared == "NCHW" else "NCHW"
            findings.append(
                RULE.finding(
                    f"the .bin files of input {name} look written {other} but are read "
                    f"{declared}: read {other} they are {1 / median:.1f}x smoother (median over "
                    f"{len(ratios)} files, {100 * agreeing:.0f} % agree)",
                    Evidence(
                        "neighbour roughness, other layout / declared layout",
                        f"{median:.2f}",
                        "about 1 or more when the declared layout is right",
                        ctx.calibration_dir,
                    ),
                    fix=f"Write the data {declared} before tofile "
                    + (
                        "(arr.transpose(0, 3, 1, 2))"
                        if declared == "NCHW"
                        else "(arr.transpose(0, 2, 3, 1))"
                    )
                    + f"; input_layout_train must stay the model's layout ({declared}).",
                    measured=measured,
                    # read the bytes in the layout they were written in
                    remedy=input_remedy(
                        InputFix.READ_NHWC if other == "NHWC" else InputFix.READ_NCHW, name
                    ),
                )
            )
    findings += _mixed_sizes(ctx)
    return findings


def _mixed_sizes(ctx: Context) -> list[Finding]:
    source = ctx.calibration
    out = []
    for i, lay in enumerate(source.layouts):
        if not lay.shape:
            continue
        expected = int(np.prod(lay.shape)) * np.dtype(lay.dtype).itemsize
        sizes: Counter[int] = Counter()
        for group in source.files:
            if group[i].suffix.lower() not in IMAGE_SUFFIXES | NPY_SUFFIXES:  # tofile data
                sizes[expected] += 1
        odd = [m for m in source.mismatches if m.shape == lay.shape]
        for m in odd:
            sizes[m.size] += 1
        if len(sizes) < 2:
            continue
        parts = ", ".join(f"{n} of {size} bytes" for size, n in sizes.most_common())
        out.append(
            RULE.finding(
                f"the calibration files of input {lay.name} have mixed sizes ({parts}): they "
                "were not all written the same way",
                *(
                    Evidence("file size", f"{m.size} bytes", f"{expected} bytes", m.file.name)
                    for m in odd[:LISTED]
                ),
                severity=Severity.MAJOR,
                fix="Regenerate the calibration set with one script, one dtype and one shape.",
            )
        )
    return out
