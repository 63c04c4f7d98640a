"""Calibration and evaluation samples: lazy, in natural order, each with its provenance.

Files are read as the user's pipeline reads them: `numpy.tofile` `.bin` files with the dtype
the config declares (or the `_f32` suffix implies) and the shape of `input_shape` (or the
model), `.npy` files as saved, and images as OpenCV (BGR uint8 0..255) or skimage (RGB float
0..1) reads them. A file that cannot be read is recorded, never raised.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptqtui.errors import PtqInputError
from ptqtui.inputs.files import FileKind, examine

# OpenCV refuses images above this many pixels before allocating them (its own default is
# 2**30, 3 GB of BGR): a small PNG can claim 100000 x 100000. 2**26 is 8192 x 8192.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(2**26))
# One sample file larger than this is not read (a sparse or runaway file): a 4K float32
# RGB image is 100 MB.
MAX_SAMPLE_BYTES = 512 * 1024 * 1024

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
# numpy.tofile files: the hb_mapper sample scripts name them after the data type they hold.
RAW_SUFFIXES = frozenset(
    {".bin", ".raw", ".rgb", ".bgr", ".yuv", ".yuv444", ".nv12", ".gray", ".f32", ".dat"}
)
NPY_SUFFIXES = frozenset({".npy"})
READ_MODES = ("opencv", "skimage")
# dtypes a .bin file might have been written with, to say which would fit its size
CANDIDATE_DTYPES = ("uint8", "int8", "int16", "float16", "float32", "int32", "float64")


def natural_key(name: str) -> tuple:
    """'img2' sorts before 'img10'."""
    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name))


@dataclass(frozen=True, slots=True)
class InputLayout:
    """How to read the files of one input: name, dtype and shape of one sample."""

    name: str
    dtype: str  # for .bin files
    shape: tuple[int, ...]  # one file's shape (batch included), at input_type_train/layout
    layout: str | None = None  # "NCHW" | "NHWC" of `shape`
    color: str | None = None  # input_type_train: rgb, bgr, gray, yuv444, featuremap


@dataclass(frozen=True, slots=True)
class SizeMismatch:
    """A .bin file whose byte count does not fit the declared dtype and shape."""

    file: Path
    size: int
    expected: int  # bytes the declared dtype x shape need
    dtype: str
    shape: tuple[int, ...]
    fits: tuple[str, ...]  # "float32 1x3x64x64", "uint8 2x3x64x64", ...

    def describe(self) -> str:
        shape = "x".join(map(str, self.shape))
        text = f"{self.file.name} has {self.size} bytes; {shape} {self.dtype} needs {self.expected}"
        if self.fits:
            text += f" (fits: {', '.join(self.fits)})"
        return text


@dataclass(frozen=True, slots=True)
class FileIssue:
    file: Path
    problem: str


@dataclass(frozen=True, slots=True)
class Sample:
    """One calibration sample: an array per input, as the user's files hold them."""

    index: int
    files: tuple[Path, ...]  # one per input
    arrays: dict[str, np.ndarray]  # input name -> array at input_type_train / layout / shape
    kind: str  # "bin" | "npy" | "image"
    channel_order: str | None = None  # "bgr"/"rgb" for images as read, else None

    @property
    def name(self) -> str:
        return self.files[0].name


@dataclass
class SampleSource:
    """Lazy calibration samples over one directory per input, matched by file name."""

    dirs: tuple[Path, ...]
    layouts: tuple[InputLayout, ...]
    read_mode: str = "opencv"
    files: list[tuple[Path, ...]] = field(default_factory=list)  # readable, per sample
    skipped: list[FileIssue] = field(default_factory=list)  # other files, with why
    mismatches: list[SizeMismatch] = field(default_factory=list)
    unreadable: list[FileIssue] = field(default_factory=list)  # filled while reading

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[Sample]:
        return self.iter_samples()

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted({_kind(f[0]) for f in self.files}))

    def iter_samples(self, limit: int | None = None) -> Iterator[Sample]:
        """Read samples one by one; unreadable files are recorded and skipped."""
        seen_bad = {issue.file for issue in self.unreadable}
        count = 0
        for index, group in enumerate(self.files):
            if limit is not None and count >= limit:
                return
            try:
                arrays = {
                    lay.name: read_file(path, lay, self.read_mode)
                    for path, lay in zip(group, self.layouts, strict=True)
                }
            except UnreadableFile as bad:
                if bad.file not in seen_bad:
                    self.unreadable.append(FileIssue(bad.file, bad.problem))
                    seen_bad.add(bad.file)
                continue
            kind = _kind(group[0])
            order = None
            if kind == "image":
                order = "bgr" if self.read_mode == "opencv" else "rgb"
            count += 1
            yield Sample(index, group, arrays, kind, order)

    def read(self, index: int) -> Sample:
        """One sample by its position in `files` (raises PtqInputError if unreadable)."""
        group = self.files[index]
        try:
            arrays = {
                lay.name: read_file(p, lay, self.read_mode)
                for p, lay in zip(group, self.layouts, strict=True)
            }
        except UnreadableFile as bad:
            raise PtqInputError(bad.file, bad.problem) from None
        order = None
        if _kind(group[0]) == "image":
            order = "bgr" if self.read_mode == "opencv" else "rgb"
        return Sample(index, group, arrays, _kind(group[0]), order)


