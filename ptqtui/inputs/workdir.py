"""The converter's working_dir: which artefacts are there, and what can be read without the
vendor's runtime.

Read (confirmed in the public `hmct` sources, `CalibrationNode`): in `*_calibrated_model.onnx`
every quantization point is an `HzCalibration` node (custom domain) whose first input is the
tensor it calibrates; its attributes hold `thresholds` (floats: one per tensor, one per
channel for weights, `[min, max]` when asymmetric), `qtype` ("int8", "int16", "float16";
default int8) and `switch` ("ON"/"OFF"). A threshold is the |x| that maps to the largest
integer. These are loaded with `onnx` alone (the file is never run).

Not read (cannot be confirmed from public material): the `HzPreprocess` node's attribute
layout in `*_original_float_model.onnx` (its mean/scale), and `*_quantized_model.onnx`, which
needs the vendor's runtime (`HB_ONNXRuntime`) to execute.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ptqtui.errors import PtqInputError

SUFFIXES = {
    "original": "_original_float_model.onnx",
    "optimized": "_optimized_float_model.onnx",
    "calibrated": "_calibrated_model.onnx",
    "quantized": "_quantized_model.onnx",
}
CALIBRATION_OP = "HzCalibration"


@dataclass(frozen=True, slots=True)
class WorkdirArtifacts:
    """The converter's models found in a working_dir (None: not there)."""

    directory: Path
    original: Path | None = None
    optimized: Path | None = None
    calibrated: Path | None = None
    quantized: Path | None = None


@dataclass(frozen=True, slots=True)
class ConverterThreshold:
    """One HzCalibration node of `*_calibrated_model.onnx`."""

    node: str
    tensor: str  # the tensor it calibrates (its first input)
    weight: bool  # a weight (an initializer) rather than an activation
    thresholds: tuple[float, ...]
    qtype: str  # "int8" | "int16" | "float16"
    on: bool  # switch ON


def find_artifacts(directory: Path, prefix: str | None = None) -> WorkdirArtifacts | None:
    """The converter's models in `directory` (with `prefix`, the config's
    output_model_file_prefix, when several conversions share it)."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    found: dict[str, Path] = {}
    for role, suffix in SUFFIXES.items():
        pattern = f"{prefix}{suffix}" if prefix else f"*{suffix}"
        matches = sorted(directory.glob(pattern))
        if matches:
            found[role] = matches[0]
    if not found:
        return None
    return WorkdirArtifacts(directory, **found)


def read_calibrated_thresholds(path: Path) -> tuple[ConverterThreshold, ...]:
    """Every HzCalibration node's thresholds; PtqInputError when the file is not ONNX."""
    import onnx  # lazy: the log reader stays light

    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except FileNotFoundError:
        raise PtqInputError(path, "no such file") from None
    except Exception as exc:  # protobuf raises its own DecodeError and friends
        raise PtqInputError(path, f"not an ONNX model ({type(exc).__name__})") from exc
    initializers = {i.name for i in model.graph.initializer}
    out = []
    for node in model.graph.node:
        if node.op_type != CALIBRATION_OP or not node.input:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        thresholds = tuple(float(t) for t in attrs.get("thresholds", ()) or ())
        qtype = attrs.get("qtype", b"int8")
        switch = attrs.get("switch", b"ON")
        out.append(
            ConverterThreshold(
                node=node.name,
                tensor=node.input[0],
                weight=node.input[0] in initializers,
                thresholds=thresholds,
                qtype=qtype.decode() if isinstance(qtype, bytes) else str(qtype),
                on=(switch.decode() if isinstance(switch, bytes) else str(switch)) != "OFF",
            )
        )
    return tuple(out)
