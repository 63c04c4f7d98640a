"""Unfolded BatchNormalization nodes: the training data's own statistics kept in the model.

A BatchNormalization node that was not folded into its convolution holds the running mean and
variance of its input over the training data. Data prepared as in training gives channel means
close to them; data prepared otherwise (channels swapped, another scale) moves them. The
deviation, sum over BN nodes of mean over channels of (mean - running_mean)^2 / running_var,
is evidence that knows the direction without labels or a classifier. Paddle exports keep such
nodes (PP-OCRv4 det: 3 in its head; channels swapped on ordinary photos, 32 samples: deviation
0.22 against 0.06 in the training's order, paired z +4.7); torch exports fold them, and then
this fact has nothing to say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ptqtui.ortlog import session_options

if TYPE_CHECKING:
    from ptqtui.inputs.model import ModelGraph

THREADS = 1
MAX_NODES = 8  # the first BatchNormalization nodes in graph order: enough, and bounded


@dataclass(frozen=True, slots=True)
class RunningStats:
    """One BatchNormalization node's input and its training statistics per channel."""

    node: str
    tensor: str
    mean: np.ndarray
    var: np.ndarray


def running_stats(graph: ModelGraph) -> tuple[RunningStats, ...]:
    """The unfolded BatchNormalization nodes whose mean and variance are constants."""
    from onnx import numpy_helper

    consts: dict[str, Any] = {t.name: t for t in graph.model.graph.initializer}
    for node in graph.model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    consts[node.output[0]] = attr.t
    out = []
    for node in graph.model.graph.node:
        if node.op_type != "BatchNormalization" or len(node.input) < 5:
            continue
        if node.input[3] not in consts or node.input[4] not in consts:
            continue
        mean = numpy_helper.to_array(consts[node.input[3]]).astype(np.float64).ravel()
        var = numpy_helper.to_array(consts[node.input[4]]).astype(np.float64).ravel()
        if mean.size == 0 or mean.size != var.size or np.any(var <= 0):
            continue
        out.append(RunningStats(node.name or node.output[0], node.input[0], mean, var))
        if len(out) == MAX_NODES:
            break
    return tuple(out)


class BatchNormProbe:
    """Runs the float model exposing its BatchNormalization inputs; scores one input's
    deviation from the training statistics."""

    def __init__(self, graph: ModelGraph, stats: tuple[RunningStats, ...]) -> None:
        import onnx
        import onnxruntime as ort  # lazy: slow to import

        model = onnx.ModelProto()
        model.CopyFrom(graph.model)
        present = {o.name for o in model.graph.output}
        for s in stats:
            if s.tensor not in present:
                model.graph.output.append(onnx.helper.make_empty_tensor_value_info(s.tensor))
        options = session_options()
        options.intra_op_num_threads = THREADS
        self.stats = stats
        self._session: Any = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        self._wanted = [s.tensor for s in stats]

    def deviation(self, feeds: dict[str, np.ndarray]) -> float:
        """Sum over BN nodes of the mean squared channel-mean shift in running-std units."""
        outs = self._session.run(self._wanted, feeds)
        total = 0.0
        for s, out in zip(self.stats, outs, strict=True):
            arr = np.asarray(out, dtype=np.float64)
            if arr.ndim < 2 or arr.shape[1] != s.mean.size:
                continue
            axes = tuple(i for i in range(arr.ndim) if i != 1)
            means = arr.mean(axis=axes)
            total += float(np.mean((means - s.mean) ** 2 / s.var))
        return total if math.isfinite(total) else math.nan


def paired_gain_z(given: list[float], variant: list[float]) -> float | None:
    """Mean per-sample fall of the deviation from as given to the variant, in standard
    errors (positive: the variant is closer to the training statistics)."""
    pairs = [(g, v) for g, v in zip(given, variant, strict=True) if math.isfinite(g + v)]
    if len(pairs) < 2:
        return None
    diff = np.array([g - v for g, v in pairs])
    spread = float(diff.std(ddof=1))
    if spread == 0.0:
        return 0.0
    return float(diff.mean() / (spread / math.sqrt(diff.size)))