class UnreadableFile(Exception):
    """A sample file that cannot be read; recorded, never fatal."""

    def __init__(self, file: Path, problem: str) -> None:
        super().__init__(problem)
        self.file = file
        self.problem = problem


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in NPY_SUFFIXES:
        return "npy"
    return "bin"


def open_samples(
    dirs: Sequence[Path], layouts: Sequence[InputLayout], read_mode: str = "opencv"
) -> SampleSource:
    """Scan the calibration directories (sizes only; nothing is read yet)."""
    if read_mode not in READ_MODES:
        raise ValueError(f"read mode {read_mode!r} is not one of {', '.join(READ_MODES)}")
    if len(dirs) != len(layouts):
        raise PtqInputError(
            "; ".join(str(d) for d in dirs),
            f"{len(dirs)} calibration dir(s) for a model with {len(layouts)} input(s); "
            "give one per input, separated by ';'",
        )
    source = SampleSource(tuple(dirs), tuple(layouts), read_mode)
    listings = [_list_dir(d, source) for d in dirs]
    if len(listings) == 1:
        source.files = [(p,) for p in listings[0]]
    else:
        source.files = _match_by_name(listings, source)
    kept = []
    for group in source.files:
        bad = False
        for path, lay in zip(group, source.layouts, strict=True):
            if _kind(path) == "bin":
                mismatch = check_bin_size(path, lay)
                if mismatch is not None:
                    source.mismatches.append(mismatch)
                    bad = True
        if not bad:
            kept.append(group)
    source.files = kept
    return source


def _list_dir(directory: Path, source: SampleSource) -> list[Path]:
    found = examine(directory)
    if found.kind is FileKind.MISSING:
        raise PtqInputError(directory, "calibration directory does not exist")
    if found.kind is not FileKind.DIRECTORY:
        what = "a file" if found.kind is FileKind.REGULAR else found.kind.value
        raise PtqInputError(directory, f"is {what}, expected a directory of calibration samples")
    try:
        entries = sorted(os.scandir(directory), key=lambda e: natural_key(e.name))
    except OSError as exc:
        raise PtqInputError(directory, f"cannot list: {exc.strerror or exc}") from exc
    files = []
    for entry in entries:
        path = Path(entry.path)
        if entry.name.startswith("."):
            continue
        found = examine(path)
        if found.kind is FileKind.DIRECTORY:
            source.skipped.append(FileIssue(path, "a sub-directory (not searched)"))
            continue
        suffix = path.suffix.lower()
        if suffix not in IMAGE_SUFFIXES | RAW_SUFFIXES | NPY_SUFFIXES:
            source.skipped.append(FileIssue(path, f"not a sample file ({suffix or 'no suffix'})"))
        elif found.kind is not FileKind.REGULAR:
            source.skipped.append(FileIssue(path, found.describe().removeprefix("is ")))
        else:
            files.append(path)
    if not files:
        found = f"; {len(source.skipped)} other file(s) skipped" if source.skipped else ""
        raise PtqInputError(
            directory, f"holds no calibration samples (.bin, .npy or image files){found}"
        )
    return files


def _match_by_name(listings: list[list[Path]], source: SampleSource) -> list[tuple[Path, ...]]:
    """Several inputs: the files of each sample share a name (stem) across the directories."""
    by_stem = [{p.stem: p for p in files} for files in listings]
    common = set(by_stem[0])
    for stems in by_stem[1:]:
        common &= set(stems)
    for stems in by_stem:
        for stem, path in stems.items():
            if stem not in common:
                source.skipped.append(FileIssue(path, "no file of the same name for every input"))
    order = sorted(common, key=natural_key)
    if not order:
        raise PtqInputError(
            "; ".join(str(d) for d in source.dirs),
            "the calibration directories share no file name; files of one sample must share "
            "a name across the inputs' directories",
        )
    return [tuple(stems[s] for stems in by_stem) for s in order]


def check_bin_size(path: Path, layout: InputLayout) -> SizeMismatch | None:
    size = path.stat().st_size
    expected = int(np.prod(layout.shape)) * np.dtype(layout.dtype).itemsize
    if size == expected:
        return None
    return SizeMismatch(path, size, expected, layout.dtype, layout.shape, _fits(size, layout))


