from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ptqtui.quant import metrics


def test_known_values():
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([1.0, 1.0, 0.0])
    assert metrics.cosine(a, b) == np.float64(1 / math.sqrt(2))
    assert metrics.mse(a, b) == 1 / 3
    assert metrics.mre(a, b) == 1.0
    assert metrics.sqnr_db(a, b) == 0.0
    assert metrics.chebyshev(a, b) == 1.0


def test_identical_tensors_are_perfect_and_finite():
    a = np.arange(6.0)
    s = metrics.compare(a, a)
    assert s.cosine == 1.0 and s.mse == 0.0 and s.chebyshev == 0.0
    assert s.sqnr_db == metrics.MAX_SQNR_DB


def test_nan_safe():
    a = np.array([1.0, np.nan])
    assert math.isnan(metrics.cosine(a, a))
    assert math.isnan(metrics.cosine(np.zeros(3), np.ones(3)))
    assert metrics.cosine(np.zeros(3), np.zeros(3)) == 1.0
    avg = metrics.average([metrics.compare(a, a), metrics.compare(np.ones(2), np.ones(2))])
    assert avg.cosine == pytest.approx(1.0)


@given(arrays(np.float32, 16, elements=st.floats(-100, 100, width=32)))
def test_cosine_is_bounded(x):
    c = metrics.cosine(x, x[::-1])
    assert math.isnan(c) or -1.0 <= c <= 1.0
