"""The first convolution's response: what a batch-normalised network expects to see.

Exported CNNs fold BatchNorm into their convolutions, so the first convolution's output on
data prepared as in training is BatchNorm's output: a few units (gamma * N(0, 1) + beta, with
gamma around 0.1-5). Raw 0..255 pixels fed to a network trained on normalised input make it
tens to hundreds of units; normalised data fed to a network trained on pixels makes it a
hundredth. The RMS of that output needs neither labels nor a confident classifier, and works
for detectors and recognisers alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ptqtui.ortlog import session_options

if TYPE_CHECKING:
    from ptqtui.inputs.model import ModelGraph

# BatchNorm output scale: an RMS in this band is what the trained network saw; outside it by
# 4x or more the input is on another scale (raw pixels: x50-x200; /255 of it: /50-/200)
BN_RMS_LOW = 0.1
BN_RMS_HIGH = 10.0
THREADS = 1


@dataclass(frozen=True, slots=True)
class FirstConv:
    """The first Conv fed (through shape-only ops) by one model input."""

    input: str
    node: str
    output: str


def first_conv(graph: ModelGraph, input_name: str) -> FirstConv | None:
    """The first Conv reached from `input_name`, or None when another op computes first."""
    passthrough = {"Transpose", "Reshape", "Cast", "Identity", "Pad", "Unsqueeze", "Squeeze"}
    tensor = input_name
    for _ in range(8):
        consumers = graph.consumers.get(tensor, ())
        if len(consumers) != 1:
            return None
        node = graph.node(consumers[0])
        if node.op_type == "Conv":
            return FirstConv(input_name, node.name, node.outputs[0])
        if node.op_type not in passthrough:
            return None
        tensor = node.outputs[0]
    return None


class FirstLayer:
    """Runs the model from one input to its first Conv output (a small extracted graph)."""

    def __init__(self, graph: ModelGraph, conv: FirstConv) -> None:
        import onnx.utils
        import onnxruntime as ort  # lazy: slow to import

        sub = onnx.utils.Extractor(graph.model).extract_model([conv.input], [conv.output])
        options = session_options()
        options.intra_op_num_threads = THREADS
        self.conv = conv
        self._session: Any = ort.InferenceSession(
            sub.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )

    def rms(self, x: np.ndarray) -> float:
        """RMS of the first Conv's output on one input array (float32)."""
        (out,) = self._session.run(None, {self.conv.input: x.astype(np.float32, copy=False)})
        arr = np.asarray(out, dtype=np.float64)
        finite = arr[np.isfinite(arr)]
        return float(np.sqrt(np.mean(finite * finite))) if finite.size else math.nan


def off_scale(rms: float | None) -> float | None:
    """How far an RMS lies outside the BatchNorm band, in decades (0 inside it)."""
    if rms is None or not math.isfinite(rms) or rms <= 0:
        return None
    if rms > BN_RMS_HIGH:
        return math.log10(rms / BN_RMS_HIGH)
    if rms < BN_RMS_LOW:
        return math.log10(BN_RMS_LOW / rms)
    return 0.0
