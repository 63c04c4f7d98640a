"""Small inputs for the rule tests: a colour classifier, natural-looking images, configs.

The classifier is a prototype model: features are the per-channel means of the (normalised)
image; each class fires when the features are near its prototype colour. All prototypes are
warm (red above blue), so the same images with channels swapped, rescaled or normalised twice
land far from every prototype and the model becomes unsure: the probe can tell.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import yaml
from onnx import TensorProto, helper, numpy_helper

from ptqtui.check.context import Context
from ptqtui.inputs.resolve import load_inputs
from ptqtui.request import Request

SIZE = 16
MEAN = (123.675, 116.28, 103.53)  # ImageNet, RGB order, 0..255
SCALE = (0.01712, 0.01751, 0.01743)
# Class colours (RGB 0..255): orange, yellow, red, olive, brown; all with R > B
PROTOTYPES = ((230, 140, 50), (220, 200, 60), (200, 50, 40), (130, 140, 40), (140, 90, 50))
KERNEL_WIDTH = 0.6  # in normalised units; images of one class spread about 0.3
LOGIT_GAIN = 8.0


def _init(name: str, a: Any) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name=name)


def colour_classifier(*, own_normalisation: bool = False, size: int = SIZE) -> onnx.ModelProto:
    """images[N,3,S,S] (RGB, normalised; raw 0..255 with own_normalisation) -> probs[N,5]."""
    protos = (np.asarray(PROTOTYPES, np.float64) - MEAN) * SCALE
    nodes = []
    inits = [
        _init("stem.weight", np.eye(3).reshape(3, 3, 1, 1)),
        _init("stem.bias", np.zeros(3)),
        _init("protos", protos),
        _init("flat_shape", np.array([-1, 1, 3])),
        _init("neg_inv_width", -1.0 / (2 * KERNEL_WIDTH**2)),
        _init("gain", LOGIT_GAIN),
    ]
    inits[3] = numpy_helper.from_array(np.array([-1, 1, 3], np.int64), "flat_shape")
    x = "images"
    if own_normalisation:
        inits += [
            _init("norm.mean", np.asarray(MEAN).reshape(1, 3, 1, 1)),
            _init("norm.scale", np.asarray(SCALE).reshape(1, 3, 1, 1)),
        ]
        nodes += [
            helper.make_node("Sub", [x, "norm.mean"], ["centred"], name="/norm/Sub"),
            helper.make_node("Mul", ["centred", "norm.scale"], ["normed"], name="/norm/Mul"),
        ]
        x = "normed"
    axes = numpy_helper.from_array(np.array([2], np.int64), "sum_axes")
    inits.append(axes)
    nodes += [
        helper.make_node("Conv", [x, "stem.weight", "stem.bias"], ["stem"], name="/stem/Conv"),
        helper.make_node("GlobalAveragePool", ["stem"], ["pooled"], name="/pool/GlobalAveragePool"),
        helper.make_node("Reshape", ["pooled", "flat_shape"], ["feat"], name="/head/Reshape"),
        helper.make_node("Sub", ["feat", "protos"], ["diff"], name="/head/Sub"),
        helper.make_node("Mul", ["diff", "diff"], ["sq"], name="/head/Square"),
        helper.make_node(
            "ReduceSum", ["sq", "sum_axes"], ["d2"], name="/head/ReduceSum", keepdims=0
        ),
        helper.make_node("Mul", ["d2", "neg_inv_width"], ["z"], name="/head/Scale"),
        helper.make_node("Exp", ["z"], ["k"], name="/head/Exp"),
        helper.make_node("Mul", ["k", "gain"], ["logits"], name="/head/Gain"),
        helper.make_node("Softmax", ["logits"], ["probs"], name="/head/Softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "colour_classifier",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", len(PROTOTYPES)])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def heatmap_model(size: int = SIZE) -> onnx.ModelProto:
    """A head that is not a classifier: images[N,3,S,S] -> sigmoid heatmaps[N,2,S,S]."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["images", "w", "b"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c"], ["heat"], name="/head/Sigmoid"),
    ]
    graph = helper.make_graph(
        nodes,
        "heatmap",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("heat", TensorProto.FLOAT, ["N", 2, size, size])],
        [_init("w", rng.normal(0, 0.3, (2, 3, 3, 3))), _init("b", np.zeros(2))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def natural_images(
    n: int, seed: int = 0, *, size: int = SIZE, classes: Sequence[int] | None = None
) -> list[np.ndarray]:
    """RGB uint8 (S, S, 3) images: a class colour under a light gradient, blobs and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    out = []
    for i in range(n):
        label = classes[i % len(classes)] if classes else i % len(PROTOTYPES)
        base = np.asarray(PROTOTYPES[label], np.float64) + rng.normal(0, 8, 3)
        angle = rng.uniform(0, 2 * np.pi)
        light = 1 + 0.15 * ((xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle))
        img = base[None, None, :] * light[..., None]
        for _ in range(int(rng.integers(1, 4))):  # small muted blobs: clutter
            cy, cx = rng.uniform(0, size, 2)
            r = rng.uniform(1.5, size / 6)
            mask = ((yy * size - cy) ** 2 + (xx * size - cx) ** 2) < r * r
            img[mask] = 0.8 * img[mask] + 0.2 * rng.uniform(60, 200, 3)
        img += rng.normal(0, 3, img.shape)
        out.append(np.clip(np.round(img), 0, 255).astype(np.uint8))
    return out


def to_nchw(images: Sequence[np.ndarray], dtype: Any = np.uint8) -> list[np.ndarray]:
    return [np.ascontiguousarray(im.transpose(2, 0, 1)[None]).astype(dtype) for im in images]


def write_bins(directory: Path, arrays: Sequence[np.ndarray], prefix: str = "s") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for i, arr in enumerate(arrays):
        np.ascontiguousarray(arr).tofile(directory / f"{prefix}{i:03d}.bin")
    return directory


def mapper_config(**changes: Any) -> dict[str, dict[str, Any]]:
    """A valid makertbin config for the colour classifier; `group__key=value` changes it
    (value None removes the key)."""
    config: dict[str, dict[str, Any]] = {
        "model_parameters": {
            "onnx_model": "model.onnx",
            "march": "bayes-e",
            "output_model_file_prefix": "colour",
            "working_dir": "model_output",
        },
        "input_parameters": {
            "input_name": "images",
            "input_type_train": "rgb",
            "input_layout_train": "NCHW",
            "input_type_rt": "nv12",
            "input_shape": f"1x3x{SIZE}x{SIZE}",
            "norm_type": "data_mean_and_scale",
            "mean_value": " ".join(f"{v:g}" for v in MEAN),
            "scale_value": " ".join(f"{v:g}" for v in SCALE),
        },
        "calibration_parameters": {
            "cal_data_dir": "./calib",
            "cal_data_type": "uint8",
            "calibration_type": "default",
        },
        "compiler_parameters": {"compile_mode": "latency", "optimize_level": "O3"},
    }
    short = {
        "model": "model_parameters",
        "input": "input_parameters",
        "cal": "calibration_parameters",
        "compiler": "compiler_parameters",
    }
    for name, value in changes.items():
        group, _, key = name.partition("__")
        group = short.get(group, group)
        if value is None:
            config[group].pop(key, None)
        else:
            config.setdefault(group, {})[key] = value
    return config


def write_config(path: Path, config: dict[str, Any] | str) -> Path:
    text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def make_context(
    tmp_path: Path,
    *,
    calib: Sequence[np.ndarray] | None = None,
    model: onnx.ModelProto | None = None,
    config: dict[str, Any] | str | None = None,
    eval_images: Sequence[tuple[np.ndarray, int]] | None = None,
    raw_images: dict[str, np.ndarray] | None = None,
    seed: int = 0,
    **config_changes: Any,
) -> Context:
    """Write model, config and calibration .bin files under tmp_path; load them as a run would."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    model = model if model is not None else colour_classifier()
    (tmp_path / "model.onnx").write_bytes(model.SerializeToString())
    if calib is None:
        calib = to_nchw(natural_images(20, seed=1))
    calib_dir = write_bins(tmp_path / "calib", calib)
    if config is None:
        dtype = str(np.asarray(calib[0]).dtype)
        config_changes.setdefault("cal__cal_data_type", dtype)
        config = mapper_config(**config_changes)
    cfg_path = write_config(tmp_path / "mapper.yaml", config)
    eval_dir = None
    if eval_images is not None:
        import cv2

        eval_dir = tmp_path / "eval"
        for i, (img, label) in enumerate(eval_images):
            folder = eval_dir / f"{label}_class"
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"e{i:03d}.png"), img[:, :, ::-1])
    raw_dir = None
    if raw_images is not None:
        import cv2

        raw_dir = tmp_path / "raw"
        raw_dir.mkdir()
        for stem, img in raw_images.items():
            cv2.imwrite(str(raw_dir / f"{stem}.png"), img[:, :, ::-1])
    request = Request(
        model=tmp_path / "model.onnx",
        config=cfg_path,
        cal_dirs=(calib_dir,),
        eval_dir=eval_dir,
        raw_dir=raw_dir,
        seed=seed,
    )
    return Context.from_inputs(load_inputs(request))


def config_context(tmp_path: Path, config: dict[str, Any] | str, *, model: Any = None) -> Context:
    """A lint-style Context: the config alone, or with a model graph."""
    from ptqtui.inputs.config import load_config
    from ptqtui.inputs.model import build_graph

    cfg = load_config(write_config(tmp_path / "mapper.yaml", config))
    graph = build_graph(model, tmp_path / "model.onnx") if model is not None else None
    return Context(config=cfg, graph=graph)
