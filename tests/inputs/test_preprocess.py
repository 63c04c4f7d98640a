"""Preprocessing as the converter applies it, checked against numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ptqtui.errors import PtqInputError
from ptqtui.inputs.preprocess import Preprocessor, convert_color, normalise, nv12_to_yuv444


def test_mean_and_scale_per_channel_nchw():
    x = np.array([[[[130.0]], [[120.0]], [[110.0]]]], np.float32)  # 1x3x1x1
    out = normalise(x, "data_mean_and_scale", (120.0, 100.0, 110.0), (0.5, 0.25, 2.0), "NCHW")
    # (130-120)*0.5 = 5, (120-100)*0.25 = 5, (110-110)*2 = 0
    np.testing.assert_allclose(out.reshape(-1), [5.0, 5.0, 0.0])


def test_mean_and_scale_per_channel_nhwc():
    x = np.array([[[[130.0, 120.0, 110.0]]]], np.float32)  # 1x1x1x3
    out = normalise(x, "data_mean_and_scale", (120.0, 100.0, 110.0), (0.5, 0.25, 2.0), "NHWC")
    np.testing.assert_allclose(out.reshape(-1), [5.0, 5.0, 0.0])


def test_single_scale_broadcasts_and_mean_only():
    x = np.full((1, 1, 2, 2), 255, np.uint8)
    np.testing.assert_allclose(normalise(x, "data_scale", None, (1 / 255,), "NCHW"), 1.0)
    np.testing.assert_allclose(normalise(x, "data_mean", (128.0,), None, "NCHW"), 127.0)
    assert normalise(x, "no_preprocess", None, None, "NCHW").dtype == np.float32


def test_bgr_to_rgb_swaps_channels():
    x = np.array([[[[1.0]], [[2.0]], [[3.0]]]], np.float32)
    out = convert_color(x, "bgr", "rgb", "NCHW")
    np.testing.assert_allclose(out.reshape(-1), [3.0, 2.0, 1.0])


def test_rgb_to_gray_uses_bt601_weights():
    x = np.array([[[[100.0]], [[200.0]], [[50.0]]]], np.float32)
    out = convert_color(x, "rgb", "gray", "NCHW")
    # 0.299*100 + 0.587*200 + 0.114*50 = 29.9 + 117.4 + 5.7 = 153.0
    assert out.shape == (1, 1, 1, 1)
    assert float(out.reshape(-1)[0]) == pytest.approx(153.0, abs=1e-3)


def test_yuv444_round_trip_and_grey_has_neutral_chroma():
    grey = np.full((1, 3, 1, 1), 90.0, np.float32)
    yuv = convert_color(grey, "rgb", "yuv444", "NCHW")
    np.testing.assert_allclose(yuv.reshape(-1), [90.0, 128.0, 128.0], atol=1e-3)
    back = convert_color(yuv, "yuv444", "rgb", "NCHW")
    np.testing.assert_allclose(back, grey, atol=1e-3)


def test_nv12_unpacks_to_yuv444_with_repeated_chroma():
    h, w = 2, 4
    y = np.arange(8, dtype=np.uint8)
    uv = np.array([100, 150, 110, 160], np.uint8)  # two UV pairs for a 2x4 frame
    out = nv12_to_yuv444(np.concatenate([y, uv]), h, w)
    assert out.shape == (2, 4, 3)
    np.testing.assert_array_equal(out[..., 0], y.reshape(2, 4))
    np.testing.assert_array_equal(out[0, :, 1], [100, 100, 110, 110])
    np.testing.assert_array_equal(out[1, :, 2], [150, 150, 160, 160])


def test_preprocessor_converts_then_normalises():
    pre = Preprocessor("images", "rgb", "NCHW", "data_mean_and_scale", (10.0, 20.0, 30.0),
                       (1.0, 0.5, 0.1), channels=3)  # fmt: skip
    bgr = np.array([[[[30.0]], [[20.0]], [[10.0]]]], np.float32)
    out = pre(bgr, from_type="bgr")  # -> rgb 10, 20, 30 -> all zero
    np.testing.assert_allclose(out.reshape(-1), [0.0, 0.0, 0.0])


def test_preprocessor_refuses_a_mean_count_that_does_not_fit():
    with pytest.raises(PtqInputError, match="mean_value has 2 values"):
        Preprocessor("images", "rgb", "NCHW", "data_mean", (1.0, 2.0), None, channels=3)
