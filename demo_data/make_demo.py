"""Regenerate ptqtui's demo data: a small colour-sign classifier, its images and scenarios.

Run from anywhere with the project venv:

    python demo_data/make_demo.py            # train, export, write images and scenarios
    python demo_data/make_demo.py --data     # rewrite images and scenarios only (no torch)
    python demo_data/make_demo.py --verify   # quantize every scenario with onnxruntime
    python demo_data/make_demo.py --check    # compare the data files with MANIFEST.sha256

Training needs PyTorch (development only); everything else needs numpy, OpenCV,
onnx, onnxruntime and PyYAML. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import colorsys
import hashlib
import json
import math
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

try:  # run as a script (python demo_data/make_demo.py) or imported as demo_data.make_demo
    from make_text_map import write_text_map
except ImportError:  # pragma: no cover
    from demo_data.make_text_map import write_text_map

HERE = Path(__file__).resolve().parent
SIZE = 64  # model input height and width
CANVAS = 2 * SIZE  # images are drawn at twice the size and downsampled (anti-aliasing)

COLOURS = ("red", "orange", "yellow", "green", "blue")
SHAPES = ("circle", "triangle", "square")
CLASSES = tuple(f"{c}_{s}" for s in SHAPES for c in COLOURS)
HUES = {"red": 0.0, "orange": 28.0, "yellow": 55.0, "green": 120.0, "blue": 225.0}  # degrees

# ImageNet statistics, in the model's terms (x/255 - mean)/std and in hb_mapper terms
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MEAN_VALUE = (123.675, 116.28, 103.53)  # 255 * mean
SCALE_VALUE = (0.01712, 0.01751, 0.01743)  # 1 / (255 * std), as written in the YAML

SEED_TRAIN = 1
SEED_VAL = 2
SEED_EVAL = 3
SEED_CALIB = 4
SEED_TORCH = 5
SEED_ABNORMAL = 6

EPOCHS = 8
BN_EPS = 1e-5  # PyTorch's default
# Dead units (module -> channels), as training leaves some in real MobileNets: these channels
# never fire, so the depthwise conv reading them sees only zeros, its batch-norm variance decays
# to 0 and the folded weights of those channels become huge (gamma / sqrt(eps)).
DEAD_CHANNELS = {"stem": (3, 11), "b2.pw": (7, 30), "b4.pw": (5, 40)}
# The head's bias starts here, on purpose: softmax is shift-invariant, so training keeps this
# common offset of the logits (no weight decay on that bias); float results never see it, but
# int8 logits spend their range on it, which gives the output Gemm a real int8 weakness.
HEAD_BIAS = 600.0
LABEL_SMOOTHING = 0.1

N_TRAIN_PER_CLASS = 700
N_VAL_PER_CLASS = 50
N_EVAL_PER_CLASS = 20
N_CALIB = 100
N_CALIB_F32 = 40  # float32 .bin files are 4x larger: fewer samples keep the folder small
N_FEW = 5


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------


def _hsv_to_rgb(h_deg: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((h_deg % 360.0) / 360.0, s, v)
    return round(r * 255), round(g * 255), round(b * 255)


def _muted_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A background colour: any hue, low saturation, so that it never looks like a sign."""
    return _hsv_to_rgb(rng.uniform(0, 360), rng.uniform(0.0, 0.35), rng.uniform(0.15, 0.95))


def _cloud_texture(rng: np.random.Generator) -> np.ndarray:
    """Multi-octave value noise in [0, 1], CANVAS x CANVAS."""
    out = np.zeros((CANVAS, CANVAS), np.float32)
    total = 0.0
    for cells, weight in ((4, 1.0), (8, 0.5), (16, 0.25), (32, 0.125)):
        grid = rng.random((cells, cells), dtype=np.float32)
        out += weight * cv2.resize(grid, (CANVAS, CANVAS), interpolation=cv2.INTER_CUBIC)
        total += weight
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def _background(rng: np.random.Generator) -> np.ndarray:
    """A float32 RGB background in 0..255: gradient, texture, stripes and clutter."""
    c0 = np.array(_muted_colour(rng), np.float32)
    c1 = np.array(_muted_colour(rng), np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32) / CANVAS
    t = np.clip(0.5 + (xx - 0.5) * math.cos(angle) + (yy - 0.5) * math.sin(angle), 0, 1)
    img = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]

    kind = rng.integers(0, 4)
    if kind in (1, 3):  # clouds / foliage-like texture
        tex = _cloud_texture(rng)
        c2 = np.array(_muted_colour(rng), np.float32)
        amount = rng.uniform(0.3, 0.8)
        img = img * (1 - amount * tex[..., None]) + c2[None, None, :] * (amount * tex[..., None])
    if kind in (2, 3):  # stripes: fences, bricks, road markings
        period = rng.uniform(6, 24)
        phi = rng.uniform(0, 2 * math.pi)
        sa = rng.uniform(0, math.pi)
        wave = np.sin(2 * math.pi * CANVAS * (xx * math.cos(sa) + yy * math.sin(sa)) / period + phi)
        img *= (1 + rng.uniform(0.1, 0.35) * (wave > 0))[..., None]
    img = np.clip(img, 0, 255)

    for _ in range(int(rng.integers(0, 7))):  # clutter: poles, wires, boxes, blobs
        colour = _muted_colour(rng)
        what = rng.integers(0, 3)
        p = rng.integers(0, CANVAS, size=4)
        thick = int(rng.integers(1, 6))
        if what == 0:
            cv2.line(img, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), colour, thick)
        elif what == 1:
            cv2.rectangle(img, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), colour, -1)
        else:
            radius = int(rng.integers(3, 20))
            cv2.circle(img, (int(p[0]), int(p[1])), radius, colour, -1, cv2.LINE_AA)
    return img


