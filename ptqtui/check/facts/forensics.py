"""Forensics on how the calibration files were made: which interpolation resized them, whether
their colours match the evaluation images better reversed, how their bytes read in the other
layout."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ptqtui.check.facts.missing import MissingFact
from ptqtui.check.facts.stats import channels_last
from ptqtui.errors import PtqInputError

if TYPE_CHECKING:
    from ptqtui.check.context import Context
    from ptqtui.inputs.data import InputLayout, SampleSource

RESIZE_SAMPLES = 16  # raw images re-resized for the interpolation forensics
ORDER_TEST_SAMPLES = 512  # calibration samples in the channel-order test (pairwise distances)
ORDER_TEST_GAIN = 0.5  # reversed at least twice as close to the evaluation data: reversed
INTERPOLATIONS = ("nearest", "linear", "area", "cubic")
RAW_SUFFIXES = (".bin", ".npy", ".raw", ".rgb", ".bgr")  # files made from a raw image


@dataclass(frozen=True, slots=True)
class ResizeMatch:
    """Which interpolation reproduces one `.bin` file from its raw image."""

    file: str
    raw: str
    errors: tuple[tuple[str, float], ...]  # interpolation -> relative RMS residual, best first

    @property
    def best(self) -> str:
        return self.errors[0][0]

    def error(self, method: str) -> float:
        return dict(self.errors)[method]


@dataclass(frozen=True, slots=True)
class OrderTest:
    """Energy distances between the colours of the calibration and the evaluation samples
    (chromaticity of each sample's most saturated pixels): as they are, with the calibration
    channels reversed, and between two halves of the evaluation samples (the noise level)."""

    same: float
    reversed: float
    noise: float
    calibration: int
    evaluation: int

    @property
    def reversed_fits(self) -> bool:
        """The calibration data matches the evaluation data clearly better reversed."""
        return self.same > self.noise and self.reversed <= ORDER_TEST_GAIN * self.same

    def describe(self) -> str:
        return (
            f"distance to the evaluation images {self.same:.3f} as given, {self.reversed:.3f} "
            f"with channels reversed (noise level {self.noise:.3f}; {self.calibration} "
            f"calibration, {self.evaluation} evaluation samples)"
        )


def compute_order_test(ctx: Context) -> OrderTest:
    """Is the calibration data in the channel order of the evaluation images?"""
    evaluation = ctx.eval_samples
    [name] = ctx.sample_stats.inputs[:1] or [""]
    calib = ctx.sample_stats.of(name)
    if len(calib[0].vivid) != 3 or len(evaluation[0].vivid) != 3:
        raise MissingFact("the channel-order test needs 3-channel data")
    if len(evaluation) < 8 or len(calib) < 3:
        raise MissingFact("too few samples for the channel-order test")
    rng = np.random.default_rng(ctx.seed)
    x = np.array([s.vivid for s in calib], np.float64)
    if len(x) > ORDER_TEST_SAMPLES:
        x = x[rng.choice(len(x), ORDER_TEST_SAMPLES, replace=False)]
    y = np.array([s.vivid for s in evaluation], np.float64)
    halves = rng.permutation(len(y))
    half = len(y) // 2
    return OrderTest(
        same=energy_distance(x, y),
        reversed=energy_distance(x[:, ::-1], y),
        noise=energy_distance(y[halves[:half]], y[halves[half:]]),
        calibration=len(x),
        evaluation=len(y),
    )


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Energy distance between two samples of points (0 for equal distributions)."""

    def mean_dist(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2).mean())

    return 2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y)


def other_layout_reader(
    source: SampleSource, input_name: str
) -> Callable[[np.ndarray], np.ndarray] | None:
    """For .bin/.npy data of 3-4 channels: the same bytes read in the other layout."""
    if not set(source.kinds) <= {"bin", "npy"}:
        return None
    lay = next((lay for lay in source.layouts if lay.name == input_name), None)
    if lay is None or len(lay.shape) != 4 or lay.layout not in ("NCHW", "NHWC"):
        return None
    n = lay.shape[0]
    if lay.layout == "NCHW":
        c, h, w = lay.shape[1:]
        if c not in (3, 4):
            return None
        return lambda x: x.reshape(n, h, w, c).transpose(0, 3, 1, 2)
    h, w, c = lay.shape[1:]
    if c not in (3, 4):
        return None
    return lambda x: x.reshape(n, c, h, w).transpose(0, 2, 3, 1)


def compute_resize_matches(ctx: Context) -> tuple[ResizeMatch, ...]:
    """The best interpolation for up to RESIZE_SAMPLES files that have a raw image."""
    raw_dir = ctx.raw_dir
    source = ctx.calibration
    if len(source.layouts) != 1:
        raise MissingFact("resize forensics need a single-input model")
    from ptqtui.inputs.data import IMAGE_SUFFIXES

    raws = {
        p.stem: p for p in raw_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    }
    lay = source.layouts[0]
    matches = []
    for index, group in enumerate(source.files):
        if len(matches) >= RESIZE_SAMPLES:
            break
        path = group[0]
        raw = raws.get(path.stem)
        if raw is None or path.suffix.lower() not in RAW_SUFFIXES:
            continue
        try:
            sample = source.read(index)
        except PtqInputError:
            continue
        match = resize_match(sample.arrays[lay.name], raw, lay, path.name)
        if match is not None:
            matches.append(match)
    if not matches:
        raise MissingFact(f"no calibration file has a raw image of the same name in {raw_dir}")
    return tuple(matches)


def resize_match(
    data: np.ndarray, raw: Path, lay: InputLayout, file_name: str
) -> ResizeMatch | None:
    """Re-resize the raw image with every interpolation; fit each to the data (per-channel
    affine, so any normalisation and channel order are absorbed); smallest residual wins."""
    import cv2  # lazy

    image = cv2.imdecode(np.fromfile(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or len(lay.shape) != 4:
        return None
    target = channels_last(np.asarray(data, np.float64), lay.layout)
    h, w, c = target.shape
    if c != 3:
        return None
    codes = {
        "nearest": cv2.INTER_NEAREST,
        "linear": cv2.INTER_LINEAR,
        "area": cv2.INTER_AREA,
        "cubic": cv2.INTER_CUBIC,
    }
    errors = []
    for name in INTERPOLATIONS:
        resized = cv2.resize(image, (w, h), interpolation=codes[name]).astype(np.float64)
        total = 0.0
        for ch in range(3):
            y = target[..., ch].reshape(-1)
            best = math.inf
            for src in range(3):  # either channel order
                x = resized[..., src].reshape(-1)
                a = np.vstack([x, np.ones_like(x)]).T
                coef, *_ = np.linalg.lstsq(a, y, rcond=None)
                resid = y - a @ coef
                best = min(best, float(np.sqrt(np.mean(resid**2))))
            spread = float(y.std()) or 1.0
            total += best / spread
        errors.append((name, total / 3))
    errors.sort(key=lambda e: e[1])
    return ResizeMatch(file_name, raw.name, tuple(errors))
