"""Scales and integer ranges from calibrated ranges: the arithmetic shared by every backend.

The simulator rounds ``q = clip(round(x / s), lo, hi)`` and returns ``q * s``. A zero point
``zp`` folds into the bounds (``lo = qmin - zp``, ``hi = qmax - zp``), which is exactly
``DequantizeLinear(QuantizeLinear(x, s, zp), s, zp)`` with round-half-to-even and saturation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QRANGE = {"int8": (-128, 127), "int16": (-32768, 32767)}
MIN_THRESHOLD = 1e-8  # a tensor that was all zeros still needs a positive scale


@dataclass(frozen=True, slots=True)
class ActRange:
    """The calibrated range of an activation: symmetric uses max(|lo|, |hi|)."""

    lo: float
    hi: float
    symmetric: bool = True

    @property
    def threshold(self) -> float:
        return max(abs(self.lo), abs(self.hi))


@dataclass(frozen=True, slots=True)
class QParams:
    scale: float
    zero_point: int
    qmin: int
    qmax: int

    @property
    def lo(self) -> float:
        return float(self.qmin - self.zero_point)

    @property
    def hi(self) -> float:
        return float(self.qmax - self.zero_point)


def activation_qparams(r: ActRange, dtype: str) -> QParams:
    """Scale and zero point of an activation range at int8 or int16."""
    qmin, qmax = QRANGE[dtype]
    if r.symmetric:
        t = max(r.threshold, MIN_THRESHOLD)
        return QParams(float(np.float32(t / qmax)), 0, qmin, qmax)
    lo, hi = min(r.lo, 0.0), max(r.hi, 0.0)
    if hi - lo < MIN_THRESHOLD:
        hi = lo + MIN_THRESHOLD
    scale = float(np.float32((hi - lo) / (qmax - qmin)))
    zp = int(np.clip(round(qmin - lo / scale), qmin, qmax))
    return QParams(scale, zp, qmin, qmax)


def weight_qmax(dtype: str, reduce_range: bool = False) -> int:
    """Largest weight level: symmetric weights use [-qmax, qmax]; reduce_range keeps 7 bits."""
    if dtype == "int16":
        return 32767
    return 63 if reduce_range else 127


def weight_scales(thresholds: np.ndarray, dtype: str, reduce_range: bool = False) -> np.ndarray:
    t = np.maximum(np.asarray(thresholds, dtype=np.float64), MIN_THRESHOLD)
    return (t / weight_qmax(dtype, reduce_range)).astype(np.float32)


def fake_quantize(x: np.ndarray, scale: np.ndarray | float, lo: float, hi: float) -> np.ndarray:
    """The simulator's rounding, in numpy (for tests and offline weight rounding)."""
    s = np.asarray(scale, dtype=np.float32)
    return (np.clip(np.round(x.astype(np.float32) / s), lo, hi) * s).astype(np.float32)
