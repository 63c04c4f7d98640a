"""PTQ004: which interpolation reproduces the .bin files from the raw images (--raw-dir),
against the one the pipeline declares (OpenCV linear, as the converter's samples)."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import TYPE_CHECKING

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo

if TYPE_CHECKING:
    from ptqtui.check.context import Context

RULE = RuleInfo(
    code="PTQ004",
    name="resize-mismatch",
    category="pipeline",
    severity=Severity.MINOR,
    title="Calibration images were resized with another interpolation than the pipeline's",
    why="Resize implementations differ (nearest, linear, area, cubic; OpenCV vs PIL): a model "
    "sensitive to them sees calibration data unlike what it meets at run time.",
    fix="Resize calibration images with the training pipeline's library and interpolation "
    "(the converter's sample transformer uses OpenCV linear).",
    needs=("resize_matches",),
    example="[minor] PTQ004 the .bin files are reproduced by area interpolation (residual 0.4 % "
    "of the spread), not by the declared linear (3.1 %) (16 files compared with raw/)",
)

DECLARED = "linear"  # the converter's sample ResizeTransformer: OpenCV's default (reference §2)
REPRODUCED = 0.05  # best residual below 5 % of the spread: that interpolation made the files
CLEARLY_BETTER = 1.5  # the declared one must be this many times worse to count as different
MAJOR_GAP = 0.05  # declared residual above best by 5 % of the spread: visible to the model


def check(ctx: Context) -> list[Finding]:
    matches = ctx.resize_matches
    raw = ctx.raw_dir
    votes = Counter(m.best for m in matches)
    best, _ = votes.most_common(1)[0]
    best_err = statistics.median(m.error(best) for m in matches)
    declared_err = statistics.median(m.error(DECLARED) for m in matches)
    n = len(matches)
    if best_err > REPRODUCED:
        return [
            RULE.finding(
                f"no interpolation reproduces the calibration files from the raw images in "
                f"{raw.name}/ (best: {best}, residual {100 * best_err:.1f} % of the spread over "
                f"{n} files): the pipeline does more than resize (crop, colour change, padding)",
                Evidence(
                    "smallest resize residual",
                    f"{100 * best_err:.1f} %",
                    f"below {100 * REPRODUCED:.0f} %",
                    str(raw),
                ),
                severity=Severity.INFO,
                fix="Compare the calibration script with the training transforms step by step.",
            )
        ]
    if best == DECLARED or declared_err < CLEARLY_BETTER * best_err:
        return []
    gap = declared_err - best_err
    return [
        RULE.finding(
            f"the calibration files are reproduced by {best} interpolation (residual "
            f"{100 * best_err:.1f} % of the spread), not by the declared {DECLARED} "
            f"({100 * declared_err:.1f} %) ({votes[best]} of {n} files compared with {raw.name}/)",
            Evidence(
                "interpolation that made the files",
                best,
                DECLARED,
                f"{matches[0].file} vs {raw.name}/{matches[0].raw}",
            ),
            severity=Severity.MAJOR if gap >= MAJOR_GAP else Severity.MINOR,
            measured=", ".join(f"{name} {100 * err:.1f} %" for name, err in matches[0].errors),
        )
    ]
