"""From the user's hb_mapper YAML (or flags) to the simulator's typed ``QuantSettings``.

What is read:
- ``calibration_parameters``: ``calibration_type``, ``max_percentile``, ``per_channel``,
  ``run_on_cpu``, ``run_on_bpu``, ``optimization`` (``asymmetric``, ``bias_correction``,
  ``set_all_nodes_int16``, ``set_model_output_int8``, ``set_Softmax_input_int8``,
  ``set_Softmax_output_int8``);
- ``node_info``: ``ON``, ``InputType`` (and ``InputTypeN``: the widest wins, since the simulator
  gives a node one activation dtype), ``OutputType``.
Flags (``QuantFlags``) override the config, field by field; without a config the converter's
defaults apply (``calibration_type: default``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ptqtui.inputs.config import MapperConfig
from ptqtui.quant.scheme import CALIBRATION_TYPES, NodeOverride, QuantSettings

_WIDER = {"int8": 1, "int16": 2}


@dataclass(frozen=True, slots=True)
class QuantFlags:
    """Command-line overrides of the config's calibration settings (None = as configured)."""

    calibration_type: str | None = None
    max_percentile: float | None = None
    per_channel: bool | None = None
    asymmetric: bool | None = None
    bias_correction: bool | None = None
    set_all_nodes_int16: bool | None = None

    def __post_init__(self) -> None:
        if self.calibration_type is not None and self.calibration_type not in CALIBRATION_TYPES:
            allowed = ", ".join(CALIBRATION_TYPES)
            raise ValueError(f"calibration type {self.calibration_type!r} is not one of {allowed}")
        if self.max_percentile is not None and not 0.0 < self.max_percentile <= 1.0:
            raise ValueError(f"max_percentile {self.max_percentile} is not in (0, 1]")


def settings_from_config(
    config: MapperConfig | None, flags: QuantFlags | None = None
) -> QuantSettings:
    """The ``QuantSettings`` the config (then the flags) ask for."""
    settings = QuantSettings() if config is None else _from_config(config)
    if flags is None:
        return settings
    changes = {
        name: getattr(flags, name)
        for name in (
            "calibration_type",
            "max_percentile",
            "per_channel",
            "asymmetric",
            "bias_correction",
            "set_all_nodes_int16",
        )
        if getattr(flags, name) is not None
    }
    return replace(settings, **changes)


def _from_config(config: MapperConfig) -> QuantSettings:
    ctype = config.calibration_type
    if ctype not in CALIBRATION_TYPES:  # a problem the config loader reported already
        ctype = "default"
    pct = config.max_percentile
    if pct is not None and not 0.0 < float(pct) <= 1.0:
        pct = None
    overrides: dict[str, NodeOverride] = {}
    for ns in config.node_settings:
        if ns.source != "node_info":
            continue
        widths = [t for t in (ns.input_type, *(t for _, t in ns.input_types)) if t in _WIDER]
        in_dtype = max(widths, key=_WIDER.__getitem__) if widths else None
        on = ns.on if ns.on in ("CPU", "BPU") else None
        out = ns.output_type if ns.output_type in _WIDER else None
        if on is None and in_dtype is None and out is None:
            continue
        overrides[ns.node] = NodeOverride(ns.node, on, in_dtype, out)
    cpu = tuple(dict.fromkeys(config.run_on_cpu))
    bpu = tuple(n for n in dict.fromkeys(config.run_on_bpu) if n not in cpu)  # CPU wins
    opt = config.has_optimization
    return QuantSettings(
        calibration_type=ctype,
        max_percentile=float(pct) if pct is not None else None,
        per_channel=config.per_channel,
        asymmetric=opt("asymmetric"),
        bias_correction=opt("bias_correction"),
        node_overrides=tuple(overrides.values()),
        run_on_cpu=cpu,
        run_on_bpu=bpu,
        set_all_nodes_int16=opt("set_all_nodes_int16"),
        set_model_output_int8=opt("set_model_output_int8"),
        softmax_input_int8=opt("set_Softmax_input_int8"),
        softmax_output_int8=opt("set_Softmax_output_int8"),
    )
