"""PTQ105: classes the float model never predicts on the calibration set, imbalance, and
background-like (low-confidence) samples. Classifiers only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptqtui.check.context import MissingFact
from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo

if TYPE_CHECKING:
    from ptqtui.check.context import Context

RULE = RuleInfo(
    code="PTQ105",
    name="calibration-coverage",
    category="data",
    severity=Severity.MINOR,
    title="The calibration set does not cover the classes (never predicted, imbalanced)",
    why="Activations of classes absent from calibration can exceed the calibrated ranges and "
    "clip; a set dominated by one class or by background calibrates for that alone.",
    fix="Pick calibration samples across every class and situation (about 100), few "
    "background-only images.",
    needs=("predictions",),
    example="[major] PTQ105 the float model predicts only 3 of 15 classes on the 100 "
    "calibration samples; never: blue_circle, green_square, ...",
)

MISSING_MAJOR = 0.5  # half of the classes never predicted: the set covers a corner of the task
DOMINANT_MINOR = 0.5  # one class predicted on half of the samples (with >= 4 classes)
DOMINANT_MAJOR = 0.8
LOW_CONFIDENCE_SHARE = 0.3  # more than 30 % of samples background-like
LISTED = 6


def check(ctx: Context) -> list[Finding]:
    for verdict in ctx.maybe("probe") or ():
        if verdict.strength == "strong":
            raise MissingFact(
                "coverage not judged: the float model does not take the calibration data as "
                f"given ({verdict.preferred} preferred; see PTQ001-PTQ003)"
            )
    order = ctx.maybe("order_test")
    if order is not None and order.reversed_fits:
        raise MissingFact(
            "coverage not judged: the calibration data is in the reverse channel order of the "
            "evaluation images (see PTQ001)"
        )
    pred = ctx.predictions
    n = len(pred.top1)
    counts = pred.counts()
    classes = pred.classes
    names = _class_names(ctx, classes)
    where = ctx.calibration_dir
    findings = []
    missing = [c for c, k in enumerate(counts) if k == 0]
    if missing and n >= classes:
        share = len(missing) / classes
        listed = _listing([names[c] for c in missing])
        findings.append(
            RULE.finding(
                f"the float model predicts only {classes - len(missing)} of {classes} classes on "
                f"{n} calibration samples; never: {listed}",
                Evidence("classes predicted", str(classes - len(missing)), str(classes), where),
                severity=Severity.MAJOR if share >= MISSING_MAJOR else Severity.MINOR,
            )
        )
    top = max(range(classes), key=lambda c: counts[c])
    share = counts[top] / n
    if classes >= 4 and share >= DOMINANT_MINOR and not (missing and len(missing) >= classes - 1):
        findings.append(
            RULE.finding(
                f"{100 * share:.0f} % of the {n} calibration samples are predicted as "
                f"{names[top]}: the set is strongly imbalanced",
                Evidence(
                    f"share predicted {names[top]}",
                    f"{100 * share:.0f} %",
                    f"about {100 / classes:.0f} %",
                    where,
                ),
                severity=Severity.MAJOR if share >= DOMINANT_MAJOR else Severity.MINOR,
            )
        )
    # background-like: not clearly any class; the bar scales with the number of classes
    bar = max(0.5, 2.0 / classes)
    low = [f for f, c in zip(pred.files, pred.confidence, strict=True) if c < bar]
    if n >= 10 and len(low) / n > LOW_CONFIDENCE_SHARE:
        findings.append(
            RULE.finding(
                f"{len(low)} of {n} calibration samples are background-like (top-1 probability "
                f"below {bar:.2f}): {_listing(low)}",
                Evidence(
                    "low-confidence samples",
                    f"{100 * len(low) / n:.0f} %",
                    f"at most {100 * LOW_CONFIDENCE_SHARE:.0f} %",
                    where,
                ),
                severity=Severity.MINOR,
            )
        )
    return findings


def _class_names(ctx: Context, classes: int) -> list[str]:
    eval_set = ctx.inputs.eval_set if ctx.inputs is not None else None
    if eval_set is not None and len(eval_set.classes) == classes:
        return list(eval_set.classes)
    return [f"class {c}" for c in range(classes)]


def _listing(items: list[str]) -> str:
    return ", ".join(items[:LISTED]) + (", ..." if len(items) > LISTED else "")
