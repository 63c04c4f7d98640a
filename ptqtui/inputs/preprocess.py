"""The converter's preprocessing: colour type, layout, then `(x - mean) * scale`.

hb_mapper inserts this in front of the model (HzPreprocess), so the float model must see the
calibration samples through exactly these steps to see what the converted model sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptqtui.errors import PtqInputError
from ptqtui.inputs import schema

# BT.601 full range, as OpenCV's COLOR_RGB2YUV (Y, U, V rows; applied to R, G, B)
_RGB2YUV = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]],
    dtype=np.float64,
)
_YUV2RGB = np.linalg.inv(_RGB2YUV)
_GRAY = np.array([0.299, 0.587, 0.114], dtype=np.float64)


def channel_axis(layout: str | None, ndim: int) -> int:
    if ndim != 4:
        return -1 if ndim <= 2 else 1
    return 3 if layout == "NHWC" else 1


def _move(x: np.ndarray, axis: int) -> np.ndarray:
    return np.moveaxis(x, axis, -1)


def convert_color(x: np.ndarray, src: str, dst: str, layout: str | None) -> np.ndarray:
    """Convert a batch of images between rgb, bgr, yuv444 and gray (nv12 only as a source)."""
    if src == dst or "featuremap" in (src, dst):
        return x
    if src == "nv12":
        raise ValueError("nv12 data must be unpacked with nv12_to_yuv444 first")
    axis = channel_axis(layout, x.ndim)
    v = _move(x.astype(np.float64), axis)
    rgb = _to_rgb(v, src)
    out = _from_rgb(rgb, dst)
    return np.moveaxis(out, -1, axis).astype(np.float32)


def _to_rgb(v: np.ndarray, src: str) -> np.ndarray:
    if src == "rgb":
        return v
    if src == "bgr":
        return v[..., ::-1]
    if src == "yuv444":
        centred = v - np.array([0.0, 128.0, 128.0])
        return centred @ _YUV2RGB.T
    if src == "gray":
        return np.repeat(v[..., :1], 3, axis=-1)
    raise ValueError(f"unknown colour type {src!r}")


def _from_rgb(rgb: np.ndarray, dst: str) -> np.ndarray:
    if dst == "rgb":
        return rgb
    if dst == "bgr":
        return rgb[..., ::-1]
    if dst == "yuv444":
        return rgb @ _RGB2YUV.T + np.array([0.0, 128.0, 128.0])
    if dst == "gray":
        return (rgb @ _GRAY)[..., None]
    raise ValueError(f"unknown colour type {dst!r}")


def nv12_to_yuv444(nv12: np.ndarray, height: int, width: int) -> np.ndarray:
    """Unpack one nv12 frame (H*3/2 x W bytes) into an HxWx3 yuv444 image (chroma repeated)."""
    flat = np.asarray(nv12).reshape(-1)
    if flat.size != height * width * 3 // 2:
        raise ValueError(f"nv12 frame of {flat.size} bytes does not fit {height}x{width}")
    y = flat[: height * width].reshape(height, width)
    uv = flat[height * width :].reshape(height // 2, width // 2, 2)
    uv_full = uv.repeat(2, axis=0).repeat(2, axis=1)
    return np.dstack([y, uv_full[..., 0], uv_full[..., 1]])


def normalise(
    x: np.ndarray,
    norm_type: str | None,
    mean: tuple[float, ...] | None,
    scale: tuple[float, ...] | None,
    layout: str | None,
) -> np.ndarray:
    """`(x - mean) * scale` per channel, as norm_type says; float32 out."""
    out = x.astype(np.float32)
    if norm_type in (None, "no_preprocess"):
        return out
    axis = channel_axis(layout, out.ndim)
    channels = out.shape[axis] if out.ndim else 1
    shape = [1] * out.ndim
    if out.ndim:
        shape[axis] = channels
    if norm_type in ("data_mean", "data_mean_and_scale"):
        out = out - _per_channel(mean, channels, "mean_value").reshape(shape)
    if norm_type in ("data_scale", "data_mean_and_scale"):
        out = out * _per_channel(scale, channels, "scale_value").reshape(shape)
    return out.astype(np.float32)


def _per_channel(values: tuple[float, ...] | None, channels: int, key: str) -> np.ndarray:
    if values is None:
        raise ValueError(f"{key} is not set")
    if len(values) == 1:
        return np.full(channels, values[0], dtype=np.float32)
    if len(values) != channels:
        raise ValueError(f"{key} has {len(values)} values for {channels} channels")
    return np.asarray(values, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Preprocessor:
    """Turns one input's data (at `type_train` by default) into what the float model takes."""

    input_name: str
    type_train: str | None
    layout: str | None  # of the data and of the model input (input_layout_train)
    norm_type: str | None
    mean: tuple[float, ...] | None
    scale: tuple[float, ...] | None
    channels: int | None = None

    def __post_init__(self) -> None:
        if self.channels is None:
            return
        for key in schema.NORM_NEEDS.get(self.norm_type or "", ()):
            values = self.mean if key == "mean_value" else self.scale
            if values is None:
                raise PtqInputError(
                    None, f"norm_type {self.norm_type} for input {self.input_name} needs {key}"
                )
            if len(values) not in (1, self.channels):
                raise PtqInputError(
                    None,
                    f"{key} has {len(values)} values but input {self.input_name} has "
                    f"{self.channels} channels",
                )

    def __call__(self, data: np.ndarray, from_type: str | None = None) -> np.ndarray:
        src = from_type or self.type_train
        x = data
        if src and self.type_train and src != self.type_train:
            x = convert_color(x, src, self.type_train, self.layout)
        try:
            return normalise(x, self.norm_type, self.mean, self.scale, self.layout)
        except ValueError as exc:
            raise PtqInputError(None, f"cannot preprocess input {self.input_name}: {exc}") from exc
