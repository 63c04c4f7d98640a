"""From the user's hb_mapper YAML (or flags) to the simulator's typed ``QuantSettings``.

What is read:
- ``calibration_parameters``: ``calibration_type``, ``max_percentile``, ``per_channel``,
  ``run_on_cpu``, ``run_on_bpu``, ``optimization`` (``asymmetric``, ``bias_correction``,
  ``set_all_nodes_int16``, ``set_model_output_int8``, ``set_Softmax_input_int8``,
  ``set_Softmax_output_int8``);
- ``node_info``: ``ON``, ``InputType`` (and ``InputTypeN``: the widest wins, since the simulator
  gives a node one activation dtype), ``OutputType``.
- hb_compile's ``quant_config`` (``inputs.hb_compile.QuantConfig``): one activation value each
  sets the method, percentile, per_channel and asymmetric; a list of values (the converter's
  modelwise search) maps to ``default`` (our search over the same grid); ``all_node_type:
  int16``; ``weight.bias_correction``; ``node_config`` and, given the model, ``op_config``
  qtypes as node overrides (int16; float16/float32 are simulated as float, i.e. without
  quantization error: optimistic for float16).
Flags (``QuantFlags``) override the config, field by field; without a config the converter's
defaults apply (``calibration_type: default``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ptqtui.inputs.config import MapperConfig
from ptqtui.quant.scheme import CALIBRATION_TYPES, NodeOverride, QuantSettings

if TYPE_CHECKING:
    from ptqtui.inputs.hb_compile import QuantConfig
    from ptqtui.inputs.model import ModelGraph

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
    config: MapperConfig | None,
    flags: QuantFlags | None = None,
    *,
    graph: ModelGraph | None = None,
) -> QuantSettings:
    """The ``QuantSettings`` the config (then the flags) ask for; `graph` resolves
    hb_compile's per-op-type qtypes (``op_config``) to nodes."""
    settings = QuantSettings() if config is None else _from_config(config)
    if config is not None and config.quant_config is not None:
        settings = _with_quant_config(settings, config.quant_config, graph)
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


def _with_quant_config(
    settings: QuantSettings, qc: QuantConfig, graph: ModelGraph | None
) -> QuantSettings:
    """hb_compile's quant_config on top of the YAML's own calibration keys (it wins)."""
    changes: dict[str, object] = {}
    if qc.searched:
        changes["calibration_type"] = "default"
    else:
        if qc.calibration_types and qc.calibration_types[0] in CALIBRATION_TYPES:
            changes["calibration_type"] = qc.calibration_types[0]
        if qc.max_percentiles:
            pct = qc.max_percentiles[0]
            changes["max_percentile"] = None if pct >= 1.0 else pct
        for flag in ("per_channel", "asymmetric"):
            values = getattr(qc, flag)
            if values:
                changes[flag] = values[0]
    if qc.bias_correction:
        changes["bias_correction"] = True
    if qc.all_node_type == "int16":
        changes["set_all_nodes_int16"] = True
    qtypes = dict(qc.node_qtypes)
    if graph is not None and qc.op_qtypes:
        by_op = dict(qc.op_qtypes)
        for node in graph.nodes:
            if node.op_type in by_op:
                qtypes.setdefault(node.name, by_op[node.op_type])  # node_config wins
    if qtypes:
        overrides = {o.node: o for o in settings.node_overrides}
        for node, qtype in qtypes.items():
            node = graph.resolve_node(node) or node if graph is not None else node
            if qtype in ("float16", "float32"):
                overrides[node] = NodeOverride(node, "CPU", None, None)
            else:
                overrides[node] = NodeOverride(node, "BPU", qtype, qtype)
        changes["node_overrides"] = tuple(overrides.values())
    return replace(settings, **changes)  # type: ignore[arg-type]
