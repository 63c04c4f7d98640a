"""Similarity of a quantized tensor to its float reference, per sample and averaged.

NaN-safe: a metric that is undefined (zero-norm reference, non-finite values) is NaN, and
averages ignore NaNs. SQNR is in dB, higher is better, capped at ``MAX_SQNR_DB`` for identical
tensors so that results stay finite JSON numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ptqtui.quant.similarity import Similarity

MAX_SQNR_DB = 200.0  # identical tensors; float32 itself resolves about 150 dB
_TINY = 1e-30


def _pair(ref: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    a = np.asarray(ref, dtype=np.float64).reshape(-1)
    b = np.asarray(q, dtype=np.float64).reshape(-1)
    if a.shape != b.shape or a.size == 0:
        return None
    ok = np.isfinite(a) & np.isfinite(b)
    if not ok.all():
        return None
    return a, b


def cosine(ref: np.ndarray, q: np.ndarray) -> float:
    """Cosine similarity; 1.0 when both are all zeros, NaN when only one is."""
    p = _pair(ref, q)
    if p is None:
        return math.nan
    a, b = p
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return math.nan
    return float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))


def mse(ref: np.ndarray, q: np.ndarray) -> float:
    p = _pair(ref, q)
    if p is None:
        return math.nan
    a, b = p
    return float(np.mean((a - b) ** 2))


def mre(ref: np.ndarray, q: np.ndarray) -> float:
    """Mean relative error: sum |q - ref| / sum |ref| (NaN when the reference is all zeros)."""
    p = _pair(ref, q)
    if p is None:
        return math.nan
    a, b = p
    denom = float(np.sum(np.abs(a)))
    err = float(np.sum(np.abs(a - b)))
    if denom == 0.0:
        return 0.0 if err == 0.0 else math.nan
    return err / denom


def sqnr_db(ref: np.ndarray, q: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB (higher is better)."""
    p = _pair(ref, q)
    if p is None:
        return math.nan
    a, b = p
    signal = float(np.sum(a * a))
    noise = float(np.sum((a - b) ** 2))
    if noise <= _TINY:
        return MAX_SQNR_DB
    if signal <= _TINY:
        return math.nan
    return min(MAX_SQNR_DB, 10.0 * math.log10(signal / noise))


def chebyshev(ref: np.ndarray, q: np.ndarray) -> float:
    """Largest absolute difference."""
    p = _pair(ref, q)
    if p is None:
        return math.nan
    a, b = p
    return float(np.max(np.abs(a - b)))


def compare(ref: np.ndarray, q: np.ndarray) -> Similarity:
    return Similarity(cosine(ref, q), mse(ref, q), mre(ref, q), sqnr_db(ref, q), chebyshev(ref, q))


def nanmean(values: Iterable[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(sum(finite) / len(finite)) if finite else math.nan


def average(items: Iterable[Similarity]) -> Similarity:
    """NaN-ignoring mean of each metric (Chebyshev: the max, the worst sample)."""
    xs = list(items)
    cheb = [s.chebyshev for s in xs if not math.isnan(s.chebyshev)]
    return Similarity(
        nanmean(s.cosine for s in xs),
        nanmean(s.mse for s in xs),
        nanmean(s.mre for s in xs),
        nanmean(s.sqnr_db for s in xs),
        max(cheb) if cheb else math.nan,
    )
