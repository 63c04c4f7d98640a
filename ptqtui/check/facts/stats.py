"""Statistics of the calibration (and evaluation) arrays: per sample, and over the whole set."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ptqtui.check.facts.missing import MissingFact
from ptqtui.progress import check_cancel

if TYPE_CHECKING:
    from ptqtui.inputs.data import InputLayout, SampleSource

MAX_STATS_SAMPLES = 2000  # per-sample statistics: beyond this the set is only counted
LAYOUT_SAMPLES = 32  # samples whose two layout readings are compared
THUMB = 8  # thumbnails are THUMB x THUMB per channel (near-duplicate search)
VIVID_SHARE = 0.1  # the most saturated tenth of the pixels: the colourful objects of an image


@dataclass(frozen=True, slots=True)
class ArrayStats:
    """One input's array of one calibration sample."""

    sample: int  # position in the source's file list
    path: Path
    kind: str  # "bin" | "npy" | "image"
    dtype: str
    min: float
    max: float
    mean: float
    std: float
    channel_means: tuple[float, ...]  # in the input's layout's channel order
    nonfinite: int
    integral: bool  # every value is a whole number
    low_share: tuple[float, float]  # share at <= 2 % of full scale, for full scale 1 and 255
    high_share: tuple[float, float]  # share at >= 98 % of full scale, for 1 and 255
    smoothness: tuple[float, float] | None  # (as read, read in the other layout); bin/npy only
    vivid: tuple[float, ...] = ()  # chromaticity (x3) of the most saturated 10 % of pixels

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True, slots=True)
class DataStats:
    """One input's values over the whole set."""

    input: str
    count: int
    min: float
    max: float
    mean: float
    std: float
    channel_means: tuple[float, ...]
    channel_stds: tuple[float, ...]
    nonfinite: int
    integral: bool
    negative: bool

    @property
    def full_scale(self) -> float | None:
        """1.0 for 0..1 data, 255.0 for pixel data, None for anything else."""
        if self.min < -0.01:
            return None
        if self.max <= 1.0 + 1e-3:
            return 1.0
        if self.max <= 255.0 + 1e-3:
            return 255.0
        return None

    @property
    def max_abs(self) -> float:
        return max(abs(self.min), abs(self.max))

    def describe(self) -> str:
        chans = " ".join(f"{m:.3g}" for m in self.channel_means)
        return f"range {self.min:.4g}..{self.max:.4g}, mean {self.mean:.4g}, std {self.std:.4g}" + (
            f", channel means {chans}" if len(self.channel_means) > 1 else ""
        )


@dataclass(frozen=True, slots=True)
class SampleSet:
    """Per-sample statistics of every input, plus thumbnails for near-duplicate search."""

    inputs: tuple[str, ...]
    stats: tuple[tuple[ArrayStats, ...], ...]  # [input][sample]
    thumbs: tuple[np.ndarray, ...]  # [input] -> (samples, THUMB*THUMB*C) float32
    total: int  # readable samples in the source (may exceed the stats kept)
    unreadable: tuple[tuple[str, str], ...]  # (file, problem)

    def of(self, input_name: str) -> tuple[ArrayStats, ...]:
        return self.stats[self.inputs.index(input_name)]


def sample_set(source: SampleSource, cancel: threading.Event | None = None) -> SampleSet:
    """Per-sample statistics of up to MAX_STATS_SAMPLES samples; every sample is counted."""
    layouts = source.layouts
    per_input: list[list[ArrayStats]] = [[] for _ in layouts]
    thumbs: list[list[np.ndarray]] = [[] for _ in layouts]
    total = 0
    for sample in source.iter_samples():
        check_cancel(cancel)
        total += 1
        if total > MAX_STATS_SAMPLES:
            continue
        for i, lay in enumerate(layouts):
            arr = sample.arrays[lay.name]
            path = sample.files[i]
            per_input[i].append(array_stats(sample.index, path, sample.kind, arr, lay))
            thumbs[i].append(_thumbnail(arr, lay.layout))
    if total == 0:
        problems = [f"{m.file.name}: {m.describe()}" for m in source.mismatches[:1]]
        problems += [f"{u.file.name}: {u.problem}" for u in source.unreadable[:1]]
        why = "; first: " + problems[0] if problems else ""
        raise MissingFact(f"no readable calibration sample{why}")
    return SampleSet(
        inputs=tuple(lay.name for lay in layouts),
        stats=tuple(tuple(s) for s in per_input),
        thumbs=tuple(np.stack(t).astype(np.float32) for t in thumbs),
        total=total,
        unreadable=tuple((u.file.name, u.problem) for u in source.unreadable),
    )


def aggregate(name: str, stats: tuple[ArrayStats, ...]) -> DataStats:
    """Set-wide statistics from per-sample ones (means of means; pooled variance)."""
    means = np.array([s.mean for s in stats])
    stds = np.array([s.std for s in stats])
    mean = float(means.mean())
    var = float(np.mean(stds**2 + (means - mean) ** 2))
    chans = np.array([s.channel_means for s in stats])
    return DataStats(
        input=name,
        count=len(stats),
        min=min(s.min for s in stats),
        max=max(s.max for s in stats),
        mean=mean,
        std=math.sqrt(max(var, 0.0)),
        channel_means=tuple(float(v) for v in chans.mean(axis=0)),
        channel_stds=tuple(float(v) for v in chans.std(axis=0)),
        nonfinite=sum(s.nonfinite for s in stats),
        integral=all(s.integral for s in stats),
        negative=min(s.min for s in stats) < 0,
    )


