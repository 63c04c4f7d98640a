"""PTQ002: mean/scale applied twice: data already normalised, or the model normalises itself,
while norm_type normalises again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptqtui.rules._remedies import config_remedy, edit, input_remedy

from ptqtui.check.context import NORM_REMOVED, ProbeVerdict
from ptqtui.check.facts.probe import ProbeStrength
from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.remedy import InputFix

if TYPE_CHECKING:
    from ptqtui.check.context import Context, DataStats
    from ptqtui.inputs.config import InputSpec
    from ptqtui.inputs.model import InputNormalisation

RULE = RuleInfo(
    code="PTQ002",
    name="double-normalization",
    category="pipeline",
    severity=Severity.CRITICAL,
    title="Normalisation applied twice: by the data or the model, and again by norm_type",
    why="The converter inserts (x - mean) * scale in front of the model; data that is already "
    "normalised, or a model that normalises itself, gets it twice. Inputs collapse to a narrow "
    "band, calibration wastes most int8 levels, accuracy drops far (the reference's most "
    "common error).",
    fix="Feed raw 0..255 data to calibration and keep norm_type, or set norm_type "
    "no_preprocess when the data or the model already normalise.",
    needs=(),
    example="[critical] PTQ002 the calibration data of input images is already normalised "
    "(range -2.12..2.64) and norm_type data_mean_and_scale normalises it again\n"
    "  measured: float model on 32 calibration samples: mean top-1 probability 0.20 as given, "
    "0.99 config normalisation removed",
)

NORMALISED_MAX = 8.0  # |x| above this means raw pixels; normalised data stays within a few std
PIXEL_MEAN = 2.0  # a mean_value above this is in pixel units (0..255), e.g. 123.675
SCALE_BELOW = 0.5  # a scale_value below this maps 0..255 pixels to a few units


def check(ctx: Context) -> list[Finding]:
    findings = []
    for spec in ctx.specs:
        if spec.norm_type in (None, "no_preprocess"):
            continue
        name = spec.name or f"#{spec.index}"
        verdict = _verdict(ctx, name)
        confirmed = verdict is not None and verdict.preferred == NORM_REMOVED
        model_norm = ctx.model_normalisation(name)
        stats = _stats(ctx, name)
        evidence = [_config_evidence(ctx, spec)]
        reasons = []
        pixel_scale = _config_is_pixel_scale(spec)
        if model_norm is not None and _nontrivial(model_norm):
            reasons.append(
                f"{ctx.graph.path.name} starts with its own normalisation "
                f"({' then '.join(s.op_type for s in model_norm.steps)})"
            )
            evidence.append(
                Evidence(
                    "normalisation inside the model",
                    f"mean {_fmt(model_norm.mean)}, scale {_fmt(model_norm.scale)}",
                    "none when norm_type normalises",
                    f"node {model_norm.steps[0].node}",
                )
            )
        looks_normalised = (
            stats is not None
            and spec.type_train != "featuremap"
            and stats.negative
            and stats.max_abs < NORMALISED_MAX
            and pixel_scale
        )
        if looks_normalised and stats is not None:
            reasons.append(
                f"the calibration data is already normalised (range {stats.min:.2f}.."
                f"{stats.max:.2f}, mean {stats.mean:.2f}, std {stats.std:.2f})"
            )
            evidence.append(
                Evidence(
                    "value range of the calibration data",
                    f"{stats.min:.2f}..{stats.max:.2f}",
                    "0..255 pixels",
                    ctx.calibration_dir,
                )
            )
        strong = confirmed and verdict is not None and verdict.strength == "strong"
        # one arbitration per input: when the float model clearly prefers another explanation
        # (x255, the other layout, ...), that explanation is the finding, not this one
        if not model_norm and _other_explanation(verdict):
            continue
        # the model's response alone (no reason in the data or the graph) counts only when it is
        # decisive: a moderate preference is within what a colour-sensitive model shows on noise
        if not reasons and not strong:
            continue
        # ... and never against the data itself: raw pixels cannot have been normalised, so a
        # model that likes them better un-normalised is reacting to another mistake (layout,
        # channel order), which the other rules name
        if not reasons and _raw_pixels(stats):
            continue
        if confirmed and verdict is not None:
            evidence.append(
                Evidence(
                    "float model response",
                    verdict.measured(NORM_REMOVED),
                    "as given at least as confident",
                    f"input {name}",
                )
            )
        # without the model's confirmation, data statistics or an in-model normalisation on
        # top of a pixel-scale norm_type are still unambiguous; anything else is a strong hint
        severity = Severity.CRITICAL if strong or (reasons and pixel_scale) else Severity.MAJOR
        what = "; ".join(reasons) if reasons else "the float model is far more confident without it"
        key = "input_parameters.norm_type"
        findings.append(
            RULE.finding(
                f"input {name}: norm_type {spec.norm_type} normalises again, but {what}",
                *evidence,
                severity=severity,
                fix=(
                    "Write raw 0..255 calibration data (drop the script's own (x - mean) / std) "
                    "and keep norm_type, or set norm_type no_preprocess."
                    if looks_normalised
                    else "Remove the normalisation from the model, or set norm_type "
                    "no_preprocess and let the model normalise."
                ),
                # normalised data: the data is the cure; a self-normalising model: the config
                remedy=input_remedy(InputFix.REMOVE_NORMALISATION, name)
                if looks_normalised
                else config_remedy(edit(ctx.maybe("config"), key, spec.norm_type, "no_preprocess")),
                measured=verdict.measured(NORM_REMOVED) if confirmed and verdict else None,
            )
        )
    return findings


def _verdict(ctx: Context, name: str) -> ProbeVerdict | None:
    for v in ctx.maybe("probe") or ():
        if v.input == name:
            return v
    return None


def _other_explanation(verdict: ProbeVerdict | None) -> bool:
    return (
        verdict is not None
        and verdict.strength is ProbeStrength.STRONG
        and verdict.preferred != NORM_REMOVED
    )


def _stats(ctx: Context, name: str) -> DataStats | None:
    for d in ctx.maybe("data_stats") or ():
        if d.input == name:
            return d
    return None


def _raw_pixels(stats: DataStats | None) -> bool:
    return stats is not None and not stats.negative and stats.max_abs > NORMALISED_MAX


def _fmt(values: tuple[float, ...] | None) -> str:
    return " ".join(f"{v:.4g}" for v in values) if values else "-"


def _config_is_pixel_scale(spec: InputSpec) -> bool:
    mean_big = spec.mean is not None and max(abs(v) for v in spec.mean) > PIXEL_MEAN
    scale_small = spec.scale is not None and max(abs(v) for v in spec.scale) < SCALE_BELOW
    return mean_big or scale_small


def _nontrivial(norm: InputNormalisation) -> bool:
    return any(abs(m) > 1e-6 for m in norm.mean) or any(abs(s - 1) > 1e-6 for s in norm.scale)


def _config_evidence(ctx: Context, spec: InputSpec) -> Evidence:
    key = "input_parameters.norm_type"
    return Evidence(
        "normalisation by the config",
        f"{spec.norm_type}: mean {_fmt(spec.mean)}, scale {_fmt(spec.scale)}",
        None,
        ctx.where_config(key),
    )