def _fits(size: int, layout: InputLayout) -> tuple[str, ...]:
    """dtype/shape combinations that would explain a file of `size` bytes."""
    per_sample = int(np.prod(layout.shape[1:])) if len(layout.shape) > 1 else 1
    fits = []
    for name in CANDIDATE_DTYPES:
        item = np.dtype(name).itemsize
        if size % (per_sample * item):
            continue
        batch = size // (per_sample * item)
        if batch < 1:
            continue
        shape = "x".join(map(str, (batch, *layout.shape[1:])))
        fits.append(f"{name} {shape}")
    return tuple(fits)


def read_file(path: Path, layout: InputLayout, read_mode: str = "opencv") -> np.ndarray:
    kind = _kind(path)
    if kind == "bin":
        return _read_bin(path, layout)
    if kind == "npy":
        return _read_npy(path, layout)
    return read_image(path, layout, read_mode)


def _read_bin(path: Path, layout: InputLayout) -> np.ndarray:
    _check_sample_file(path)
    try:
        flat = np.fromfile(path, dtype=layout.dtype)
    except (OSError, ValueError) as exc:
        raise UnreadableFile(path, f"cannot read: {_reason(exc)}") from exc
    if flat.size != int(np.prod(layout.shape)):
        raise UnreadableFile(path, f"has {path.stat().st_size} bytes, not a {layout.dtype} sample")
    return flat.reshape(layout.shape)