def _sign_polygon(shape: str, cx: float, cy: float, r: float, rot: float) -> np.ndarray:
    if shape == "triangle":
        angles = [rot - math.pi / 2 + k * 2 * math.pi / 3 for k in range(3)]
        rr = r * 1.15
    else:  # square
        angles = [rot + math.pi / 4 + k * math.pi / 2 for k in range(4)]
        rr = r * 1.05
    pts = [(cx + rr * math.cos(a), cy + rr * math.sin(a)) for a in angles]
    return np.array(pts, np.float32)


def _draw_sign(img: np.ndarray, rng: np.random.Generator, label: int) -> None:
    colour_name, shape = CLASSES[label].split("_")
    hue = HUES[colour_name] + rng.uniform(-10, 10)
    fill = _hsv_to_rgb(hue, rng.uniform(0.7, 1.0), rng.uniform(0.6, 1.0))
    r = rng.uniform(0.2, 0.34) * CANVAS
    cx = rng.uniform(r + 4, CANVAS - r - 4)
    cy = rng.uniform(r + 4, CANVAS - r - 4)
    rot = rng.uniform(-0.3, 0.3)
    border = rng.integers(0, 3)  # 0 none, 1 white, 2 dark
    border_colour = (245, 245, 245) if border == 1 else (25, 25, 25)
    bw = int(rng.integers(3, 8))
    shift = 4  # sub-pixel precision of cv2 drawing
    f = 1 << shift
    if shape == "circle":
        centre = (int(cx * f), int(cy * f))
        if border:
            cv2.circle(img, centre, int((r + bw) * f), border_colour, -1, cv2.LINE_AA, shift)
        cv2.circle(img, centre, int(r * f), fill, -1, cv2.LINE_AA, shift)
    else:
        if border:
            outer = _sign_polygon(shape, cx, cy, r + bw * 1.4, rot)
            cv2.fillPoly(
                img, [np.round(outer * f).astype(np.int32)], border_colour, cv2.LINE_AA, shift
            )
        pts = _sign_polygon(shape, cx, cy, r, rot)
        cv2.fillPoly(img, [np.round(pts * f).astype(np.int32)], fill, cv2.LINE_AA, shift)
    if rng.random() < 0.5:  # a white pictogram bar, as on real signs
        w, h = r * rng.uniform(0.5, 0.9), r * rng.uniform(0.12, 0.25)
        if rng.random() < 0.5:
            w, h = h, w
        p0 = (int((cx - w / 2) * f), int((cy - h / 2 + r * 0.1) * f))
        p1 = (int((cx + w / 2) * f), int((cy + h / 2 + r * 0.1) * f))
        cv2.rectangle(img, p0, p1, (240, 240, 240), -1, cv2.LINE_AA, shift)


