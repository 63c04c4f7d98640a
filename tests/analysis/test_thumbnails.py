"""Thumbnails of the samples a finding's remedy points at, as given and as fixed."""

from __future__ import annotations

import numpy as np
import onnx

from ptqtui.analysis.thumbnails import THUMB_SIZE, decode_png, sample_thumbnails
from ptqtui.check.findings import Finding, Severity
from ptqtui.inputs.resolve import load_inputs
from ptqtui.remedy import InputChange, InputFix, Remedy
from ptqtui.request import InputFlags, Request
from tests.quant.factories import small_cnn

SIZE = 64  # the sample's side: the thumbnail halves it


def _inputs(tmp, samples: dict[str, np.ndarray]):
    model = small_cnn()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    for d, n in zip(model.graph.input[0].type.tensor_type.shape.dim[2:], (SIZE, SIZE), strict=True):
        d.dim_value = n
    onnx.save(model, tmp / "m.onnx")
    (tmp / "cal").mkdir()
    for name, arr in samples.items():
        np.save(tmp / "cal" / name, arr.astype(np.float32))
    flags = InputFlags(input_type_train="rgb", layout="NCHW", cal_data_type="float32")
    return load_inputs(Request(model=tmp / "m.onnx", cal_dirs=(tmp / "cal",), flags=flags))


def _image(r: float, g: float, b: float) -> np.ndarray:
    img = np.empty((1, 3, SIZE, SIZE), np.float32)
    img[0, 0], img[0, 1], img[0, 2] = r, g, b
    return img


def _finding(*changes: InputChange) -> Finding:
    return Finding("PTQ001", Severity.CRITICAL, "m", remedy=Remedy(inputs=changes))


def test_a_channel_swap_shows_each_sample_as_given_and_swapped(tmp_path):
    inputs = _inputs(tmp_path, {f"{i}.npy": _image(20.0, 90.0, 230.0) for i in range(5)})
    thumbs = sample_thumbnails([_finding(InputChange(InputFix.SWAP_CHANNELS))], inputs)
    assert [t.view for t in thumbs] == ["as given", "swap channels"] * 3  # the first three
    given, swapped = decode_png(thumbs[0].png), decode_png(thumbs[1].png)
    assert given.shape == (THUMB_SIZE, THUMB_SIZE, 3) == swapped.shape
    assert tuple(given[5, 5]) == (20, 90, 230) and tuple(swapped[5, 5]) == (230, 90, 20)
    assert thumbs[1].fix is InputFix.SWAP_CHANNELS and thumbs[0].fix is None
    assert thumbs[0].code == "PTQ001" and thumbs[0].sample == "0.npy"


def test_unit_scale_data_is_dark_as_given_and_right_times_255(tmp_path):
    inputs = _inputs(tmp_path, {"a.npy": _image(0.5, 0.5, 0.5)})
    thumbs = sample_thumbnails([_finding(InputChange(InputFix.SCALE_X255))], inputs)
    assert decode_png(thumbs[0].png).max() <= 1
    assert abs(int(decode_png(thumbs[1].png)[0, 0, 0]) - 128) <= 1


def test_dropped_samples_are_the_named_ones_only(tmp_path):
    samples = {f"{i}.npy": _image(100.0, 100.0, 100.0) for i in range(4)}
    samples["black.npy"] = _image(0.0, 0.0, 0.0)
    inputs = _inputs(tmp_path, samples)
    change = InputChange(InputFix.DROP_SAMPLES, samples=("black.npy", "missing.npy"))
    [thumb] = sample_thumbnails([_finding(change)], inputs)
    assert thumb.sample == "black.npy" and thumb.view == "as given"
    assert decode_png(thumb.png).max() == 0


def test_no_remedy_no_input_fix_no_thumbnails(tmp_path):
    inputs = _inputs(tmp_path, {"a.npy": _image(1.0, 2.0, 3.0)})
    plain = Finding("PTQ104", Severity.INFO, "m")
    assert (
        sample_thumbnails([plain, Finding("PTQ301", Severity.MAJOR, "m", remedy=Remedy())], inputs)
        == ()
    )


def test_thumbnails_survive_the_json_round_trip():
    from ptqtui.diagnosis import Diagnosis
    from tests.prepared import prepared_with_pictures

    d = prepared_with_pictures()
    back = Diagnosis.from_json(d.to_json())
    assert back.thumbnails == d.thumbnails and back.thumbnails[1].fix is InputFix.SWAP_CHANNELS
    assert decode_png(back.thumbnails[1].png).shape == (32, 32, 3)