def _read_npy(path: Path, layout: InputLayout) -> np.ndarray:
    _check_sample_file(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except PermissionError as exc:
        raise UnreadableFile(path, f"cannot read: {_reason(exc)}") from exc
    except (OSError, ValueError, EOFError) as exc:
        raise UnreadableFile(path, f"not a readable .npy file ({_reason(exc)})") from exc
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise UnreadableFile(path, "does not hold a numeric array")
    if arr.ndim == len(layout.shape) - 1:
        arr = arr[None]
    if arr.ndim != len(layout.shape):
        shape = "x".join(map(str, arr.shape))
        want = "x".join(map(str, layout.shape))
        raise UnreadableFile(path, f"holds an array of shape {shape}, expected {want}")
    return arr


def read_image(
    path: Path, layout: InputLayout, read_mode: str = "opencv", *, to_color: bool = False
) -> np.ndarray:
    """Decode an image as the pipeline's library would, then fit it to the input's shape.

    `opencv` gives BGR uint8 0..255 and `skimage` RGB float32 0..1. The image is resized
    (OpenCV linear, as the converter's sample transformer does) to the input's H x W and put
    in its layout; colour is converted only between the read order and gray/yuv444 inputs,
    so channel order and value range stay what that library produces. With `to_color` the
    channels are put in the input's own order (rgb or bgr): the correct pipeline, used for
    evaluation images.
    """
    import cv2  # lazy: opencv is slow to import and only images need it

    _check_sample_file(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise UnreadableFile(path, f"cannot read: {_reason(exc)}") from exc
    gray = layout.color == "gray"
    flags = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
    try:
        image = cv2.imdecode(data, flags) if data.size else None
    except cv2.error:  # e.g. more pixels than OPENCV_IO_MAX_IMAGE_PIXELS
        image = None
    if image is None:
        raise UnreadableFile(path, "cannot be decoded as an image (corrupt or unsupported)")
    if layout.color == "featuremap":
        raise UnreadableFile(path, "is an image, but the input is a featuremap")
    height, width = _hw(layout)
    if (height, width) != image.shape[:2]:
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    if gray:
        image = image[:, :, None]
    elif to_color:
        if layout.color == "rgb":
            image = image[:, :, ::-1]
    elif read_mode == "skimage":
        image = image[:, :, ::-1]  # skimage reads RGB
    if layout.color == "yuv444":
        rgb_now = read_mode == "skimage" and not to_color
        code = cv2.COLOR_RGB2YUV if rgb_now else cv2.COLOR_BGR2YUV
        image = cv2.cvtColor(np.ascontiguousarray(image), code)
    image = np.ascontiguousarray(image)
    if read_mode == "skimage":
        image = image.astype(np.float32) / 255.0
    chw = layout.layout == "NCHW"
    out = image.transpose(2, 0, 1) if chw else image
    return np.ascontiguousarray(out[None])


def _check_sample_file(path: Path) -> None:
    """A sample file must be a regular file of a sane size (checked again as it is read)."""
    found = examine(path)
    if found.kind is not FileKind.REGULAR:
        raise UnreadableFile(path, found.describe())
    if found.size > MAX_SAMPLE_BYTES:
        raise UnreadableFile(path, f"is {found.size} bytes, far too large for one sample")


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _hw(layout: InputLayout) -> tuple[int, int]:
    shape = layout.shape
    if len(shape) != 4:
        raise PtqInputError(None, f"input {layout.name} is not 4-D; images cannot feed it")
    if layout.layout == "NHWC":
        return shape[1], shape[2]
    return shape[2], shape[3]


# ---------------------------------------------------------------- evaluation data


@dataclass(frozen=True, slots=True)
class LabelledFile:
    file: Path
    label: int


@dataclass(frozen=True, slots=True)
class EvalSet:
    """Evaluation images with labels: a folder per class, or files plus labels.txt."""

    directory: Path
    items: tuple[LabelledFile, ...]
    classes: tuple[str, ...]  # index -> class name
    skipped: tuple[FileIssue, ...] = ()

    def __len__(self) -> int:
        return len(self.items)


def load_eval_set(directory: str | Path) -> EvalSet:
    directory = Path(directory)
    if not directory.exists():
        raise PtqInputError(directory, "evaluation directory does not exist")
    if not directory.is_dir():
        raise PtqInputError(directory, "is a file, expected a directory of labelled images")
    labels_file = directory / "labels.txt"
    if labels_file.is_file():
        return _eval_from_labels_file(directory, labels_file)
    subdirs = sorted(
        (p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: natural_key(p.name),
    )
    if not subdirs:
        raise PtqInputError(
            directory, "has no class folders and no labels.txt; evaluation needs labels"
        )
    classes = _class_order([p.name for p in subdirs], directory)
    items: list[LabelledFile] = []
    skipped: list[FileIssue] = []
    for sub in subdirs:
        label = classes.index(sub.name)
        for path in sorted(sub.iterdir(), key=lambda p: natural_key(p.name)):
            if path.name.startswith("."):
                continue
            if (
                path.is_file()
                and path.suffix.lower() in IMAGE_SUFFIXES | NPY_SUFFIXES | RAW_SUFFIXES
            ):
                items.append(LabelledFile(path, label))
            else:
                skipped.append(FileIssue(path, "not a sample file"))
    if not items:
        raise PtqInputError(directory, "class folders hold no image files")
    return EvalSet(directory, tuple(items), tuple(classes), tuple(skipped))


def _class_order(folders: list[str], directory: Path) -> list[str]:
    """Class index order: classes.txt beside or above the folders, a leading number, or sorted."""
    for candidate in (directory / "classes.txt", directory.parent / "classes.txt"):
        if candidate.is_file():
            names = [ln.strip() for ln in candidate.read_text(errors="replace").splitlines()]
            names = [n for n in names if n]
            if set(folders) <= set(names):
                return names
    numbered = [re.match(r"^(\d+)", f) for f in folders]
    if all(numbered):
        indices = [int(m.group(1)) for m in numbered if m]
        if len(set(indices)) == len(indices):
            size = max(indices) + 1
            names = [f"class {i}" for i in range(size)]
            for f, i in zip(folders, indices, strict=True):
                names[i] = f
            return names
    return sorted(folders, key=natural_key)


def _eval_from_labels_file(directory: Path, labels_file: Path) -> EvalSet:
    """labels.txt: 'file label' per line, or one label per line for the files in natural order."""
    lines = [ln.strip() for ln in labels_file.read_text(errors="replace").splitlines()]
    entries = [ln for ln in lines if ln and not ln.startswith("#")]
    files = sorted(
        (
            p
            for p in directory.iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | NPY_SUFFIXES | RAW_SUFFIXES
        ),
        key=lambda p: natural_key(p.name),
    )
    pairs: list[tuple[Path, str]] = []
    if entries and all(len(e.split()) >= 2 for e in entries):
        for number, entry in enumerate(entries, 1):
            name, label = entry.rsplit(maxsplit=1)
            path = directory / name
            if not path.exists():
                raise PtqInputError(labels_file, f"names {name}, which does not exist", line=number)
            pairs.append((path, label))
    else:
        if len(entries) != len(files):
            raise PtqInputError(
                labels_file, f"has {len(entries)} labels for {len(files)} files in {directory.name}"
            )
        pairs = list(zip(files, entries, strict=True))
    raw_labels = [label for _, label in pairs]
    if all(re.fullmatch(r"\d+", lab) for lab in raw_labels):
        size = max(int(lab) for lab in raw_labels) + 1
        classes = tuple(f"class {i}" for i in range(size))
        items = tuple(LabelledFile(p, int(lab)) for p, lab in pairs)
    else:
        names = _class_order(sorted(set(raw_labels)), directory)
        classes = tuple(names)
        items = tuple(LabelledFile(p, names.index(lab)) for p, lab in pairs)
    if not items:
        raise PtqInputError(labels_file, "lists no labelled file")
    return EvalSet(directory, items, classes)