def _lighting(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exposure, light gradient, white balance, gamma, blur and sensor noise."""
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32) / CANVAS
    a = rng.uniform(0, 2 * math.pi)
    field = 1 + rng.uniform(0, 0.5) * ((xx - 0.5) * math.cos(a) + (yy - 0.5) * math.sin(a))
    gain = rng.uniform(0.6, 1.25)
    balance = rng.uniform(0.88, 1.12, size=3).astype(np.float32)
    img = img * (gain * field)[..., None] * balance[None, None, :]
    img = 255.0 * (np.clip(img, 0, 255) / 255.0) ** rng.uniform(0.8, 1.25)
    img = cv2.resize(img.astype(np.float32), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    sigma = rng.uniform(0.0, 1.0)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = img + rng.normal(0, rng.uniform(0.5, 5.0), size=img.shape).astype(np.float32)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def make_image(rng: np.random.Generator, label: int) -> np.ndarray:
    """One 64x64 RGB uint8 image of class `label` on a random natural-looking scene."""
    img = _background(rng)
    _draw_sign(img, rng, label)
    return _lighting(img, rng)


def make_split(seed: int, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Balanced images (N, 64, 64, 3) RGB uint8 and labels (N,), in a seeded shuffled order."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(CLASSES)), per_class)
    rng.shuffle(labels)
    images = np.stack([make_image(rng, int(y)) for y in labels])
    return images, labels.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Model (PyTorch, development only)
# ---------------------------------------------------------------------------------------------

# (name, kind, in, out, stride): the network, in the order of the ONNX graph
ARCH_NOTE = """stem conv3x3/2 -> b1 dwsep -> b2 dwsep/2 -> b3 dwsep + residual Add -> b4 dwsep/2
-> mix (1x1 branch | dwsep branch) Concat -> b5 dwsep/2 -> GlobalAveragePool -> Gemm -> Softmax"""


def build_torch_model():  # -> torch.nn.Module
    import torch
    from torch import nn

    class ConvBN(nn.Module):
        def __init__(
            self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, relu: bool = True
        ) -> None:
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
            self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
            self.relu = nn.ReLU() if relu else None

        def forward(self, x):
            x = self.bn(self.conv(x))
            return self.relu(x) if self.relu is not None else x

    class DWSep(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int = 1, relu: bool = True) -> None:
            super().__init__()
            self.dw = ConvBN(cin, cin, 3, stride, groups=cin)
            self.pw = ConvBN(cin, cout, 1, relu=relu)

        def forward(self, x):
            return self.pw(self.dw(x))

    class SignNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = ConvBN(3, 16, 3, 2)
            self.b1 = DWSep(16, 32)
            self.b2 = DWSep(32, 48, 2)
            self.b3 = DWSep(48, 48, relu=False)
            self.mix_a = ConvBN(64, 32, 1)
            self.b4 = DWSep(48, 64, 2)
            self.mix_b = DWSep(64, 32)
            self.b5 = DWSep(64, 96, 2)
            self.fc = nn.Linear(96, len(CLASSES))

        def forward(self, x):
            x = self.b2(self.b1(self.stem(x)))
            x = torch.relu(x + self.b3(x))
            x = self.b4(x)
            x = torch.cat([self.mix_a(x), self.mix_b(x)], dim=1)
            x = self.b5(x)
            return self.fc(x.mean(dim=(2, 3)))  # logits; the ONNX graph adds the Softmax

    model = SignNet()
    with torch.no_grad():
        for module_name, channels in DEAD_CHANNELS.items():
            bn = model.get_submodule(module_name).bn
            for c in channels:  # gamma 0 and a negative beta: ReLU output 0, gradient 0
                bn.weight[c] = 0.0
                bn.bias[c] = -1.0
        # Softmax is shift-invariant, so nothing in training moves the logits' common offset
        # away from where the head's bias starts.
        model.fc.bias.fill_(HEAD_BIAS)
    return model


def normalise(images_rgb_u8: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) RGB uint8 -> (N, 3, H, W) float32, (x/255 - mean)/std as in training."""
    x = images_rgb_u8.astype(np.float32) / 255.0
    x = (x - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def train(log: Callable[[str], None]):  # -> torch.nn.Module (eval mode)
    import torch

    torch.manual_seed(SEED_TORCH)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(2)
    t0 = time.time()
    x_train, y_train = make_split(SEED_TRAIN, N_TRAIN_PER_CLASS)
    x_val, y_val = make_split(SEED_VAL, N_VAL_PER_CLASS)
    log(
        f"generated {len(y_train)} training and {len(y_val)} validation images "
        f"in {time.time() - t0:.0f} s"
    )
    xt = torch.from_numpy(normalise(x_train))
    yt = torch.from_numpy(y_train)
    xv = torch.from_numpy(normalise(x_val))
    yv = torch.from_numpy(y_val)

    model = build_torch_model()
    epochs, batch = EPOCHS, 64
    steps = epochs * math.ceil(len(yt) / batch)
    decay = [p for n, p in model.named_parameters() if n != "fc.bias"]
    opt = torch.optim.AdamW(
        [{"params": decay}, {"params": [model.fc.bias], "weight_decay": 0.0}],
        lr=3e-3,
        weight_decay=1e-4,
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(SEED_TORCH)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(yt), generator=gen)
        flips = torch.rand(len(yt), generator=gen) < 0.5
        total = 0.0
        for i in range(0, len(yt), batch):
            idx = order[i : i + batch]
            xb = xt[idx]
            fb = flips[idx]
            xb = torch.where(fb[:, None, None, None], xb.flip(3), xb)
            loss = loss_fn(model(xb), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        with torch.no_grad():
            acc = float((model(xv).argmax(1) == yv).float().mean())
        log(
            f"epoch {epoch + 1}/{epochs}: loss {total / len(yt):.4f}, "
            f"validation top-1 {100 * acc:.2f} % ({time.time() - t0:.0f} s)"
        )
    return model


# ---------------------------------------------------------------------------------------------
# ONNX export: batch norm folded, graph written node by node so names and bytes are stable
# ---------------------------------------------------------------------------------------------


def _fold(conv_bn) -> tuple[np.ndarray, np.ndarray]:
    """Conv weight and bias with the batch norm folded in (float32)."""
    w = conv_bn.conv.weight.detach().double().numpy()
    bn = conv_bn.bn
    k = (bn.weight.detach().double() / (bn.running_var.double() + bn.eps).sqrt()).numpy()
    b = bn.bias.detach().double().numpy() - bn.running_mean.double().numpy() * k
    return (w * k[:, None, None, None]).astype(np.float32), b.astype(np.float32)


def export_onnx(model, path: Path) -> None:
    """Write the float model: input `images` (1, 3, 64, 64) RGB normalised, output `probs`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes: list = []
    inits: list = []

    def conv(name: str, conv_bn, x: str, relu: bool) -> str:
        w, b = _fold(conv_bn)
        c = conv_bn.conv
        inits.append(numpy_helper.from_array(w, f"{name}.weight"))
        inits.append(numpy_helper.from_array(b, f"{name}.bias"))
        out = f"/{name.replace('.', '/')}/conv/Conv_output_0"
        pad = c.padding[0]
        nodes.append(
            helper.make_node(
                "Conv",
                [x, f"{name}.weight", f"{name}.bias"],
                [out],
                name=f"/{name.replace('.', '/')}/conv/Conv",
                dilations=[1, 1],
                group=c.groups,
                kernel_shape=list(c.kernel_size),
                pads=[pad] * 4,
                strides=list(c.stride),
            )
        )
        if relu:
            out = relu_node(f"/{name.replace('.', '/')}/relu/Relu", out)
        return out

    def relu_node(name: str, x: str) -> str:
        nodes.append(helper.make_node("Relu", [x], [f"{name}_output_0"], name=name))
        return f"{name}_output_0"

    def dwsep(name: str, block, x: str) -> str:
        x = conv(f"{name}.dw", block.dw, x, True)
        return conv(f"{name}.pw", block.pw, x, block.pw.relu is not None)

    x = conv("stem", model.stem, "images", True)
    x = dwsep("b1", model.b1, x)
    x = dwsep("b2", model.b2, x)
    y = dwsep("b3", model.b3, x)
    nodes.append(helper.make_node("Add", [x, y], ["/b3/add/Add_output_0"], name="/b3/add/Add"))
    x = relu_node("/b3/relu/Relu", "/b3/add/Add_output_0")
    x = dwsep("b4", model.b4, x)
    a = conv("mix_a", model.mix_a, x, True)
    b = dwsep("mix_b", model.mix_b, x)
    nodes.append(
        helper.make_node(
            "Concat", [a, b], ["/mix/concat/Concat_output_0"], name="/mix/concat/Concat", axis=1
        )
    )
    x = dwsep("b5", model.b5, "/mix/concat/Concat_output_0")
    nodes.append(
        helper.make_node(
            "GlobalAveragePool",
            [x],
            ["/head/pool/GlobalAveragePool_output_0"],
            name="/head/pool/GlobalAveragePool",
        )
    )
    nodes.append(
        helper.make_node(
            "Flatten",
            ["/head/pool/GlobalAveragePool_output_0"],
            ["/head/flatten/Flatten_output_0"],
            name="/head/flatten/Flatten",
            axis=1,
        )
    )
    inits.append(
        numpy_helper.from_array(model.fc.weight.detach().numpy().astype(np.float32), "fc.weight")
    )
    inits.append(
        numpy_helper.from_array(model.fc.bias.detach().numpy().astype(np.float32), "fc.bias")
    )
    nodes.append(
        helper.make_node(
            "Gemm",
            ["/head/flatten/Flatten_output_0", "fc.weight", "fc.bias"],
            ["logits"],
            name="/head/fc/Gemm",
            alpha=1.0,
            beta=1.0,
            transB=1,
        )
    )
    nodes.append(
        helper.make_node("Softmax", ["logits"], ["probs"], name="/head/softmax/Softmax", axis=1)
    )
    graph = helper.make_graph(
        nodes,
        "signnet",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, len(CLASSES)])],
        inits,
    )
    m = helper.make_model(
        graph,
        producer_name="ptqtui-make_demo",
        producer_version="1",
        opset_imports=[helper.make_opsetid("", 13)],
    )
    m.ir_version = 8
    m.doc_string = (
        "ptqtui demo: colour-sign classifier; input RGB (x/255 - mean)/std. " + ", ".join(CLASSES)
    )
    onnx.checker.check_model(m, full_check=True)
    path.write_bytes(m.SerializeToString())


# ---------------------------------------------------------------------------------------------
# Scenarios: one config per mistake, each with the calibration files that mistake writes
# ---------------------------------------------------------------------------------------------

TAIL_NODES = ("/head/fc/Gemm", "/head/softmax/Softmax")
SHARED_CAL_DIR = "calibration/calibration_data_rgb"  # clean: RGB, NCHW, uint8, 0..255


def prep_rgb_u8(img: np.ndarray) -> np.ndarray:
    """The correct pipeline: RGB, NCHW, uint8 0..255 (what input_type_train rgb expects)."""
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None])


def prep_bgr_u8(img: np.ndarray) -> np.ndarray:
    """cv2.imread's BGR order written as it came, while the config says rgb."""
    return np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)[None])


def prep_normalised_f32(img: np.ndarray) -> np.ndarray:
    """The training transform (x/255 - mean)/std applied before writing: normalised twice."""
    return normalise(img[None])


def prep_skimage_f32(img: np.ndarray) -> np.ndarray:
    """skimage.io.imread + img_as_float: RGB floats in 0..1."""
    return np.ascontiguousarray(img.astype(np.float32).transpose(2, 0, 1)[None] / 255.0)


def prep_rgb_f32(img: np.ndarray) -> np.ndarray:
    """Correct values 0..255, but written as float32 (4 bytes a value)."""
    return prep_rgb_u8(img).astype(np.float32)


def prep_nhwc_u8(img: np.ndarray) -> np.ndarray:
    """HWC as OpenCV/PIL hold images, written without the transpose to NCHW."""
    return np.ascontiguousarray(img[None])


def prep_unit_nhwc_f32(img: np.ndarray) -> np.ndarray:
    """skimage floats in 0..1, and HWC as skimage holds them: two mistakes at once."""
    return np.ascontiguousarray(img[None].astype(np.float32) / 255.0)


NAN_FILES = (3, 11, 17, 29)  # files of the nan_files scenario that hold NaN or Inf


def nan_files(images: np.ndarray) -> list[np.ndarray]:
    """Correct float32 values; a few files carry NaN/Inf (a failed resize or division)."""
    out = []
    for index, img in enumerate(images):
        arr = prep_rgb_u8(img).astype(np.float32)
        if index in NAN_FILES:
            arr[0, :, 5:9, 5:9] = np.nan if index % 2 else np.inf
        out.append(arr)
    return out


# Each scenario: config changes from the good config, its calibration data, what must fire.
# data: None for the shared clean folder, else (folder name, preparation, dtype, count, kind).
SCENARIOS: dict[str, dict] = {
    "bgr_swap": {
        "title": "BGR .bin files for an rgb config, per-tensor weights",
        "about": "The calibration script read the images with cv2.imread (BGR) and wrote them "
        "as they came; the config says input_type_train: rgb. The config also keeps the "
        "per-tensor weights of `calibration_type: max` without `per_channel`: once the channel "
        "order is fixed, per-channel weights are the calibration step worth taking.",
        "config": {"per_channel": None},
        "data": ("calibration_data_rgb", prep_bgr_u8, "uint8", N_CALIB, "clean"),
        "must_fire": [("PTQ001", "critical"), ("PTQ301", "minor")],
    },
    "good": {
        "title": "correct config and clean calibration data",
        "about": "Clean RGB NCHW uint8 calibration data, max calibration with percentile "
        "0.99995 and per-channel weights, the two output operators on the CPU.",
        "config": {},
        "data": None,
        "must_fire": [],
    },
    "double_norm": {
        "title": "data normalised before writing, and again by norm_type",
        "about": "The script applied the training transform (x/255 - mean)/std before writing "
        "float32 files; the config's data_mean_and_scale applies mean and scale a second time.",
        "config": {"cal_data_type": "float32"},
        "data": ("calibration_data_rgb_f32", prep_normalised_f32, "float32", N_CALIB_F32, "clean"),
        "must_fire": [("PTQ002", "critical")],
    },
    "skimage_range": {
        "title": "skimage RGB floats in 0..1 where 0..255 is expected",
        "about": "The script read the images with skimage (RGB, float, 0..1) and wrote float32 "
        "files; the mean and scale in the config expect 0..255.",
        "config": {"cal_data_type": "float32"},
        "data": ("calibration_data_rgb_f32", prep_skimage_f32, "float32", N_CALIB_F32, "clean"),
        "must_fire": [("PTQ003", "critical")],
    },
    "tofile_dtype": {
        "title": "float32 .bin files declared cal_data_type: uint8",
        "about": "The values are right (RGB, NCHW, 0..255) but were written as float32: each "
        "file holds 4x the bytes a uint8 1x3x64x64 sample has. The converter cannot read them.",
        "config": {},
        "data": ("calibration_data_rgb", prep_rgb_f32, "float32", N_CALIB_F32, "clean"),
        "must_fire": [("PTQ101", "critical")],
    },
    "tofile_layout": {
        "title": "NHWC .bin files declared NCHW",
        "about": "The script wrote HWC images without transposing them; read as 1x3x64x64 the "
        "bytes are scrambled across channels and rows (the sizes match, so nothing complains).",
        "config": {},
        "data": ("calibration_data_rgb", prep_nhwc_u8, "uint8", N_CALIB, "clean"),
        "must_fire": [("PTQ102", "critical")],
    },
    "abnormal_images": {
        "title": "10 % over-exposed, black, white or duplicate images",
        "about": "Correct format, but 10 of the 100 files are bad: 3 over-exposed, 2 black, "
        "2 white, 3 duplicates of other files (listed in README.md).",
        "config": {},
        "data": ("calibration_data_rgb", prep_rgb_u8, "uint8", N_CALIB, "abnormal"),
        "must_fire": [("PTQ103", "major")],
    },
    "few_images": {
        "title": "only 5 calibration images",
        "about": "Correct format and config, but 5 calibration samples instead of about 100.",
        "config": {},
        "data": ("calibration_data_rgb", prep_rgb_u8, "uint8", N_FEW, "clean"),
        "must_fire": [("PTQ104", "minor")],
    },
    "per_tensor_loss": {
        "title": "per-tensor weights lose accuracy that per_channel recovers",
        "about": "The good config without `per_channel`: the depthwise convs' per-channel "
        "weight ranges differ widely (dead input channels fold into huge weights), so one "
        "scale per tensor costs accuracy that per-channel weights recover.",
        "config": {"per_channel": None},
        "data": None,
        "must_fire": [("PTQ301", "major")],
    },
    "sensitive_tail": {
        "title": "all int8: the output operators gain from the CPU",
        "about": "The good config without `run_on_cpu`: the classifier's logits carry a large "
        "common offset (softmax ignores it, int8 does not), so the int8 Gemm output loses "
        "precision that running it on the CPU restores (output cosine; no top-1 change).",
        "config": {"run_on_cpu": None},
        "data": None,
        "must_fire": [("PTQ304", "minor")],
    },
    "bgr_no_eval": {
        "title": "BGR .bin files for an rgb config, no evaluation set",
        "about": "The bgr_swap mistake as most users meet it: no labelled evaluation images. "
        "The data is bluer than natural images and swapping it changes the model's answers.",
        "config": {},
        "data": None,
        "cal_dir": "../bgr_swap/calibration_data_rgb",  # the same files: the demo stays small
        "must_fire": [("PTQ001", "major")],
        "eval": False,
    },
    "missing_norm": {
        "title": "norm_type no_preprocess with raw 0..255 data",
        "about": "The model was trained on ImageNet-normalised input, but the config turns the "
        "converter's normalisation off and the data is raw pixels: nothing normalises.",
        "config": {"norm_type": "no_preprocess"},
        "data": None,
        "must_fire": [("PTQ003", "critical")],
    },
    "unit_nhwc": {
        "title": "0..1 floats written NHWC",
        "about": "skimage floats (0..1) written as skimage holds them (HWC): two mistakes at "
        "once; only x255 and reading NHWC together give the model its images back.",
        "config": {"cal_data_type": "float32"},
        "data": ("calibration_data_f32", prep_unit_nhwc_f32, "float32", N_CALIB_F32, "clean"),
        "must_fire": [("PTQ003", "critical"), ("PTQ102", "critical")],
    },
    "nan_files": {
        "title": "4 of 40 float32 files hold NaN or Inf",
        "about": "Correct float32 data, but 4 files carry NaN/Inf values: they are reported and "
        "left out; the analysis goes on with the rest.",
        "config": {"cal_data_type": "float32"},
        "data": ("calibration_data_f32", None, "float32", N_CALIB_F32, "nan"),
        "must_fire": [("PTQ106", "major")],
    },
    "bad_config": {
        "title": "illegal value, unknown node, per_channel under default",
        "about": "Three config mistakes, each on its own line: `compile_mode: speed` (not "
        "latency, bandwidth or balance), a node_info entry for `/head/softmax/SoftMax` (the "
        "node is `/head/softmax/Softmax`), and `per_channel: True` with "
        "`calibration_type: default`, which decides per-channel itself.",
        "config": "bad",
        "data": None,
        "must_fire": [("PTQ201", "major"), ("PTQ203", "major"), ("PTQ205", "minor")],
    },
}
DEFAULT_SCENARIO = "bgr_swap"
ORDER = (
    "bgr_swap",
    "good",
    "double_norm",
    "skimage_range",
    "tofile_dtype",
    "tofile_layout",
    "abnormal_images",
    "few_images",
    "per_tensor_loss",
    "sensitive_tail",
    "bad_config",
    "bgr_no_eval",
    "missing_norm",
    "unit_nhwc",
    "nan_files",
)
ABNORMAL = {  # file index -> what it is
    7: "over-exposed",
    19: "black",
    28: "over-exposed",
    41: "white",
    55: "duplicate of sign_012",
    63: "black",
    72: "over-exposed",
    84: "white",
    90: "duplicate of sign_033",
    97: "duplicate of sign_050",
}


def _fmt_values(values: tuple[float, ...]) -> str:
    return " ".join(f"{v:g}" for v in values)


def config_text(name: str, spec: dict) -> str:
    """The scenario's hb_mapper makertbin YAML, written as an engineer would."""
    changes = spec["config"]
    bad = changes == "bad"
    changes = {} if bad else changes
    data = spec["data"]
    cal_dir = spec.get("cal_dir") or (f"../../{SHARED_CAL_DIR}" if data is None else data[0])
    cal_type = changes.get("cal_data_type", "uint8")
    lines = [
        f"# ptqtui demo scenario {name}: {spec['title']}",
        "# hb_mapper makertbin config for the demo sign classifier (64x64 RGB, NCHW).",
        "model_parameters:",
        "  onnx_model: ../../model.onnx",
        "  march: bernoulli2",
        "  output_model_file_prefix: signnet_64x64",
        "  working_dir: model_output",
        "  layer_out_dump: False",
    ]
    if bad:
        lines += [
            "  node_info: {",
            "    \"/head/fc/Gemm\": {'ON': 'CPU'},",
            "    \"/head/softmax/SoftMax\": {'ON': 'CPU'}",
            "  }",
        ]
    lines += [
        "",
        "input_parameters:",
        "  input_name: images",
        "  input_type_train: rgb",
        "  input_layout_train: NCHW",
        "  input_type_rt: rgb",
        "  input_layout_rt: NCHW",
        f"  input_shape: 1x3x{SIZE}x{SIZE}",
    ]
    if changes.get("norm_type") == "no_preprocess":
        lines += ["  norm_type: no_preprocess"]
    else:
        lines += [
            "  # the model was trained on (x/255 - mean)/std with ImageNet mean and std",
            "  norm_type: data_mean_and_scale",
            f"  mean_value: {_fmt_values(MEAN_VALUE)}",
            f"  scale_value: {_fmt_values(SCALE_VALUE)}",
        ]
    lines += [
        "",
        "calibration_parameters:",
        f"  cal_data_dir: {cal_dir}",
        f"  cal_data_type: {cal_type}",
    ]
    if bad:
        lines += ["  calibration_type: default", "  per_channel: True"]
    else:
        lines += ["  calibration_type: max", "  max_percentile: 0.99995"]
        if "per_channel" not in changes:
            lines.append("  per_channel: True")
        if "run_on_cpu" not in changes:
            lines.append(f"  run_on_cpu: '{';'.join(TAIL_NODES)}'")
    lines += [
        "",
        "compiler_parameters:",
        f"  compile_mode: {'speed' if bad else 'latency'}",
        "  debug: False",
        "  core_num: 1",
        "  optimize_level: O3",
        "",
    ]
    return "\n".join(lines)


def expected_json(spec: dict) -> str:
    good = not spec["must_fire"]
    doc = {
        "title": spec["title"],
        "must_fire": [{"code": c, "min_severity": s} for c, s in spec["must_fire"]],
        "no_other_critical": True,
        "max_severity_otherwise": "minor" if good else None,
    }
    if spec.get("eval") is False:
        doc["eval"] = False  # ptqtui demo runs it without the evaluation images
    return json.dumps(doc, indent=2) + "\n"


# ---------------------------------------------------------------------------------------------
# Writing the data (no torch needed)
# ---------------------------------------------------------------------------------------------


def _png(img_rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img_rgb[:, :, ::-1]))
    assert ok
    return buf.tobytes()


