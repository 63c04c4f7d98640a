"""YOLO heads as ONNX models (built here with onnx.helper, 64 x 64 input, 2 classes): per-level
maps with DFL (v8 style: 4*reg_max box channels and class channels per stride) and the
concatenated v8 output [1, 4+nc, anchors]. The adapter is chosen from the model's outputs by
the analysis itself, and decoding + NMS of the outputs onnxruntime computes give the planted
boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ptqtui.analysis.run import run_analysis
from ptqtui.analysis.tasks import YoloDetection
from ptqtui.inputs.resolve import load_inputs
from ptqtui.request import InputFlags, Request

SIZE = 64
STRIDES = (8, 16, 32)
REG = 16  # reg_max of every public v8/v11 export
NC = 2
FLAGS = InputFlags(input_type_train="featuremap", layout="NCHW", cal_data_type="float32")


def _model(outputs: dict[str, np.ndarray]) -> onnx.ModelProto:
    """x[1,3,64,64] -> each output = its constant + 0 * mean(x) (onnxruntime computes them)."""
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0, name="mean"),  # a scalar
        helper.make_node("Mul", ["m", "zero"], ["z"], name="zeroed"),
    ]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    outs = []
    for name, value in outputs.items():
        inits.append(numpy_helper.from_array(value.astype(np.float32), f"{name}_c"))
        nodes.append(helper.make_node("Add", [f"{name}_c", "z"], [name], name=f"{name}_add"))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(
        nodes,
        "yolo_head",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        outs,
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# planted detections: (stride, cell y, cell x, left, top, right, bottom in strides, class,
# class logit); the second is a weaker duplicate of the first that NMS must drop
PLANTED = [
    (8, 2, 3, 2, 1, 3, 2, 1, 5.0),
    (8, 2, 4, 3, 1, 2, 2, 1, 2.0),
    (16, 2, 1, 1, 1, 1, 1, 0, 4.0),
]


def _xyxy(stride: int, gy: int, gx: int, left: int, t: int, r: int, b: int) -> list[float]:
    cx, cy = gx + 0.5, gy + 0.5
    return [(cx - left) * stride, (cy - t) * stride, (cx + r) * stride, (cy + b) * stride]


def _dfl_maps() -> dict[str, np.ndarray]:
    out = {}
    for s in STRIDES:
        h = SIZE // s
        box = np.zeros((1, 4 * REG, h, h), np.float32)
        cls = np.full((1, NC, h, h), -10.0, np.float32)
        for stride, gy, gx, *sides, c, logit in PLANTED:
            if stride != s:
                continue
            for k, d in enumerate(sides):  # a sharp distribution on bin d of each side
                box[0, k * REG + d, gy, gx] = 30.0
            cls[0, c, gy, gx] = logit
        out[f"box{s}"] = box
        out[f"cls{s}"] = cls
    return out


def _v8_rows() -> np.ndarray:
    """[1, 4+nc, anchors]: cx, cy, w, h in pixels, then class probabilities."""
    anchors = sum((SIZE // s) ** 2 for s in STRIDES)  # 84
    rows = np.zeros((1, 4 + NC, anchors), np.float32)
    rows[0, 2:4] = 4.0
    for j, (stride, gy, gx, *sides, c, logit) in enumerate(PLANTED):
        x0, y0, x1, y1 = _xyxy(stride, gy, gx, *sides)
        rows[0, :4, 10 + j] = [(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]
        rows[0, 4 + c, 10 + j] = 1.0 / (1.0 + np.exp(-logit))
    return rows


def _analyse(tmp: Path, outputs: dict[str, np.ndarray]):
    onnx.save(_model(outputs), tmp / "yolo.onnx")
    assert (tmp / "yolo.onnx").stat().st_size < 200_000
    (tmp / "cal").mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        x = rng.normal(0, 1, (1, 3, SIZE, SIZE)).astype(np.float32)
        np.save(tmp / "cal" / f"{i}.npy", x)
    request = Request(model=tmp / "yolo.onnx", cal_dirs=(tmp / "cal",), flags=FLAGS)
    analysis, ctx = run_analysis(load_inputs(request), sensitivity_samples=2)
    return analysis, ctx


WANT = sorted(
    [[*_xyxy(*PLANTED[0][:7]), 1], [*_xyxy(*PLANTED[2][:7]), 0]], key=lambda r: r[0]
)  # the duplicate (second) is suppressed


@pytest.mark.parametrize("head", ["dfl_maps", "v8_rows"])
def test_the_yolo_head_is_recognised_from_its_outputs_and_decodes_to_the_planted_boxes(
    tmp_path: Path, head: str
) -> None:
    outputs = _dfl_maps() if head == "dfl_maps" else {"output0": _v8_rows()}
    analysis, ctx = _analyse(tmp_path, outputs)
    assert isinstance(ctx.task, YoloDetection)  # chosen from the outputs, no --task
    assert analysis.quality is not None and analysis.quality.task == "detection"
    assert analysis.quality.metric == "box F1@0.5 agreement"
    boxes = ctx.task.decode(ctx.sim.run_float(ctx.samples[0]))[0]
    got = sorted(
        [[*map(float, b), int(c)] for b, c in zip(boxes.xyxy, boxes.classes, strict=True)],
        key=lambda r: r[0],
    )
    assert len(got) == len(WANT)
    for g, w in zip(got, WANT, strict=True):
        assert g[4] == w[4] and g[:4] == pytest.approx(w[:4], abs=0.05)
    # the scores are the planted class probabilities
    assert sorted(boxes.scores.tolist()) == pytest.approx(
        sorted([1 / (1 + np.exp(-5.0)), 1 / (1 + np.exp(-4.0))]), abs=1e-4
    )
    # nothing quantizable changes the constant head: the int8 model agrees on every sample
    assert analysis.quality.top1_agreement == 1.0
