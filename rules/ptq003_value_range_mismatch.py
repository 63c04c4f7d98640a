"""PTQ003: 0..1 data where 0..255 is expected or the reverse, raw pixels where the model
expects normalised input, and values outside the input's range."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptqtui.rules._remedies import config_remedy, edit, input_remedy

from ptqtui.check.context import (
    DIV_255,
    IMAGENET_MEAN_RGB,
    IMAGENET_SCALE_RGB,
    NORM_ADDED,
    TIMES_255,
    ProbeVerdict,
)
from ptqtui.check.facts.probe import DIV_255_OTHER_LAYOUT, TIMES_255_OTHER_LAYOUT
from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.remedy import InputChange, InputFix, Remedy

if TYPE_CHECKING:
    from ptqtui.check.context import Context, DataStats
    from ptqtui.inputs.config import InputSpec

RULE = RuleInfo(
    code="PTQ003",
    name="value-range-mismatch",
    category="pipeline",
    severity=Severity.CRITICAL,
    title="Calibration values are on another scale than the model expects (0..1 vs 0..255)",
    why="skimage reads floats in 0..1, OpenCV uint8 in 0..255; the converter's mean/scale "
    "assume one of them. On the wrong scale every input is squashed or blown up: the model "
    "answers nonsense and calibration ranges are wrong.",
    fix="Produce calibration data on the scale of the training pipeline (x255 for skimage "
    "floats, or /255), and make mean_value/scale_value match that scale.",
    needs=("data_stats",),
    example="[critical] PTQ003 the calibration data of input images lies in 0..1 (skimage-style "
    "floats) but mean_value 123.675 ... expects 0..255 pixels",
)

PIXEL_MEAN = 2.0  # a mean above this is in pixel units (0..255)
UNIT_MEAN = 1.5  # a mean below this is in 0..1 units (e.g. 0.485)
UNIT_SCALE = 1.0  # a scale above this is 1/std of 0..1 data (e.g. 4.37)
PIXEL_RANGE = (-0.5, 255.5)  # rgb/bgr/gray/yuv444 data at input_type_train
NORMALISED_MAX = 8.0  # as PTQ002: |x| below this with negatives is normalised data
IMAGE_TYPES = ("rgb", "bgr", "gray", "yuv444")
# ImageNet mean and 1/std in pixel units, RGB order, as the suggested normalisation writes them
IMAGENET_MEAN = IMAGENET_MEAN_RGB
IMAGENET_SCALE = tuple(round(s, 5) for s in IMAGENET_SCALE_RGB)  # 0.01712 0.01751 0.01743


def check(ctx: Context) -> list[Finding]:
    findings = []
    for spec in ctx.specs:
        if spec.type_train not in IMAGE_TYPES:
            continue
        name = spec.name or f"#{spec.index}"
        stats = ctx.data_stats_of(name)
        verdict = _verdict(ctx, name)
        expects = _expected_scale(ctx, spec, name)
        finding = (
            _unit_data(ctx, spec, name, stats, verdict, expects)
            or _pixel_data(ctx, spec, name, stats, verdict, expects)
            or _missing_normalisation(ctx, spec, name, stats, verdict)
            or _outside_range(ctx, name, stats)
        )
        if finding is not None:
            findings.append(finding)
    return findings


def _verdict(ctx: Context, name: str) -> ProbeVerdict | None:
    for v in ctx.maybe("probe") or ():
        if v.input == name:
            return v
    return None


def _expected_scale(ctx: Context, spec: InputSpec, name: str) -> tuple[str | None, str]:
    """('255' | '1' | None, why) from the config's mean/scale, else the model's own."""
    if spec.norm_type not in (None, "no_preprocess"):
        mean = spec.mean if spec.norm_type in ("data_mean", "data_mean_and_scale") else None
        scale = spec.scale if spec.norm_type in ("data_scale", "data_mean_and_scale") else None
        where = ctx.where_config(
            "input_parameters.mean_value" if mean else "input_parameters.scale_value"
        )
        text = f"mean_value {_fmt(mean)}" if mean else f"scale_value {_fmt(scale)}"
        if mean and max(mean) > PIXEL_MEAN:
            return "255", f"{text} ({where})"
        if scale and max(scale) < 0.1:
            return "255", f"{text} ({where})"
        if (mean and max(mean) < UNIT_MEAN) and (scale is None or min(scale) > UNIT_SCALE):
            return "1", f"{text} ({where})"
        return None, ""
    norm = ctx.model_normalisation(name)
    if norm is not None:
        text = f"the model's own normalisation (mean {_fmt(norm.mean)}, node {norm.steps[0].node})"
        if max(norm.mean) > PIXEL_MEAN or max(norm.scale) < 0.1:
            return "255", text
        if max(norm.mean) < UNIT_MEAN and min(norm.scale) > UNIT_SCALE:
            return "1", text
    return None, ""


def _winner_remedy(ctx: Context, name: str, verdict: ProbeVerdict) -> Remedy | None:
    """Every data fix of the explanation the float model prefers (e.g. x255 and read NHWC)."""
    layout = next((lay.layout for lay in ctx.calibration.layouts if lay.name == name), None)
    fixes = verdict.fixes(verdict.preferred, layout)
    return Remedy(inputs=tuple(InputChange(f, input=name) for f in fixes)) if fixes else None


def _fmt(values: tuple[float, ...] | None) -> str:
    return " ".join(f"{v:.4g}" for v in values) if values else "-"


def _range_evidence(ctx: Context, stats: DataStats, expected: str) -> Evidence:
    return Evidence(
        "value range of the calibration data",
        f"{stats.min:.4g}..{stats.max:.4g}",
        expected,
        ctx.calibration_dir,
    )


def _unit_data(
    ctx: Context,
    spec: InputSpec,
    name: str,
    stats: DataStats,
    verdict: ProbeVerdict | None,
    expects: tuple[str | None, str],
) -> Finding | None:
    if stats.full_scale != 1.0 or stats.integral:
        return None
    confirmed = verdict is not None and verdict.preferred in (TIMES_255, TIMES_255_OTHER_LAYOUT)
    if expects[0] != "255" and not confirmed:
        return None
    strong = confirmed and verdict is not None and verdict.strength == "strong"
    why = expects[1] or "the float model"
    remedy = _winner_remedy(ctx, name, verdict) if confirmed and verdict else None
    return RULE.finding(
        f"the calibration data of input {name} lies in 0..1 (skimage-style floats) but {why} "
        "expects 0..255 pixels",
        _range_evidence(ctx, stats, "0..255"),
        severity=Severity.CRITICAL if strong or expects[0] == "255" else Severity.MAJOR,
        fix="Multiply the data by 255 before writing it (or read it with OpenCV as uint8), "
        "keeping mean_value/scale_value in pixel units.",
        remedy=remedy or input_remedy(InputFix.SCALE_X255, name),
        measured=verdict.measured(verdict.preferred) if confirmed and verdict else None,
    )


def _pixel_data(
    ctx: Context,
    spec: InputSpec,
    name: str,
    stats: DataStats,
    verdict: ProbeVerdict | None,
    expects: tuple[str | None, str],
) -> Finding | None:
    if stats.full_scale != 255.0:
        return None
    confirmed = verdict is not None and verdict.preferred in (DIV_255, DIV_255_OTHER_LAYOUT)
    strong = confirmed and verdict is not None and verdict.strength == "strong"
    remedy = _winner_remedy(ctx, name, verdict) if confirmed and verdict else None
    # 0..255 data is the normal case: only an expectation of 0..1 or a decisive response count
    if expects[0] != "1" and not strong:
        return None
    why = expects[1] or "the float model"
    return RULE.finding(
        f"the calibration data of input {name} lies in 0..255 but {why} expects 0..1 values",
        _range_evidence(ctx, stats, "0..1"),
        severity=Severity.CRITICAL if strong or expects[0] == "1" else Severity.MAJOR,
        fix="Keep the data in pixels and express mean_value/scale_value in pixel units "
        "(mean x 255, scale / 255), or divide the data by 255.",
        remedy=remedy or input_remedy(InputFix.SCALE_DIV255, name),
        measured=verdict.measured(verdict.preferred) if confirmed and verdict else None,
    )


def _missing_normalisation(
    ctx: Context,
    spec: InputSpec,
    name: str,
    stats: DataStats,
    verdict: ProbeVerdict | None,
) -> Finding | None:
    if verdict is None or verdict.preferred != NORM_ADDED or verdict.strength != "strong":
        return None
    strong = True
    mean = IMAGENET_MEAN if spec.type_train == "rgb" else IMAGENET_MEAN[::-1]
    scale = IMAGENET_SCALE if spec.type_train == "rgb" else IMAGENET_SCALE[::-1]
    config = ctx.maybe("config")
    remedy = config_remedy(
        edit(config, "input_parameters.norm_type", spec.norm_type, "data_mean_and_scale"),
        edit(config, "input_parameters.mean_value", spec.mean, mean),
        edit(config, "input_parameters.scale_value", spec.scale, scale),
    )
    return RULE.finding(
        f"input {name} reaches the model as raw 0..{stats.max:.0f} pixels (norm_type "
        f"{spec.norm_type or 'none'}), but the float model answers far better with ImageNet "
        "normalisation applied",
        _range_evidence(ctx, stats, "normalised values, about -2..2.6"),
        severity=Severity.CRITICAL if strong else Severity.MAJOR,
        fix="Apply the training normalisation in the config (norm_type data_mean_and_scale with "
        "the training mean and 1/std in pixel units).",
        remedy=remedy,
        measured=verdict.measured(NORM_ADDED),
    )


def _outside_range(ctx: Context, name: str, stats: DataStats) -> Finding | None:
    low, high = PIXEL_RANGE
    if stats.negative and stats.max_abs < NORMALISED_MAX:
        return None  # normalised data: PTQ002's concern
    if stats.min >= low and stats.max <= high:
        return None
    return RULE.finding(
        f"the calibration data of input {name} has values outside 0..255 "
        f"({stats.min:.4g}..{stats.max:.4g}), which image data at input_type_train cannot hold",
        _range_evidence(ctx, stats, "0..255"),
        severity=Severity.MAJOR,
        fix="Clip and round the data to 0..255 (as the camera delivers it) before writing.",
    )