def _abnormal(images: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(SEED_ABNORMAL)
    out = images.copy()
    for index, what in ABNORMAL.items():
        if what == "over-exposed":
            gain = rng.uniform(2.8, 3.5)
            out[index] = np.clip(images[index].astype(np.float32) * gain + 40, 0, 255).astype(
                np.uint8
            )
        elif what == "black":
            out[index] = rng.integers(0, 4, size=images[index].shape, dtype=np.uint8)
        elif what == "white":
            out[index] = 255 - rng.integers(0, 4, size=images[index].shape, dtype=np.uint8)
        else:
            out[index] = images[int(what.rpartition("_")[2])]
    return out


def write_data(log: Callable[[str], None]) -> None:
    """Classes, evaluation images, calibration data and scenarios: byte for byte the same."""
    for sub in ("eval", "calibration", "scenarios"):
        if (HERE / sub).exists():
            shutil.rmtree(HERE / sub)
    (HERE / "classes.txt").write_text("\n".join(CLASSES) + "\n", encoding="utf-8")

    x_eval, y_eval = make_split(SEED_EVAL, N_EVAL_PER_CLASS)
    counters = dict.fromkeys(range(len(CLASSES)), 0)
    for img, label in zip(x_eval, y_eval, strict=True):
        folder = HERE / "eval" / CLASSES[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{counters[int(label)]:03d}.png").write_bytes(_png(img))
        counters[int(label)] += 1
    log(f"wrote {len(y_eval)} evaluation images")

    x_cal, _ = make_split(SEED_CALIB, math.ceil(N_CALIB / len(CLASSES)))
    x_cal = x_cal[:N_CALIB]
    _write_bins(HERE / SHARED_CAL_DIR, x_cal, prep_rgb_u8, "uint8")
    for name in ORDER:
        spec = SCENARIOS[name]
        folder = HERE / "scenarios" / name
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text(config_text(name, spec), encoding="utf-8")
        (folder / "expected.json").write_text(expected_json(spec), encoding="utf-8")
        if spec["data"] is not None:
            sub, prep, dtype, count, kind = spec["data"]
            if kind == "nan":
                folder_nan = folder / sub
                folder_nan.mkdir(parents=True, exist_ok=True)
                for i, arr in enumerate(nan_files(x_cal[:count])):
                    arr.tofile(folder_nan / f"sign_{i:03d}.bin")
                continue
            images = _abnormal(x_cal) if kind == "abnormal" else x_cal
            _write_bins(folder / sub, images[:count], prep, dtype)
    index = {"default": DEFAULT_SCENARIO, "order": list(ORDER)}
    (HERE / "scenarios" / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    log(f"wrote {N_CALIB} calibration samples and {len(ORDER)} scenarios")
    write_text_map(log)  # the non-classifier scenario (its own model, no training)


def _write_bins(folder: Path, images: np.ndarray, prep, dtype: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        prep(img).astype(dtype).tofile(folder / f"sign_{i:03d}.bin")


MANIFEST_ROOTS = ("model.onnx", "classes.txt", "eval", "calibration", "scenarios")


def manifest_files() -> list[Path]:
    files: list[Path] = []
    for root in MANIFEST_ROOTS:
        path = HERE / root
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return sorted(files, key=lambda p: p.relative_to(HERE).as_posix())


def manifest_text() -> str:
    lines = []
    for path in manifest_files():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  {path.relative_to(HERE).as_posix()}")
    return "\n".join(lines) + "\n"


def check_manifest() -> list[str]:
    """Differences between the files and MANIFEST.sha256 (empty when they agree)."""
    recorded = (HERE / "MANIFEST.sha256").read_text(encoding="utf-8").splitlines()
    now = manifest_text().splitlines()
    old, new = set(recorded), set(now)
    return [f"- {line}" for line in sorted(old - new)] + [f"+ {line}" for line in sorted(new - old)]


# ---------------------------------------------------------------------------------------------
# Verification: quantize every scenario with onnxruntime, as its config says
# ---------------------------------------------------------------------------------------------


class ConversionError(Exception):
    """What the converter would refuse (unreadable data, illegal config)."""


def _read_yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _converter_settings(config_path: Path) -> dict:
    """The few config facts the verification needs, read plainly from the YAML."""
    cfg = _read_yaml(config_path)
    comp = cfg["compiler_parameters"]
    if comp.get("compile_mode") not in ("latency", "bandwidth", "balance"):
        raise ConversionError(f"compile_mode {comp.get('compile_mode')!r} is not legal")
    inp, cal = cfg["input_parameters"], cfg["calibration_parameters"]
    cal_dir = str(cal["cal_data_dir"])
    dtype = cal.get("cal_data_type") or ("float32" if cal_dir.endswith("_f32") else "uint8")
    return {
        "cal_dir": config_path.parent / cal_dir,
        "dtype": dtype,
        "shape": tuple(int(d) for d in str(inp["input_shape"]).split("x")),
        "mean": np.array([float(v) for v in str(inp["mean_value"]).split()], np.float32),
        "scale": np.array([float(v) for v in str(inp["scale_value"]).split()], np.float32),
        "calibration_type": cal.get("calibration_type", "default"),
        "max_percentile": float(cal.get("max_percentile", 1.0)),
        "per_channel": bool(cal.get("per_channel", False)),
        "cpu": tuple(n.strip() for n in str(cal.get("run_on_cpu", "")).split(";") if n.strip()),
    }


def _as_converter_reads(raw: bytes, settings: dict, source: str) -> np.ndarray:
    """numpy.fromfile with the declared dtype and shape, then (x - mean) * scale."""
    flat = np.frombuffer(raw, dtype=settings["dtype"])
    shape = settings["shape"]
    if flat.size != int(np.prod(shape)):
        need = int(np.prod(shape)) * np.dtype(settings["dtype"]).itemsize
        raise ConversionError(
            f"{source}: {len(raw)} bytes, {'x'.join(map(str, shape))} {settings['dtype']} "
            f"needs {need}"
        )
    x = flat.reshape(shape).astype(np.float32)
    return (x - settings["mean"][None, :, None, None]) * settings["scale"][None, :, None, None]


def _session(path: Path | bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Without VNNI, onnxruntime's fused u8s8 kernels saturate: run the QDQ graph unfused.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 2
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _top1(session, inputs: list[np.ndarray], labels: np.ndarray) -> tuple[float, np.ndarray]:
    probs = np.concatenate([session.run(None, {"images": x})[0] for x in inputs])
    return 100.0 * float((probs.argmax(1) == labels).mean()), probs


def _mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    dots = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(dots.mean())


def _quantize(model: Path, out: Path, samples: list[np.ndarray], settings: dict, **over) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"images": x} for x in samples])

        def get_next(self):
            return next(self.items, None)

    s = {**settings, **over}
    extra = {"ActivationSymmetric": True, "WeightSymmetric": True}
    kind = s["calibration_type"]
    if kind == "max" and s["max_percentile"] < 1.0:
        method = CalibrationMethod.Percentile
        extra["CalibPercentile"] = 100.0 * s["max_percentile"]
    elif kind == "max":
        method = CalibrationMethod.MinMax
    elif kind == "kl":
        method = CalibrationMethod.Entropy
    else:
        raise ConversionError(f"calibration_type {kind} is not reproduced by --verify")
    quantize_static(
        str(model),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=s["per_channel"],
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=method,
        nodes_to_exclude=list(s["cpu"]),
        extra_options=extra,
    )


def verify(log: Callable[[str], None]) -> str:
    """Quantize each scenario with onnxruntime (QDQ) and measure top-1 on the eval set."""
    import contextlib
    import io
    import logging
    import tempfile

    logging.getLogger().setLevel(logging.ERROR)
    model = HERE / "model.onnx"
    eval_items = sorted((HERE / "eval").glob("*/*.png"))
    labels = np.array([CLASSES.index(p.parent.name) for p in eval_items])
    eval_rgb = [cv2.imread(str(p), cv2.IMREAD_COLOR)[:, :, ::-1] for p in eval_items]
    float_session = _session(model)
    good = _converter_settings(HERE / "scenarios" / "good" / "config.yaml")
    clean = [_as_converter_reads(prep_rgb_u8(im).tobytes(), good, "eval") for im in eval_rgb]
    ref, float_probs = _top1(float_session, clean, labels)
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="ptqtui-verify-"))

    def row(name: str, what: str, settings: dict | None, prep, **over) -> None:
        t0 = time.time()
        cells = {"scenario": name, "what": what}
        try:
            if settings is None:
                raise ConversionError("config rejected")
            files = sorted(p for p in settings["cal_dir"].iterdir() if p.is_file())
            samples = [_as_converter_reads(p.read_bytes(), settings, p.name) for p in files]
            piped = [_as_converter_reads(prep(im).tobytes(), settings, "eval") for im in eval_rgb]
            out = tmp / f"{name}-{len(rows)}.onnx"
            with contextlib.redirect_stdout(io.StringIO()):
                _quantize(model, out, samples, settings, **over)
            cells["float"], _ = _top1(float_session, piped, labels)
            q = _session(out)
            cells["int8"], _ = _top1(q, piped, labels)
            cells["int8_clean"], probs = _top1(q, clean, labels)
            cells["cos"] = _mean_cosine(probs, float_probs)
            cells["n"] = len(samples)
        except ConversionError as exc:
            cells["note"] = str(exc)
        rows.append(cells)
        log(f"{name:16s} {what:34s} {cells} ({time.time() - t0:.0f} s)")

    for name in ORDER:
        spec = SCENARIOS[name]
        config = HERE / "scenarios" / name / "config.yaml"
        prep = spec["data"][1] if spec["data"] is not None else prep_rgb_u8
        try:
            settings = _converter_settings(config)
        except ConversionError as exc:
            rows.append({"scenario": name, "what": "as configured", "note": str(exc)})
            log(f"{name:16s} {exc}")
            continue
        row(name, "as configured", settings, prep)
        if name in ("per_tensor_loss", "bgr_swap"):
            row(name, "+ per_channel: True", settings, prep, per_channel=True)
        if name == "sensitive_tail":
            row(name, "+ run_on_cpu Gemm;Softmax", settings, prep, cpu=TAIL_NODES)
            row(name, "+ run_on_cpu Softmax", settings, prep, cpu=TAIL_NODES[1:])
    shutil.rmtree(tmp, ignore_errors=True)
    return format_table(ref, rows)


