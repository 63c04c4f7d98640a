"""Calibration and evaluation data: natural order, .bin sizes, read modes, several inputs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ptqtui.errors import PtqInputError
from ptqtui.inputs.data import InputLayout, load_eval_set, natural_key, open_samples

RGB = InputLayout("images", "uint8", (1, 3, 8, 8), "NCHW", "rgb")


def write_bins(folder: Path, n: int, dtype: str = "uint8", shape=(1, 3, 8, 8)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"{i}.bin"
        np.full(shape, i, dtype=dtype).tofile(p)
        paths.append(p)
    return paths


def test_natural_order_puts_2_before_10(tmp_path):
    write_bins(tmp_path, 12)
    source = open_samples([tmp_path], [RGB])
    names = [files[0].name for files in source.files]
    assert names[:3] == ["0.bin", "1.bin", "2.bin"] and names[-1] == "11.bin"
    assert sorted(["a10", "a2", "a1"], key=natural_key) == ["a1", "a2", "a10"]


def test_bin_files_are_read_lazily_with_provenance(tmp_path):
    write_bins(tmp_path, 3)
    source = open_samples([tmp_path], [RGB])
    samples = list(source.iter_samples())
    assert [s.index for s in samples] == [0, 1, 2]
    assert samples[2].files == (tmp_path / "2.bin",)
    assert samples[2].arrays["images"].shape == (1, 3, 8, 8)
    assert samples[2].arrays["images"].dtype == np.uint8
    assert int(samples[2].arrays["images"][0, 0, 0, 0]) == 2


def test_wrong_size_bin_is_recorded_with_what_would_fit(tmp_path):
    write_bins(tmp_path, 2)
    np.zeros((1, 3, 8, 8), np.float32).tofile(tmp_path / "2.bin")  # float32 written
    (tmp_path / "notes.txt").write_text("calibration set v2")
    source = open_samples([tmp_path], [RGB])
    assert len(source) == 2
    [mismatch] = source.mismatches
    assert mismatch.file.name == "2.bin"
    assert (mismatch.size, mismatch.expected) == (768, 192)
    assert "float32 1x3x8x8" in mismatch.fits and "uint8 4x3x8x8" in mismatch.fits
    assert "768" in mismatch.describe()
    [skipped] = source.skipped
    assert skipped.file.name == "notes.txt"


def _image(tmp_path: Path) -> Path:
    bgr = np.zeros((8, 8, 3), np.uint8)
    bgr[..., 0] = 200  # blue
    bgr[..., 2] = 10  # red
    path = tmp_path / "blue.png"
    cv2.imwrite(str(path), bgr)
    return path


def test_opencv_read_mode_gives_bgr_uint8(tmp_path):
    _image(tmp_path)
    [sample] = open_samples([tmp_path], [RGB], "opencv").iter_samples()
    x = sample.arrays["images"]
    assert x.dtype == np.uint8 and sample.channel_order == "bgr"
    assert (int(x[0, 0, 0, 0]), int(x[0, 2, 0, 0])) == (200, 10)


def test_skimage_read_mode_gives_rgb_floats_in_0_1(tmp_path):
    _image(tmp_path)
    [sample] = open_samples([tmp_path], [RGB], "skimage").iter_samples()
    x = sample.arrays["images"]
    assert x.dtype == np.float32 and sample.channel_order == "rgb"
    assert x[0, 0, 0, 0] == pytest.approx(10 / 255) and x[0, 2, 0, 0] == pytest.approx(200 / 255)


def test_images_are_resized_to_the_input(tmp_path):
    cv2.imwrite(str(tmp_path / "big.jpg"), np.full((32, 48, 3), 128, np.uint8))
    [sample] = open_samples([tmp_path], [RGB]).iter_samples()
    assert sample.arrays["images"].shape == (1, 3, 8, 8)


def test_corrupt_image_is_recorded_not_raised(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    write_bins(tmp_path, 1)
    source = open_samples([tmp_path], [RGB])
    assert len(list(source.iter_samples())) == 1
    assert [u.file.name for u in source.unreadable] == ["broken.png"]


def test_several_inputs_are_matched_by_file_name(tmp_path):
    feat = InputLayout("feat", "float32", (1, 4), None, "featuremap")
    write_bins(tmp_path / "image", 3)
    (tmp_path / "feat").mkdir()
    for i in (0, 2, 1):
        np.full((1, 4), i, np.float32).tofile(tmp_path / "feat" / f"{i}.bin")
    np.ones((1, 4), np.float32).tofile(tmp_path / "feat" / "7.bin")  # no partner
    source = open_samples([tmp_path / "image", tmp_path / "feat"], [RGB, feat])
    assert len(source) == 3
    s = source.read(2)
    assert s.files == (tmp_path / "image" / "2.bin", tmp_path / "feat" / "2.bin")
    assert float(s.arrays["feat"][0, 0]) == 2.0
    assert any(i.file.name == "7.bin" for i in source.skipped)


def test_npy_samples_get_a_batch_axis(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((3, 8, 8), np.float32))
    [sample] = open_samples([tmp_path], [RGB]).iter_samples()
    assert sample.arrays["images"].shape == (1, 3, 8, 8)


def test_one_dir_per_input(tmp_path):
    with pytest.raises(PtqInputError, match="2 input"):
        open_samples([tmp_path], [RGB, RGB])


def test_eval_set_from_class_folders_and_classes_txt(tmp_path):
    for cls in ("red", "blue", "green"):
        (tmp_path / cls).mkdir()
        cv2.imwrite(str(tmp_path / cls / "1.png"), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "classes.txt").write_text("red\ngreen\nblue\n")
    ev = load_eval_set(tmp_path)
    assert ev.classes == ("red", "green", "blue")
    assert {f.file.parent.name: f.label for f in ev.items} == {"red": 0, "green": 1, "blue": 2}


def test_eval_set_from_labels_txt(tmp_path):
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "labels.txt").write_text("a.png 3\nb.png 1\n")
    ev = load_eval_set(tmp_path)
    assert sorted((f.file.name, f.label) for f in ev.items) == [("a.png", 3), ("b.png", 1)]
