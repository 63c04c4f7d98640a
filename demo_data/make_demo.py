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

import colorsys
import math
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

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

N_TRAIN_PER_CLASS = 700
N_VAL_PER_CLASS = 50
N_EVAL_PER_CLASS = 30
N_CALIB = 100
N_CALIB_F32 = 40  # float32 .bin files are 4x larger: fewer samples keep the folder small
N_FEW = 5


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------


def _hsv_to_rgb(h_deg: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((h_deg % 360.0) / 360.0, s, v)
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


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
    hue = HUES[colour_name] + rng.uniform(-7, 7)
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
    balance = rng.uniform(0.9, 1.1, size=3).astype(np.float32)
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
            self.bn = nn.BatchNorm2d(cout)
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

    return SignNet()


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
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(SEED_TORCH)
    loss_fn = torch.nn.CrossEntropyLoss()
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
            if SLIM > 0:  # network slimming: L1 on the batch-norm scales of pointwise convs
                loss = loss + SLIM * sum(
                    m.bn.weight.abs().sum() for n, m in model.named_modules() if n.endswith("pw")
                )
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
    """Write the float model: input `images` (N, 3, 64, 64) RGB normalised, output `probs`."""
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
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", len(CLASSES)])],
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


import os

EPOCHS = int(os.environ.get("EPOCHS", 15))
SLIM = float(os.environ.get("SLIM", 0))

if __name__ == "__main__":
    import torch

    m = train(print)
    m.eval()
    export_onnx(m, Path("/tmp/model.onnx"))
    import onnxruntime as ort

    x, y = make_split(SEED_EVAL, N_EVAL_PER_CLASS)
    xn = normalise(x)
    s = ort.InferenceSession("/tmp/model.onnx")
    p = s.run(None, {"images": xn})[0]
    with torch.no_grad():
        pt = torch.softmax(m(torch.from_numpy(xn)), 1).numpy()
    print(np.abs(p - pt).max(), (p.argmax(1) == y).mean())