def format_table(ref: float, rows: list[dict]) -> str:
    head = (
        f"float model, correct preprocessing: top-1 {ref:.2f} % on {N_EVAL_PER_CLASS * 15} "
        "eval images\n\n"
        "| scenario | setting | cal. samples | float top-1 (scenario pipeline) "
        "| int8 top-1 (scenario pipeline) | loss vs float | int8 top-1 (clean eval) "
        "| int8 output cosine (clean eval) |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|\n"
    )
    body = []
    for r in rows:
        if "note" in r:
            body.append(f"| {r['scenario']} | {r['what']} | - | - | - | {r['note']} | - | - |")
            continue
        body.append(
            f"| {r['scenario']} | {r['what']} | {r['n']} | {r['float']:.2f} | {r['int8']:.2f} "
            f"| {ref - r['int8']:.2f} | {r['int8_clean']:.2f} | {r['cos']:.5f} |"
        )
    return head + "\n".join(body) + "\n"


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--data", action="store_true", help="rewrite data and scenarios only")
    mode.add_argument("--verify", action="store_true", help="quantize every scenario, print")
    mode.add_argument("--check", action="store_true", help="compare files with MANIFEST.sha256")
    mode.add_argument(
        "--text-map", action="store_true", help="rewrite the text_map scenario only (no torch)"
    )
    args = parser.parse_args(argv)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    if args.check:
        diff = check_manifest()
        print("\n".join(diff) if diff else "all files match MANIFEST.sha256")
        return 1 if diff else 0
    if args.verify:
        print(verify(log))
        return 0
    if args.text_map:
        write_text_map(log)
        (HERE / "MANIFEST.sha256").write_text(manifest_text(), encoding="utf-8")
        return 0
    if not args.data:
        t0 = time.time()
        model = train(log)
        log(f"trained in {time.time() - t0:.0f} s")
        export_onnx(model, HERE / "model.onnx")
    write_data(log)
    (HERE / "MANIFEST.sha256").write_text(manifest_text(), encoding="utf-8")
    log("wrote MANIFEST.sha256")
    return 0


if __name__ == "__main__":
    sys.exit(main())
