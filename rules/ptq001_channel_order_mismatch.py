"""PTQ001: BGR vs RGB, from the config (type pairs, mean_value order) and from the float
model's own response to the calibration samples with their channels swapped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptqtui.rules._remedies import config_remedy, edit, input_remedy

from ptqtui.check.context import (
    AS_GIVEN,
    COLOR_TYPES,
    IMAGENET_MEAN_RGB,
    IMAGENET_SCALE_RGB,
    STRONG_MARGIN,
    SWAPPED,
    EvalProbe,
    OrderTest,
    ProbeVerdict,
)
from ptqtui.check.facts.probe import PAIRED_Z
from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.inputs.schema import LEGAL_TYPE_PAIRS, legal_type_pair
from ptqtui.remedy import InputFix

if TYPE_CHECKING:
    from ptqtui.check.context import Context, DataStats
    from ptqtui.inputs.config import InputSpec

RULE = RuleInfo(
    code="PTQ001",
    name="channel-order-mismatch",
    category="pipeline",
    severity=Severity.CRITICAL,
    title="Channel order (BGR vs RGB) of the data or the config differs from the model's",
    why="A model trained on RGB that sees BGR confuses colours everywhere; the loss is the "
    "> 4 % kind (the reference's first check), and calibration ranges are wrong too.",
    fix="Make input_type_train the order the model was trained on, write the calibration data "
    "in that order (cv2.cvtColor(img, cv2.COLOR_BGR2RGB) after cv2.imread), and order "
    "mean_value/scale_value the same way.",
    needs=(),
    example="[critical] PTQ001 the float model prefers the calibration samples of input images "
    "with their channels swapped: mean top-1 probability 0.41 as given, 0.93 swapped\n"
    "  measured: float model on 32 calibration samples: mean top-1 probability 0.41 as given, "
    "0.93 channels swapped; more confident on 97 % of samples; top-1 class changes on 88 %",
)

MEAN_TOLERANCE = 1.0  # mean_value within 1 of the ImageNet values, in 0..255 units
SCALE_TOLERANCE = 2e-4  # scale_value within 2e-4 of 1/(255*std)
# Natural images are warm: mean red above mean blue (ImageNet: 123.7 vs 103.5, 8 % of full
# scale). The reverse by 2.5 % of full scale over a whole set is a hint (scenes can be blue);
# by 8 % it is as far from natural as swapped ImageNet statistics are.
COLOUR_WEAK = 0.025
COLOUR_STRONG = 0.08
# With a strong colour cast and a large impact, a classifier must not lean towards the data as
# given (paired gain half a standard error below zero; ImageNet classifiers on ordinary photos:
# +0.6..+1.2 on 16 swapped samples, -0.6..-1.2 on the correct ones; 5 samples cannot lean)
LEAN_Z = 0.5
# A channel swap that changes the float model's top-1 class on 10 % of the samples costs more
# than 4 % accuracy (most changed answers become wrong); below 5 % the model hardly uses
# colour order (reference loss bands).
IMPACT_CHANGED = 0.1
LOW_IMPACT_CHANGED = 0.05
# Labelled evaluation images classified 20 points better with the channels swapped: the
# config's input_type_train is not the order the model was trained on.
LABELLED_GAIN = 0.2


def check(ctx: Context) -> list[Finding]:
    findings = []
    for spec in ctx.specs:
        name = spec.name or f"#{spec.index}"
        findings += _illegal_pair(ctx, spec, name)
        if spec.type_train not in COLOR_TYPES:
            continue
        order = _declared_order(spec)
        conflict = order is not None and order != spec.type_train
        labelled = ctx.maybe("eval_probe")
        if labelled is not None and labelled.input == name:
            gain = labelled.of(SWAPPED) - labelled.of(AS_GIVEN)
            if gain >= LABELLED_GAIN:
                findings.append(_config_type_finding(ctx, spec, name, labelled, order))
                continue  # the config's order is the root; data written to it follows it
        verdict = _verdict(ctx, name)
        order_test = _order_test(ctx, name)
        prefers = verdict is not None and verdict.preferred == SWAPPED
        if prefers and verdict is not None and verdict.strength != "strong":
            # a moderate preference is dropped when the evaluation images say the order is right
            test = ctx.maybe("order_test")
            if test is not None and not test.reversed_fits and test.same <= test.noise:
                prefers = False
        if prefers or order_test is not None:
            found = _swap_finding(ctx, spec, name, verdict, order_test, conflict, order)
            if order_test is None and not conflict and found.severity is not Severity.CRITICAL:
                # a moderate preference (5 samples cannot be strong): the colour statistics
                # and the swap's impact may grade it higher (_colour_finding's rule)
                colour = _colour_finding(ctx, spec, name, verdict)
                if colour is not None and colour.severity is Severity.CRITICAL:
                    found = colour
            findings.append(found)
            continue
        colour = _colour_finding(ctx, spec, name, verdict)
        if colour is not None:
            findings.append(colour)
        elif conflict and order is not None:
            findings.append(_order_finding(ctx, spec, name, verdict, order, labelled))
    return findings


def _coolness(ctx: Context, spec: InputSpec, name: str) -> tuple[float, float, float] | None:
    """(blue - red) / full scale of the data read in the declared order, with red and blue."""
    stats: DataStats | None = None
    for d in ctx.maybe("data_stats") or ():
        if d.input == name:
            stats = d
    if stats is None or len(stats.channel_means) != 3 or not stats.full_scale:
        return None
    first, last = stats.channel_means[0], stats.channel_means[2]
    red, blue = (first, last) if spec.type_train == "rgb" else (last, first)
    return (blue - red) / stats.full_scale, red, blue


def _colour_finding(
    ctx: Context, spec: InputSpec, name: str, verdict: ProbeVerdict | None
) -> Finding | None:
    """Bluer-than-natural data, graded by what the float model's response adds to it.

    Colour statistics alone are weak (scenes can be blue): minor, no remedy. Major with a
    large cast (8 % of full scale, as far from natural as swapped ImageNet statistics) or a
    large measured impact of the swap. Critical only with all of: a large cast, a large
    impact (the swap changes the top-1 class on >= 10 % of the samples, or >= 10 % of a dense
    head's positives: the float model relies on the channel order), and no model evidence for
    the data as given (a classifier's paired gain not below -0.5 standard errors). On dense
    heads no model measure tells the direction on the corpus (score mass, map decisiveness,
    flip consistency and activation saturation each point either way by model), so there the
    direction is the colour statistics' and the model adds the impact; a detector fed truly
    blue scenes in the right order can be graded critical, and the finding says so.
    """
    cue = _coolness(ctx, spec, name)
    if cue is None or cue[0] < COLOUR_WEAK:
        return None
    cool, red, blue = cue
    swapped = verdict.score(SWAPPED) if verdict is not None else None
    z = swapped.paired_z if swapped is not None else None
    changed = swapped.changed if swapped is not None else None
    if z is not None and z <= -PAIRED_Z:
        return None  # the model is surer of the data as given: the scenes are just blue
    # unfolded BatchNorm nodes: the training's own statistics say which order is closer
    bn_z = swapped.bn_gain_z if swapped is not None else None
    if bn_z is not None and bn_z <= -PAIRED_Z and (z is None or z < PAIRED_Z):
        return None  # the training statistics fit the data as given: the scenes are blue
    agrees = (z is not None and z >= PAIRED_Z) or (bn_z is not None and bn_z >= PAIRED_Z)
    impact = changed is not None and changed >= IMPACT_CHANGED
    against = (z is not None and z <= -LEAN_Z) or (bn_z is not None and bn_z <= -LEAN_Z)
    if cool >= COLOUR_STRONG and impact and not against:
        severity = Severity.CRITICAL
    elif cool >= COLOUR_STRONG or agrees or impact:
        severity = Severity.MAJOR
    else:
        severity = Severity.MINOR
    evidence = [
        Evidence(
            "mean of the red and blue channels (natural-image colour statistics, weak alone)",
            f"red {red:.1f}, blue {blue:.1f} if it is {spec.type_train.upper()}",
            "red above blue in most natural image sets",
            ctx.calibration_dir,
        )
    ]
    measured = None
    if swapped is not None and verdict is not None and verdict.classifier:
        evidence.append(
            Evidence(
                "float model, paired gain of top-1 probability with channels swapped",
                f"{swapped.paired_z:+.1f} standard errors; top-1 class changes on "
                f"{100 * (changed or 0.0):.0f} % of {verdict.samples} samples",
                f"at least {PAIRED_Z:g} when the swap is right",
                f"input {name}",
            )
        )
        measured = verdict.measured(SWAPPED)
    elif swapped is not None and verdict is not None and changed is not None:
        if bn_z is not None:
            evidence.append(
                Evidence(
                    "float model's BatchNormalization inputs vs their running statistics",
                    f"{bn_z:+.1f} standard errors closer with the channels swapped",
                    f"at least {PAIRED_Z:g} when the swap is right",
                    f"input {name}",
                )
            )
        evidence.append(
            Evidence(
                "float model's head positives (scores >= 0.5) changed by swapping the channels",
                f"{100 * changed:.0f} % on {verdict.samples} samples (1 - IoU, mean)",
                f"under {100 * LOW_IMPACT_CHANGED:.0f} % when the model ignores the order",
                f"input {name}",
            )
        )
        direction = (
            f"its BatchNorm statistics are {bn_z:+.1f} standard errors closer swapped"
            if bn_z is not None
            else "the direction is the colour statistics' (no classifier to confirm it)"
        )
        measured = (
            f"float model on {verdict.samples} calibration samples: channels swapped changes "
            f"{100 * changed:.0f} % of the head's positives; {direction}"
        )
    return RULE.finding(
        f"the calibration data of input {name} looks channel-swapped: it is bluer than natural "
        f"images are (mean red {red:.1f}, blue {blue:.1f} read as {spec.type_train.upper()})"
        + (
            "; the float model agrees"
            if agrees
            else "; swapping the channels changes the float model's answers"
            if impact
            else ""
        ),
        *evidence,
        severity=severity,
        fix=f"Write the calibration data in {spec.type_train.upper()} order "
        "(cv2.cvtColor(img, cv2.COLOR_BGR2RGB) after cv2.imread), as input_type_train says.",
        # colour statistics alone are a hint: no remedy the plan would take as a step
        remedy=input_remedy(InputFix.SWAP_CHANNELS, name)
        if severity.at_least(Severity.MAJOR)
        else None,
        measured=measured,
    )


def _config_type_finding(
    ctx: Context, spec: InputSpec, name: str, labelled: EvalProbe, order: str | None
) -> Finding:
    train = spec.type_train or "rgb"
    other = _other(train)
    given, swapped = labelled.of(AS_GIVEN), labelled.of(SWAPPED)
    key = "input_parameters.input_type_train"
    config = ctx.maybe("config")
    edits = [edit(config, key, train, other)]
    for mkey, values in (
        ("input_parameters.mean_value", spec.mean),
        ("input_parameters.scale_value", spec.scale),
    ):
        if values is not None and len(values) == 3 and order != other:
            edits.append(edit(config, mkey, values, values[::-1]))
    return RULE.finding(
        f"input_type_train says {train}, but the float model classifies the labelled "
        f"evaluation images far better in {other.upper()} order: top-1 {100 * given:.0f} % as "
        f"{train}, {100 * swapped:.0f} % as {other} (input {name})",
        Evidence(
            "float model top-1 on labelled evaluation images",
            f"{100 * given:.0f} % as {train}, {100 * swapped:.0f} % as {other}",
            f"best as {train}",
            ctx.where_config(key),
        ),
        severity=Severity.CRITICAL,
        fix=f"The model was trained on {other.upper()}: set input_type_train {other}, order "
        f"mean_value/scale_value as {other.upper()} and write the calibration data in "
        f"{other.upper()}.",
        remedy=config_remedy(*edits),
        measured=f"float model on {labelled.samples} labelled evaluation images: top-1 "
        f"{100 * given:.1f} % as {train}, {100 * swapped:.1f} % with channels swapped",
    )


def _verdict(ctx: Context, name: str) -> ProbeVerdict | None:
    for v in ctx.maybe("probe") or ():
        if v.input == name:
            return v
    return None


def _order_test(ctx: Context, name: str) -> OrderTest | None:
    """The evaluation images' test, when it says the calibration data is reversed."""
    test = ctx.maybe("order_test")
    single = len(ctx.specs) == 1
    return test if test is not None and single and test.reversed_fits else None


def _illegal_pair(ctx: Context, spec: InputSpec, name: str) -> list[Finding]:
    if not spec.type_train or not spec.type_rt or legal_type_pair(spec.type_train, spec.type_rt):
        return []
    key = "input_parameters.input_type_rt"
    legal = ", ".join(LEGAL_TYPE_PAIRS.get(spec.type_train, ()))
    return [
        RULE.finding(
            f"input_type_rt {spec.type_rt} cannot feed a model trained on "
            f"{spec.type_train} (input {name}); legal: {legal} ({ctx.where_config(key)})",
            Evidence(
                "input_type_train -> input_type_rt",
                f"{spec.type_train} -> {spec.type_rt}",
                legal,
                ctx.where_config(key),
            ),
            severity=Severity.MAJOR,
            fix=f"Use an input_type_rt the converter can turn into {spec.type_train} ({legal}).",
        )
    ]


def _close(values: tuple[float, ...], ref: tuple[float, ...], tol: float) -> bool:
    return len(values) == 3 and all(abs(v - r) <= tol for v, r in zip(values, ref, strict=True))


def _declared_order(spec: InputSpec) -> str | None:
    """'rgb'/'bgr' when mean_value or scale_value are the ImageNet values in that order."""
    for values, ref, tol in (
        (spec.mean, IMAGENET_MEAN_RGB, MEAN_TOLERANCE),
        (spec.scale, IMAGENET_SCALE_RGB, SCALE_TOLERANCE),
    ):
        if values is None:
            continue
        if _close(values, ref, tol):
            return "rgb"
        if _close(values, ref[::-1], tol):
            return "bgr"
    return None


def _other(order: str) -> str:
    return "bgr" if order == "rgb" else "rgb"


def _mean_evidence(ctx: Context, spec: InputSpec, order: str) -> Evidence:
    key = "input_parameters.mean_value" if spec.mean else "input_parameters.scale_value"
    values = spec.mean or spec.scale or ()
    return Evidence(
        f"{key.rpartition('.')[2]} order",
        f"{' '.join(f'{v:g}' for v in values)} ({order.upper()} order)",
        f"{spec.type_train.upper()} order, as input_type_train",
        ctx.where_config(key),
    )


def _swap_finding(
    ctx: Context,
    spec: InputSpec,
    name: str,
    verdict: ProbeVerdict | None,
    order_test: OrderTest | None,
    conflict: bool,
    order: str | None,
) -> Finding:
    train = spec.type_train or "rgb"
    classifier = verdict is not None and verdict.classifier
    swapped = verdict.score(SWAPPED) if verdict is not None and classifier else None
    given = verdict.given.mean_top1 if verdict is not None and classifier else None
    alt = swapped.mean_top1 if swapped is not None else None
    changed = swapped.changed if swapped is not None else None
    prefers = verdict is not None and verdict.preferred == SWAPPED
    evidence = []
    if prefers and given is not None and alt is not None:
        evidence.append(
            Evidence(
                "float model, mean top-1 probability",
                f"{given:.2f} as given, {alt:.2f} with channels swapped",
                "as given at least as confident",
                f"input {name}, {ctx.calibration_dir}",
            )
        )
    if order_test is not None:
        evidence.append(
            Evidence(
                "colours of the samples vs the evaluation images (energy distance)",
                f"{order_test.same:.3f} as given, {order_test.reversed:.3f} reversed",
                f"as given closest (noise {order_test.noise:.3f})",
                ctx.calibration_dir,
            )
        )
    if changed is not None and verdict is not None and not prefers:
        evidence.append(
            Evidence(
                "float model's top-1 class changed by swapping the channels",
                f"{100 * changed:.0f} % of {verdict.samples} samples",
                None,
                f"input {name}",
            )
        )
    # Grade: the model's confidence alone, when decisive; else the evaluation images' test,
    # weighted by how much the swap changes the model's answers (the measured impact).
    contradicted = (
        given is not None and alt is not None and given - alt >= STRONG_MARGIN and not prefers
    )
    if prefers and verdict is not None and verdict.strength == "strong":
        severity = Severity.CRITICAL
    elif order_test is not None and changed is not None and changed >= IMPACT_CHANGED:
        severity = Severity.MINOR if contradicted else Severity.CRITICAL
    elif order_test is not None and changed is not None and changed < LOW_IMPACT_CHANGED:
        severity = Severity.MINOR
    else:
        severity = Severity.MINOR if contradicted else Severity.MAJOR
    if prefers and given is not None and alt is not None:
        message = (
            f"the float model prefers the calibration samples of input {name} with their "
            f"channels swapped: mean top-1 probability {given:.2f} as given, {alt:.2f} swapped"
        )
        if order_test is not None:
            message += "; the evaluation images agree"
    else:
        message = (
            f"the calibration data of input {name} is in the reverse channel order of the "
            f"evaluation images ({_other(train).upper()} where input_type_train says {train})"
        )
        if changed is not None:
            message += (
                f"; swapping the channels changes the float model's top-1 class on "
                f"{100 * changed:.0f} % of the samples"
            )
        if contradicted:
            message += " (but the model is more confident on the data as given)"
    # the data is in the wrong order (swap it), unless the config's key is what is wrong
    remedy = input_remedy(InputFix.SWAP_CHANNELS, name)
    if conflict and order is not None:
        evidence.append(_mean_evidence(ctx, spec, order))
        # the config's own mean_value says the model is `order`: input_type_train is the odd one
        key = "input_parameters.input_type_train"
        remedy = config_remedy(edit(ctx.maybe("config"), key, train, order))
        fix = (
            f"The model expects {order.upper()} (as mean_value says): set input_type_train "
            f"{order} and write the calibration data in {order.upper()} order."
        )
    else:
        fix = (
            f"The calibration data of input {name} is in {_other(train).upper()} order while "
            f"input_type_train says {train}: convert it to {train.upper()} before writing "
            "(e.g. img[:, :, ::-1] or cv2.cvtColor), or, if the model was trained on "
            f"{_other(train).upper()}, set input_type_train {_other(train)} and reorder "
            "mean_value/scale_value."
        )
    measured = [verdict.measured(SWAPPED)] if swapped is not None and verdict is not None else []
    if order_test is not None:
        measured.append(order_test.describe())
    return RULE.finding(
        message,
        *evidence,
        severity=severity,
        fix=fix,
        remedy=remedy,
        measured="; ".join(measured) or None,
    )


def _order_finding(
    ctx: Context,
    spec: InputSpec,
    name: str,
    verdict: ProbeVerdict | None,
    order: str,
    labelled: EvalProbe | None,
) -> Finding:
    train = spec.type_train or "rgb"
    values = spec.mean or spec.scale or ()
    key = "input_parameters.mean_value" if spec.mean else "input_parameters.scale_value"
    reverse = config_remedy(edit(ctx.maybe("config"), key, values, values[::-1]))
    if labelled is not None and labelled.of(AS_GIVEN) - labelled.of(SWAPPED) >= LABELLED_GAIN:
        return RULE.finding(
            f"{key.rpartition('.')[2]} of input {name} is in {order.upper()} order but "
            f"input_type_train is {train}; the labelled evaluation images confirm {train}, so "
            "the values are reversed",
            _mean_evidence(ctx, spec, order),
            severity=Severity.MINOR,
            fix=f"Reverse {key.rpartition('.')[2]} to {train.upper()} order.",
            remedy=reverse,
            measured=f"float model on {labelled.samples} labelled evaluation images: top-1 "
            f"{100 * labelled.of(AS_GIVEN):.1f} % as {train}, "
            f"{100 * labelled.of(SWAPPED):.1f} % swapped",
        )
    given_better = verdict is not None and (verdict.score(SWAPPED) or verdict.given).paired_z
    if verdict is not None and verdict.classifier and (given_better or 0.0) <= -PAIRED_Z:
        # the model takes the data as given: the channel order is right, mean_value is reversed
        swapped = verdict.score(SWAPPED)
        return RULE.finding(
            f"{key.rpartition('.')[2]} of input {name} is in {order.upper()} order but "
            f"input_type_train is {train}; the float model confirms the data's order, so the "
            "values are reversed",
            _mean_evidence(ctx, spec, order),
            severity=Severity.MINOR,
            fix=f"Reverse {key.rpartition('.')[2]} to {train.upper()} order.",
            remedy=reverse,
            measured=verdict.measured(SWAPPED) if swapped is not None else None,
        )
    # from the config alone: ImageNet means in RGB order with input_type_train bgr is how
    # PaddleOCR models are trained, so this is a note, never a plan step
    return RULE.finding(
        f"{key.rpartition('.')[2]} of input {name} is in {order.upper()} order but "
        f"input_type_train is {train}: either the model expects {order.upper()} (then every "
        "input is channel-swapped), the values are reversed, or the model was trained that way "
        "(PaddleOCR models normalise BGR images with the RGB-ordered ImageNet mean); neither "
        "the data nor the model's response confirms a mistake",
        _mean_evidence(ctx, spec, order),
        severity=Severity.INFO,
        fix=f"Check the training pipeline: if it fed {order.upper()}, set input_type_train "
        f"{order}; otherwise reverse {key.rpartition('.')[2]}.",
    )