def channel_axis(layout: str | None) -> int:
    return 3 if layout == "NHWC" else 1


def channels_last(arr: np.ndarray, layout: str | None) -> np.ndarray:
    """(H, W, C) of the first image of a 4-D batch; None-like 2-D for other ranks."""
    if arr.ndim == 4:
        img = arr[0]
        return img if layout == "NHWC" else np.moveaxis(img, 0, -1)
    if arr.ndim == 3:
        return arr if layout == "NHWC" else np.moveaxis(arr, 0, -1)
    flat = arr.reshape(-1)
    return flat.reshape(1, -1, 1)


def array_stats(
    index: int,
    path: Path,
    kind: str,
    arr: np.ndarray,
    lay: InputLayout,
    *,
    layout_check: bool = True,
) -> ArrayStats:
    values = np.asarray(arr)
    floats = values.astype(np.float64, copy=False)
    finite = np.isfinite(floats)
    nonfinite = int(values.size - int(finite.sum()))
    good = floats[finite] if nonfinite else floats.reshape(-1)
    if good.size == 0:
        good = np.zeros(1)
    hwc = channels_last(np.where(finite, floats, 0.0) if nonfinite else floats, lay.layout)
    channel_means = tuple(float(v) for v in hwc.reshape(-1, hwc.shape[-1]).mean(axis=0))
    low = (float(np.mean(good <= 0.02)), float(np.mean(good <= 0.02 * 255)))
    high = (float(np.mean(good >= 0.98)), float(np.mean(good >= 0.98 * 255)))
    integral = bool(values.dtype.kind in "iu" or np.all(np.mod(good, 1.0) == 0))
    smooth = None
    if layout_check and kind in ("bin", "npy") and index < LAYOUT_SAMPLES:
        smooth = _layout_smoothness(values, lay)
    return ArrayStats(
        vivid=_vivid_chromaticity(hwc),
        sample=index,
        path=path,
        kind=kind,
        dtype=str(values.dtype),
        min=float(good.min()),
        max=float(good.max()),
        mean=float(good.mean()),
        std=float(good.std()),
        channel_means=channel_means,
        nonfinite=nonfinite,
        integral=integral,
        low_share=low,
        high_share=high,
        smoothness=smooth,
    )


def _vivid_chromaticity(hwc: np.ndarray) -> tuple[float, ...]:
    """Chromaticity of the most saturated pixels of a 3-channel image, scaled to sum to 3.

    Colourful objects (signs, fruit, sky, foliage) are what a channel swap changes most and
    channel means least; their colours are characteristic of a data set."""
    if hwc.shape[-1] != 3:
        return ()
    pixels = hwc.reshape(-1, 3)
    saturation = pixels.max(axis=1) - pixels.min(axis=1)
    count = max(1, int(len(pixels) * VIVID_SHARE))
    vivid = pixels[np.argpartition(saturation, -count)[-count:]].mean(axis=0)
    total = float(np.abs(vivid).sum())
    if total <= 1e-12:
        return (1.0, 1.0, 1.0)
    return tuple(float(3 * v / total) for v in vivid)


def _roughness(hwc: np.ndarray) -> float:
    """Mean neighbour difference over the image's spread: small for natural images."""
    spread = float(hwc.std())
    if spread <= 1e-12 or hwc.shape[0] < 2 or hwc.shape[1] < 2:
        return math.nan
    dx = np.abs(np.diff(hwc, axis=1)).mean()
    dy = np.abs(np.diff(hwc, axis=0)).mean()
    return float((dx + dy) / 2 / spread)


def _layout_smoothness(values: np.ndarray, lay: InputLayout) -> tuple[float, float] | None:
    """Roughness of the bytes read in the declared layout and in the other one."""
    shape = lay.shape
    if len(shape) != 4 or lay.layout not in ("NCHW", "NHWC"):
        return None
    if lay.layout == "NCHW":
        c, h, w = shape[1], shape[2], shape[3]
    else:
        h, w, c = shape[1], shape[2], shape[3]
    if c not in (3, 4) or h < 4 or w < 4:
        return None
    flat = np.nan_to_num(
        values.astype(np.float64).reshape(-1)[: c * h * w], nan=0.0, posinf=0.0, neginf=0.0
    )
    as_nchw = flat.reshape(c, h, w).transpose(1, 2, 0)
    as_nhwc = flat.reshape(h, w, c)
    if lay.layout == "NCHW":
        return _roughness(as_nchw), _roughness(as_nhwc)
    return _roughness(as_nhwc), _roughness(as_nchw)


def _thumbnail(arr: np.ndarray, layout: str | None) -> np.ndarray:
    import cv2  # lazy

    clean = np.nan_to_num(np.asarray(arr, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    hwc = channels_last(clean, layout)
    if hwc.shape[0] < THUMB or hwc.shape[1] < THUMB:
        small = np.resize(hwc.reshape(-1), THUMB * THUMB * hwc.shape[-1])
        return small.astype(np.float32)
    small = cv2.resize(np.ascontiguousarray(hwc), (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    return np.asarray(small, np.float32).reshape(-1)
