"""Doing less work for the same answer: the refined curve and the trimmed sensitivity split."""

from __future__ import annotations

import itertools
import math

from ptqtui.analysis.accumulate import CURVE_TOLERANCE, _refine


def _run(curve: list[float]) -> tuple[dict[int, float], list[str]]:
    seen: dict[int, float] = {}
    notes: list[str] = []

    def point(i: int) -> float:
        seen[i] = curve[i]
        return curve[i]

    _refine(list(range(len(curve))), point, notes)
    return seen, notes


def test_a_step_is_located_to_its_node_and_flat_stretches_are_skipped():
    curve = [1.0] * 137 + [0.9] * 100 + [0.85] * 93
    seen, notes = _run(curve)
    assert 136 in seen and 137 in seen  # the drop's two sides, adjacent
    assert 236 in seen and 237 in seen
    assert len(seen) < len(curve) / 3
    assert notes and "of 330 points" in notes[0]


def test_a_slow_slide_keeps_every_step_within_the_tolerance():
    curve = [1.0 - 0.3 * (i / 329) ** 2 for i in range(330)]
    seen, _ = _run(curve)
    got = sorted(seen)
    tol = max(CURVE_TOLERANCE, 0.02 * 0.3)
    for a, b in itertools.pairwise(got):
        assert b - a == 1 or abs(curve[a] - curve[b]) <= tol


def test_nan_gaps_are_bisected_to_the_end():
    curve = [1.0] * 100 + [math.nan] * 100
    seen, _ = _run(curve)
    assert 99 in seen and 100 in seen
