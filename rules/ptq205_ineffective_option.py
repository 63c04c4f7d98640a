"""PTQ205: options that do nothing where they are written (or undo what the user meant)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptqtui.rules._remedies import config_remedy, edit, removal

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.inputs.schema import OPTIMIZATION_OP_PATTERN
from ptqtui.remedy import Remedy

if TYPE_CHECKING:
    from ptqtui.check.context import Context
    from ptqtui.inputs.config import MapperConfig

RULE = RuleInfo(
    code="PTQ205",
    name="ineffective-option",
    category="config",
    severity=Severity.MINOR,
    title="Options that have no effect where they are (per_channel with default, ...)",
    why="You believe a setting is in force that the converter ignores: accuracy experiments "
    "then compare identical conversions, and a mean or scale you wrote may not be applied.",
    fix="Remove the option, or change the setting that makes it ignored (calibration_type, "
    "norm_type, input_type_rt), as the finding says.",
    needs=("config",),
    example="[minor] PTQ205 per_channel: True has no effect with calibration_type default (the "
    "search decides per-channel itself) (mapper.yaml line 33)\n"
    "  change: calibration_parameters.per_channel: true -> (remove)",
)

CAL = "calibration_parameters"
INP = "input_parameters"


def check(ctx: Context) -> list[Finding]:
    config = ctx.config
    if config.generation != "makertbin":
        return []
    findings: list[Finding] = []
    findings += _calibration_options(config)
    findings += _norm_options(config)
    findings += _input_options(config)
    findings += _placement_conflicts(config)
    graph = ctx.maybe("graph")
    if graph is not None:
        ops = {n.op_type for n in graph.nodes}
        for item in config.optimization:
            match = OPTIMIZATION_OP_PATTERN.match(item)
            # set_model_output_int8/int16 name the model's outputs, not an op type "model"
            if match and match.group(1) != "model" and match.group(1) not in ops:
                findings.append(
                    _finding(
                        config,
                        f"{CAL}.optimization",
                        f"optimization {item} does nothing: {graph.path.name} has no "
                        f"{match.group(1)} node",
                        item,
                        f"a {match.group(1)} node in the model",
                        fix=f"Remove {item} from optimization.",
                    )
                )
    return findings


def _finding(
    config: MapperConfig,
    key: str,
    message: str,
    observed: str,
    expected: str,
    *,
    fix: str,
    remedy: Remedy | None = None,
    severity: Severity = Severity.MINOR,
) -> Finding:
    where = config.where(key)
    return RULE.finding(
        f"{message} ({where})",
        Evidence(key.rpartition(".")[2], observed, expected, where),
        severity=severity,
        fix=fix,
        remedy=remedy,
    )


def _calibration_options(config: MapperConfig) -> list[Finding]:
    out = []
    cal_type = config.calibration_type
    if cal_type == "skip":
        out.append(
            _finding(
                config,
                f"{CAL}.calibration_type",
                "calibration_type skip calibrates on random data with max: the converted "
                "model is for speed measurements only, its accuracy means nothing",
                "skip",
                "default, mix, kl or max with real calibration samples",
                fix="Use calibration_type default (or mix/kl/max) with ~100 real samples.",
                remedy=config_remedy(edit(config, f"{CAL}.calibration_type", "skip", "default")),
                severity=Severity.MAJOR,
            )
        )
    if config.per_channel and cal_type in ("default", "load", "skip"):
        reason = (
            "the default search tries per-channel itself"
            if cal_type == "default"
            else f"calibration_type {cal_type} does not calibrate activations"
        )
        out.append(
            _finding(
                config,
                f"{CAL}.per_channel",
                f"per_channel: True has no effect with calibration_type {cal_type} ({reason})",
                "True",
                "calibration_type kl or max",
                fix="Remove per_channel, or set calibration_type max/kl to force it.",
                remedy=config_remedy(removal(config, f"{CAL}.per_channel", True)),
            )
        )
    percentile = config.values.get(f"{CAL}.max_percentile")
    if percentile is not None and percentile != 1.0 and cal_type != "max":
        out.append(
            _finding(
                config,
                f"{CAL}.max_percentile",
                f"max_percentile {percentile:g} is only read with calibration_type max, "
                f"not {cal_type}",
                f"{percentile:g}",
                "calibration_type max",
                fix="Set calibration_type max to use the percentile, or remove max_percentile.",
                remedy=config_remedy(edit(config, f"{CAL}.calibration_type", cal_type, "max")),
            )
        )
    if config.has_optimization("asymmetric") and cal_type == "default":
        out.append(
            _finding(
                config,
                f"{CAL}.optimization",
                "optimization asymmetric cannot be set with calibration_type default: "
                "the search decides it",
                "asymmetric",
                "calibration_type kl or max",
                fix="Remove asymmetric, or set calibration_type max/kl to force it.",
            )
        )
    if cal_type in ("load", "skip"):
        for item in ("asymmetric", "bias_correction"):
            if config.has_optimization(item):
                out.append(
                    _finding(
                        config,
                        f"{CAL}.optimization",
                        f"optimization {item} does nothing with calibration_type {cal_type}",
                        item,
                        "a calibrating calibration_type",
                        fix=f"Remove {item}.",
                    )
                )
        if f"{CAL}.cal_data_dir" in config.values and cal_type == "load":
            out.append(
                _finding(
                    config,
                    f"{CAL}.cal_data_dir",
                    "cal_data_dir is not read with calibration_type load (the QAT model "
                    "carries its scales)",
                    "set",
                    "(unset)",
                    fix="Remove cal_data_dir, or calibrate (calibration_type default).",
                )
            )
    if config.has_optimization("set_model_output_int8") and config.has_optimization(
        "set_model_output_int16"
    ):
        out.append(
            _finding(
                config,
                f"{CAL}.optimization",
                "optimization sets the model output both int8 and int16; only one can hold",
                "set_model_output_int8, set_model_output_int16",
                "one of them",
                fix="Keep one of set_model_output_int8 / set_model_output_int16.",
            )
        )
    seen: set[str] = set()
    for item in config.optimization:
        if item in seen:
            out.append(
                _finding(
                    config,
                    f"{CAL}.optimization",
                    f"optimization lists {item} twice",
                    item,
                    "each item once",
                    fix=f"Remove the second {item}.",
                )
            )
        seen.add(item)
    return out


def _norm_options(config: MapperConfig) -> list[Finding]:
    out = []
    uses = {
        "no_preprocess": (),
        "data_mean": ("mean_value",),
        "data_scale": ("scale_value",),
        "data_mean_and_scale": ("mean_value", "scale_value"),
    }
    for spec in config.inputs:
        if spec.norm_type not in uses:
            continue
        label = f" of input {spec.name}" if len(config.inputs) > 1 and spec.name else ""
        for name, values in (("mean_value", spec.mean), ("scale_value", spec.scale)):
            if values is None or name in uses[spec.norm_type]:
                continue
            trivial = all(v == (0.0 if name == "mean_value" else 1.0) for v in values)
            wanted = (
                "data_mean_and_scale"
                if uses[spec.norm_type]
                else ("data_mean" if name == "mean_value" else "data_scale")
            )
            out.append(
                _finding(
                    config,
                    f"{INP}.{name}",
                    f"{name} {' '.join(f'{v:g}' for v in values)}{label} is ignored: norm_type "
                    f"{spec.norm_type} does not apply it",
                    " ".join(f"{v:g}" for v in values),
                    f"norm_type {wanted}",
                    fix=f"Set norm_type {wanted} if the model needs this {name[:-6]}, "
                    f"else remove {name}.",
                    remedy=config_remedy(edit(config, f"{INP}.norm_type", spec.norm_type, wanted)),
                    # a mean/scale written but not applied feeds the model unnormalised data
                    severity=Severity.MINOR if trivial else Severity.MAJOR,
                )
            )
    return out


def _input_options(config: MapperConfig) -> list[Finding]:
    out = []
    for spec in config.inputs:
        if spec.space_and_range == "bt601_video" and spec.type_rt != "nv12":
            out.append(
                _finding(
                    config,
                    f"{INP}.input_space_and_range",
                    f"input_space_and_range bt601_video only applies to nv12 input, not "
                    f"input_type_rt {spec.type_rt}",
                    "bt601_video",
                    "input_type_rt nv12",
                    fix="Remove input_space_and_range (regular is the default).",
                    remedy=config_remedy(
                        removal(config, f"{INP}.input_space_and_range", "bt601_video")
                    ),
                )
            )
    batch = config.values.get(f"{INP}.input_batch")
    if batch is not None and batch != 1:
        if len(config.inputs) > 1:
            out.append(
                _finding(
                    config,
                    f"{INP}.input_batch",
                    f"input_batch {batch} only applies to single-input models; this one has "
                    f"{len(config.inputs)} inputs",
                    str(batch),
                    "a single-input model",
                    fix="Remove input_batch; set the batch in input_shape.",
                )
            )
        elif (
            config.inputs
            and config.inputs[0].shape
            and config.inputs[0].shape[0]
            not in (
                1,
                None,
            )
        ):
            out.append(
                _finding(
                    config,
                    f"{INP}.input_batch",
                    f"input_batch {batch} needs input_shape batch 1, not "
                    f"{config.inputs[0].shape[0]}",
                    str(batch),
                    "input_shape 1x...",
                    fix="Set the first input_shape dimension to 1, or remove input_batch.",
                )
            )
    return out


def _placement_conflicts(config: MapperConfig) -> list[Finding]:
    out = []
    listed = {s.node: s for s in config.node_settings if s.source != "node_info" and s.on}
    for s in config.node_settings:
        if s.source != "node_info" or not s.on:
            continue
        other = listed.get(s.node)
        if other is not None and other.on != s.on:
            out.append(
                _finding(
                    config,
                    f"{CAL}.{other.source}",
                    f"{other.source} puts {s.node} on the {other.on}, but node_info (which takes "
                    f"priority) puts it on the {s.on}",
                    f"{other.source}: {s.node}",
                    f"node_info ON: {s.on}",
                    fix=f"Remove {s.node} from {other.source}.",
                )
            )
    return out
