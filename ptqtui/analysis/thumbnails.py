"""Thumbnails of the calibration samples findings point at: as given, and as the finding's
input fix (swap channels, x255, ...) would read them. Small PNGs, base64, for every front end.

Which samples: a remedy that drops samples names them; any other input fix is shown on the
first samples of its input (the fix applies to all of them). Decided from the typed remedy,
never from a message.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ptqtui.analysis.results import SampleThumbnail
from ptqtui.errors import PtqInputError
from ptqtui.remedy import InputFix

if TYPE_CHECKING:
    from ptqtui.budget import Deadline
    from ptqtui.check.findings import Finding
    from ptqtui.inputs.config import InputSpec
    from ptqtui.inputs.data import InputLayout, SampleSource
    from ptqtui.inputs.resolve import LoadedInputs

THUMB_SIZE = 32  # pixels on the longer side: legible in half-blocks at 16 rows, ~2 KB of PNG
DROPPED_SHOWN = 6  # samples shown of a drop-samples remedy
FIXED_SHOWN = 3  # samples shown, as given and fixed, for any other input fix
PIXEL_MAX = 255.0  # image inputs are shown on the 0..255 scale the converter expects
IMAGE_TYPES = ("rgb", "bgr", "gray", "yuv444")


def sample_thumbnails(
    findings: Sequence[Finding], inputs: LoadedInputs, deadline: Deadline | None = None
) -> tuple[SampleThumbnail, ...]:
    """Thumbnails for every finding whose remedy changes the calibration data; those the
    `deadline` (--time-budget) has passed before are left out, and it is told so."""
    source = inputs.calibration
    if source is None or not source.files:
        return ()
    out: list[SampleThumbnail] = []
    for finding in findings:
        if finding.remedy is None:
            continue
        for change in finding.remedy.inputs:
            for k, (lay, spec) in enumerate(zip(source.layouts, inputs.specs, strict=True)):
                if change.input is not None and change.input != lay.name:
                    continue
                if change.fix is InputFix.DROP_SAMPLES:
                    picks = [(name, _find(source, k, name)) for name in change.samples]
                    picks = picks[:DROPPED_SHOWN]
                    fix = None
                else:
                    picks = [(group[k].name, i) for i, group in enumerate(source.files)]
                    picks = picks[:FIXED_SHOWN]
                    fix = change.fix
                for name, index in picks:
                    if index is None:
                        continue
                    if deadline is not None and deadline.expired:
                        deadline.missed("thumbnails")
                        return tuple(_unique(out))
                    out += _views(finding.code, source, k, index, name, lay, spec, fix)
    return tuple(_unique(out))


def _find(source: SampleSource, k: int, name: str) -> int | None:
    for i, group in enumerate(source.files):
        path = group[k]
        if name in (path.name, str(path)) or str(path).endswith(f"/{name}"):
            return i
    return None


def _views(
    code: str,
    source: SampleSource,
    k: int,
    index: int,
    name: str,
    lay: InputLayout,
    spec: InputSpec,
    fix: InputFix | None,
) -> list[SampleThumbnail]:
    try:
        arr = source.read(index).arrays[lay.name]
    except PtqInputError:
        return []
    given = to_rgb(arr, lay, spec, None)
    out = [_record(code, lay.name, name, "as given", given, None)]
    if fix is not None:
        fixed = to_rgb(arr, lay, spec, fix)
        if fixed is not None:
            out.append(_record(code, lay.name, name, fix.label, fixed, fix))
    return out


def _record(
    code: str, input_name: str, name: str, view: str, rgb: np.ndarray, fix: InputFix | None
) -> SampleThumbnail:
    return SampleThumbnail(
        code=code,
        input=input_name,
        sample=name,
        view=view,
        png=encode_png(rgb),
        width=int(rgb.shape[1]),
        height=int(rgb.shape[0]),
        fix=fix,
    )


def to_rgb(
    arr: np.ndarray, lay: InputLayout, spec: InputSpec, fix: InputFix | None
) -> np.ndarray | None:
    """A THUMB_SIZE RGB uint8 picture of one sample, read as the config declares it (after
    `fix`); None when the fix has no picture (adding normalisation only shrinks values)."""
    import cv2  # lazy

    x = np.nan_to_num(np.asarray(arr, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    hwc = _hwc(x, lay.layout)
    if fix is InputFix.READ_NHWC or fix is InputFix.READ_NCHW:
        hwc = _hwc(x, "NHWC" if fix is InputFix.READ_NHWC else "NCHW", reinterpret=True)
    elif fix is InputFix.SWAP_CHANNELS:
        hwc = hwc[..., ::-1]
    elif fix is InputFix.SCALE_X255:
        hwc = hwc * 255.0
    elif fix is InputFix.SCALE_DIV255:
        hwc = hwc / 255.0
    elif fix is InputFix.REMOVE_NORMALISATION:
        channels = hwc.shape[-1]
        mean = np.resize(np.asarray(spec.mean or (0.0,), np.float32), channels)
        scale = np.resize(np.asarray(spec.scale or (1.0,), np.float32), channels)
        hwc = hwc / np.where(scale == 0, 1.0, scale) + mean
    elif fix is InputFix.ADD_NORMALISATION:
        return None
    if spec.type_train in IMAGE_TYPES:
        img = np.clip(hwc, 0.0, PIXEL_MAX)
    else:  # a feature map: stretch its own range
        lo, hi = float(hwc.min()), float(hwc.max())
        img = (hwc - lo) * (PIXEL_MAX / (hi - lo)) if hi > lo else np.zeros_like(hwc)
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    elif img.shape[-1] != 3:
        img = np.repeat(img[..., :1], 3, axis=-1)
    elif spec.type_train == "bgr":
        img = img[..., ::-1]  # shown as RGB
    h, w = img.shape[:2]
    f = THUMB_SIZE / max(h, w)
    if f < 1.0:
        size = (max(1, round(w * f)), max(1, round(h * f)))
        img = cv2.resize(np.ascontiguousarray(img), size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(np.round(img).astype(np.uint8))


def _hwc(x: np.ndarray, layout: str | None, *, reinterpret: bool = False) -> np.ndarray:
    """(H, W, C) of the first image; `reinterpret`: the same bytes read in `layout`."""
    img = x[0] if x.ndim == 4 else x
    if img.ndim != 3:
        flat = img.reshape(-1)
        return flat.reshape(1, -1, 1)
    if reinterpret:  # the bytes as they were written, against how they were read
        a, b, c = img.shape
        if layout == "NHWC":  # read as (C, H, W) = (a, b, c), written H, W, C
            return img.reshape(b, c, a)
        return np.moveaxis(img.reshape(c, a, b), 0, -1)  # read (H, W, C), written C, H, W
    return img if layout == "NHWC" else np.moveaxis(img, 0, -1)


def encode_png(rgb: np.ndarray) -> str:
    """Base64 PNG of an RGB uint8 image."""
    import cv2  # lazy

    ok, data = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise ValueError("PNG encoding failed")
    return base64.b64encode(data.tobytes()).decode("ascii")


def decode_png(text: str) -> np.ndarray:
    """RGB uint8 image of a base64 PNG."""
    import cv2  # lazy

    data = np.frombuffer(base64.b64decode(text), np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return np.ascontiguousarray(bgr[..., ::-1])


def _unique(items: list[SampleThumbnail]) -> list[SampleThumbnail]:
    seen: set[tuple[str, str, str, str]] = set()
    out = []
    for t in items:
        key = (t.code, t.input, t.sample, t.view)
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


__all__ = ["THUMB_SIZE", "decode_png", "encode_png", "sample_thumbnails", "to_rgb"]
