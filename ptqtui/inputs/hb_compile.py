"""What the newer `hb_compile` (OE 3.x, march nash-*) configs add: `quant_config`, read typed.

`calibration_parameters.quant_config` is a mapping written inline in the YAML, or the path of a
JSON file (relative to the YAML, as the converter reads it) with three parts:

    model_config: all_node_type (int8 | int16), activation {calibration_type, max_percentile,
                  per_channel, asymmetric: one value, or a list the converter searches over},
                  weight {bias_correction {...}}
    op_config:    {OpType: {qtype: int8 | int16 | float16 | float32}}
    node_config:  {NodeName: {qtype: ...} or {input0: int16, input1: ..., output0: ...}}

Everything else is named in `unsupported` (the simulator ignores it, and PTQ206 says so).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QTYPES = ("int8", "int16", "float16", "float32")  # qtypes the simulator can stand for
FLOAT_QTYPES = ("float16", "float32")  # simulated as float (no quantization error): optimistic
SEARCHED = ("calibration_type", "max_percentile", "per_channel", "asymmetric")
PORT = re.compile(r"^(input|output)(\d+)$")
MAX_JSON_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class QuantConfig:
    """The parts of `quant_config` the simulator reads; the rest named in `unsupported`."""

    source: str  # "inline" or the JSON file's path
    all_node_type: str | None = None  # "int8" | "int16"
    calibration_types: tuple[str, ...] = ()  # one value, or the list searched
    max_percentiles: tuple[float, ...] = ()
    per_channel: tuple[bool, ...] = ()
    asymmetric: tuple[bool, ...] = ()
    bias_correction: bool = False
    op_qtypes: tuple[tuple[str, str], ...] = ()  # (op type, qtype)
    node_qtypes: tuple[tuple[str, str], ...] = ()  # (node, widest qtype of its inputs/outputs)
    unsupported: tuple[tuple[str, str], ...] = ()  # (quant_config key path, why)

    @property
    def searched(self) -> bool:
        """Whether any activation option lists several values (a modelwise search)."""
        return any(len(getattr(self, f)) > 1 for f in (
            "calibration_types", "max_percentiles", "per_channel", "asymmetric"
        ))  # fmt: skip


class QuantConfigError(ValueError):
    """quant_config cannot be read at all (bad JSON path, not a mapping)."""


def read_quant_config(value: Any, config_path: Path) -> QuantConfig:
    """`quant_config` as written (a mapping, or a JSON file's path) -> QuantConfig."""
    source = "inline"
    if isinstance(value, str):
        path = Path(value.strip())
        if not path.is_absolute():
            path = config_path.parent / path
        source = str(path)
        value = _load_json(path)
    if not isinstance(value, dict):
        raise QuantConfigError(
            f"quant_config must be a mapping or a JSON file's path, not {type(value).__name__}"
        )
    unsupported: list[tuple[str, str]] = []
    fields: dict[str, Any] = {}
    for key, part in value.items():
        if key == "model_config" and isinstance(part, dict):
            fields.update(_model_config(part, unsupported))
        elif key == "op_config" and isinstance(part, dict):
            fields["op_qtypes"] = _qtypes(part, "op_config", unsupported, ports=False)
        elif key == "node_config" and isinstance(part, dict):
            fields["node_qtypes"] = _qtypes(part, "node_config", unsupported, ports=True)
        else:
            unsupported.append((str(key), "not read by ptqtui"))
    return QuantConfig(source=source, unsupported=tuple(unsupported), **fields)


def _load_json(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise QuantConfigError(f"quant_config file {path} is too large for a JSON config")
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise QuantConfigError(f"quant_config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise QuantConfigError(f"quant_config file {path} cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise QuantConfigError(
            f"quant_config file {path} is not JSON: {exc.msg} (line {exc.lineno})"
        ) from None


def _listed(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _model_config(part: dict[str, Any], unsupported: list[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in part.items():
        where = f"model_config.{key}"
        if key == "all_node_type":
            if value in ("int8", "int16"):
                out["all_node_type"] = value
            else:
                unsupported.append((where, f"{value!r} (the simulator has int8 and int16)"))
        elif key == "activation" and isinstance(value, dict):
            out.update(_activation(value, unsupported))
        elif key == "weight" and isinstance(value, dict):
            for name, setting in value.items():
                if name == "bias_correction" and setting:
                    out["bias_correction"] = True
                else:
                    unsupported.append((f"{where}.{name}", "not read by ptqtui"))
        else:
            unsupported.append((where, "not read by ptqtui"))
    return out


def _activation(part: dict[str, Any], unsupported: list[tuple[str, str]]) -> dict[str, Any]:
    from ptqtui.quant.scheme import CALIBRATION_TYPES  # no numpy: a plain tuple

    out: dict[str, Any] = {}
    for key, value in part.items():
        where = f"model_config.activation.{key}"
        values = _listed(value)
        if key == "calibration_type":
            known = tuple(str(v) for v in values if str(v) in CALIBRATION_TYPES)
            for v in values:
                if str(v) not in CALIBRATION_TYPES:
                    unsupported.append((where, f"calibration_type {v!r} is not simulated"))
            out["calibration_types"] = known
        elif key == "max_percentile":
            good = tuple(float(v) for v in values if _fraction(v))
            if len(good) != len(values):
                unsupported.append((where, f"{value!r} is not a fraction in (0, 1]"))
            out["max_percentiles"] = good
        elif key in ("per_channel", "asymmetric"):
            flags = tuple(v for v in values if isinstance(v, bool))
            if len(flags) != len(values):
                unsupported.append((where, f"{value!r} is not True/False"))
            out[key] = flags
        else:
            unsupported.append((where, "not read by ptqtui"))
    return out


def _fraction(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1


def _qtypes(
    part: dict[str, Any], where: str, unsupported: list[tuple[str, str]], *, ports: bool
) -> tuple[tuple[str, str], ...]:
    out = []
    for name, setting in part.items():
        if not isinstance(setting, dict):
            unsupported.append((f"{where}.{name}", "not a mapping like {'qtype': 'int16'}"))
            continue
        chosen: list[str] = []
        for key, qtype in setting.items():
            if key != "qtype" and not (ports and PORT.match(str(key))):
                unsupported.append((f"{where}.{name}.{key}", "not read by ptqtui"))
            elif qtype not in QTYPES:
                unsupported.append((f"{where}.{name}.{key}", f"qtype {qtype!r} is not simulated"))
            else:
                chosen.append(str(qtype))
        if chosen:
            out.append((str(name), _widest(chosen)))
    return tuple(out)


def _widest(qtypes: list[str]) -> str:
    """One dtype a node: float beats int16 beats int8 (the simulator gives one per node)."""
    order = {"int8": 0, "int16": 1, "float16": 2, "float32": 3}
    return max(qtypes, key=order.__getitem__)


def derived_norm_type(mean: object, scale: object) -> str:
    """hb_compile derives norm_type from which of mean_value / scale_value (std_value) are set."""
    if mean is not None and scale is not None:
        return "data_mean_and_scale"
    if mean is not None:
        return "data_mean"
    if scale is not None:
        return "data_scale"
    return "no_preprocess"
