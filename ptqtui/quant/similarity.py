"""`Similarity`: how close a quantized tensor is to float, every metric the debug tool reports.

Its own module without numpy: the Diagnosis records hold it and load without numpy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Similarity:
    """All metrics of one tensor (or their NaN-ignoring means over samples): `cosine` and
    `sqnr_db` higher-better; `mse`, `mre` and `chebyshev` lower-better."""

    cosine: float
    mse: float
    mre: float
    sqnr_db: float
    chebyshev: float
