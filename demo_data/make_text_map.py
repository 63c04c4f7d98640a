"""The demo's non-classifier scenario: a tiny DBNet-style text-map model, its calibration
files, and evaluation pages with mask labels (`scenarios/text_map/`).

The model is written with onnx.helper (no training): it answers "how much dark ink is
around this pixel" with two 3x3 convolutions and a sigmoid, which is what a text detector's
probability map looks like on a page of dark strokes. The pages are light paper with rows of
dark word-like bars; the masks are the bars. Everything is seeded: the files are the same
byte for byte on every run.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
NAME = "text_map"
SIZE = 64
N_CALIB = 100
N_EVAL = 12
SEED = 18  # issue 18


def page(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A 64x64 RGB page with 2-4 lines of dark word bars, and the bars' 0/255 mask."""
    paper = rng.integers(185, 245)
    img = np.full((SIZE, SIZE, 3), paper, np.float32)
    img += np.linspace(-15, 15, SIZE)[None, :, None] * rng.uniform(-1, 1)  # uneven light
    img += rng.normal(0, 4, img.shape)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    y = int(rng.integers(3, 10))
    while y < SIZE - 8:
        h = int(rng.integers(4, 8))
        x = int(rng.integers(1, 8))
        while x < SIZE - 6:
            w = int(rng.integers(5, 16))
            ink = rng.integers(15, 80)
            right = min(SIZE, x + w)
            img[y : y + h, x:right] = ink + rng.normal(0, 6, (h, right - x, 3))
            mask[y : y + h, x:right] = 255
            x += w + int(rng.integers(3, 7))
        y += h + int(rng.integers(5, 12))
    return np.clip(img, 0, 255).astype(np.uint8), mask


def build_model(path: Path) -> None:
    """images [1,3,64,64] (x/255 by the config) -> Conv3x3(8) -> Relu -> Conv3x3(8) -> Relu ->
    Conv1x1(1) -> Sigmoid -> maps [1,1,64,64]: ~1 on dark strokes, ~0 on paper."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(SEED)
    # ink = 1 - brightness: every first-layer channel sums the 3x3 neighbourhood negatively
    w1 = -np.abs(rng.normal(1.0, 0.25, (8, 3, 3, 3))) / 27
    b1 = np.full(8, 0.7) + rng.normal(0, 0.05, 8)  # paper (~0.85 bright) -> ~0, ink -> ~0.5
    w2 = np.abs(rng.normal(1.0, 0.3, (8, 8, 3, 3))) / 72
    b2 = rng.normal(0, 0.02, 8)
    w3 = np.abs(rng.normal(1.0, 0.2, (1, 8, 1, 1))) * (40 / 8)
    b3 = np.array([-10.0])  # the map's edge on the strokes' edge: IoU 0.94 with the masks
    init = [
        numpy_helper.from_array(np.asarray(a, np.float32), n)
        for n, a in (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2), ("w3", w3), ("b3", b3))
    ]
    nodes = [
        helper.make_node("Conv", ["images", "w1", "b1"], ["c1"], name="conv1", pads=[1] * 4),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1] * 4),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"], name="head"),
        helper.make_node("Sigmoid", ["c3"], ["maps"], name="prob"),
    ]
    graph = helper.make_graph(
        nodes,
        "text_map",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("maps", TensorProto.FLOAT, [1, 1, SIZE, SIZE])],
        initializer=init,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    model.producer_name = "ptqtui demo_data/make_text_map.py"
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


CONFIG = """# ptqtui demo scenario text_map: a DBNet-style text-map model, mask labels
# hb_mapper makertbin config for the demo text-map model (64x64 RGB, NCHW, x/255).
model_parameters:
  onnx_model: model.onnx
  march: bernoulli2
  output_model_file_prefix: text_map_64x64
  working_dir: model_output
  layer_out_dump: False

input_parameters:
  input_name: images
  input_type_train: rgb
  input_layout_train: NCHW
  input_type_rt: rgb
  input_layout_rt: NCHW
  input_shape: 1x3x64x64
  norm_type: data_scale
  scale_value: 0.0039215686

calibration_parameters:
  cal_data_dir: ./calibration_data_rgb
  cal_data_type: uint8
  calibration_type: max
  per_channel: True

compiler_parameters:
  compile_mode: latency
  debug: False
  core_num: 1
  optimize_level: O3
"""

# A dense-map model (one probability channel, like DBNet's) instead of a classifier: ptqtui
# measures the binarised maps' IoU with the float model's on every calibration page, and with
# the masks in eval/masks the real IoU float vs int8.
EXPECTED = {
    "title": "DBNet-style text map: the loss as map IoU, with mask labels",
    "must_fire": [],
    "no_other_critical": True,
    "max_severity_otherwise": None,
}


def _png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def write_text_map(log: Callable[[str], None]) -> None:
    """scenarios/text_map/: model, config, expected.json, calibration .bin, eval PNGs + masks;
    and the scenario added to scenarios/index.json."""
    folder = HERE / "scenarios" / NAME
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "calibration_data_rgb").mkdir(parents=True)
    (folder / "eval" / "masks").mkdir(parents=True)
    build_model(folder / "model.onnx")
    (folder / "config.yaml").write_text(CONFIG, encoding="utf-8")
    (folder / "expected.json").write_text(json.dumps(EXPECTED, indent=2) + "\n", "utf-8")
    rng = np.random.default_rng(SEED)
    for i in range(N_CALIB):
        img, _ = page(rng)
        img.transpose(2, 0, 1).astype(np.uint8).tofile(
            folder / "calibration_data_rgb" / f"page_{i:03d}.bin"
        )
    for i in range(N_EVAL):
        img, mask = page(rng)
        (folder / "eval" / f"page_{i:03d}.png").write_bytes(_png(img[:, :, ::-1]))  # BGR file
        (folder / "eval" / "masks" / f"page_{i:03d}.png").write_bytes(_png(mask))
    index_path = HERE / "scenarios" / "index.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    if NAME not in index["order"]:
        index["order"].append(NAME)
    index_path.write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    log(f"wrote scenario {NAME}: {N_CALIB} calibration pages, {N_EVAL} labelled pages")
