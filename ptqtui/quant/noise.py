"""Whether a measured difference is within the measured noise, and its label (no numpy: the
TUI imports it at start-up)."""

from __future__ import annotations

import math


def within_noise(delta: float | None, noise: float | None) -> bool:
    """Whether a measured difference is within the measured noise (False: no noise known)."""
    if delta is None or noise is None or math.isnan(delta) or math.isnan(noise) or noise <= 0:
        return False
    return abs(delta) <= noise


def signed_label(delta: float, noise: float | None, digits: int = 4) -> str:
    """A signed difference, labelled when it is within the noise: ``-0.0160 (within noise)``."""
    text = f"{delta:+.{digits}f}"
    return f"{text} (within noise)" if within_noise(delta, noise) else text
