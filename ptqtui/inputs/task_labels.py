"""Labels for the task metrics in `--eval-dir`: COCO-style boxes, mask PNGs, text lines.

Layouts (docs/tasks.md "With labels"), recognised by what the directory holds:

- ``annotations.json`` beside the images: COCO-style boxes (``images`` with ``id`` and
  ``file_name``, ``annotations`` with ``image_id``, ``bbox`` [x, y, w, h] in image pixels and
  ``category_id``; ``categories`` give the class order: sorted by id, index 0 first);
- ``masks/NAME.png`` for each image ``NAME.*``: a class index per pixel (0 background; a
  0/255 PNG is a binary mask);
- ``labels.txt`` whose lines are ``NAME<TAB>text``: the string each image reads.

Classification folders (and ``labels.txt`` of ``file label`` lines) stay with
`ptqtui.inputs.data.load_eval_set`. A bad label file is one `PtqInputError` naming the file
(and the line) and the problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np

from ptqtui.errors import PtqInputError
from ptqtui.inputs.data import IMAGE_SUFFIXES, natural_key

ANNOTATIONS = "annotations.json"
MASKS = "masks"
TEXT_LABELS = "labels.txt"


class LabelKind(Enum):
    """What the labels of an evaluation directory are."""

    BOXES = "boxes"  # COCO-style annotations.json
    MASKS = "masks"  # masks/NAME.png
    TEXT = "text"  # labels.txt, NAME<TAB>text


@dataclass(frozen=True, slots=True)
class BoxTruth:
    """One image's labelled boxes, xyxy in the image's own pixels."""

    xyxy: np.ndarray  # [K, 4] float32
    classes: np.ndarray  # [K] int, index into `TaskLabels.classes`
    width: int  # the image's size, to scale the boxes to the model input
    height: int


@dataclass(frozen=True, slots=True)
class TaskLabel:
    """One labelled image: its file and its truth (boxes, a mask file, or a string)."""

    file: Path
    truth: BoxTruth | Path | str


@dataclass(frozen=True, slots=True)
class TaskLabels:
    """An evaluation directory's images with their task labels."""

    directory: Path
    kind: LabelKind
    items: tuple[TaskLabel, ...]
    classes: tuple[str, ...] = ()  # box categories in index order

    def __len__(self) -> int:
        return len(self.items)


def label_kind(directory: Path) -> LabelKind | None:
    """The task-label layout of `directory`, or None (classification, or no labels)."""
    if (directory / ANNOTATIONS).is_file():
        return LabelKind.BOXES
    if (directory / MASKS).is_dir():
        return LabelKind.MASKS
    text = directory / TEXT_LABELS
    if text.is_file():
        try:
            lines = text.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return None  # the classification loader reports the unreadable file
        if any("\t" in ln for ln in lines if ln.strip() and not ln.startswith("#")):
            return LabelKind.TEXT
    return None


def load_task_labels(directory: str | Path) -> TaskLabels | None:
    """The task labels of an evaluation directory; None when it holds none of the layouts."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    kind = label_kind(directory)
    if kind is LabelKind.BOXES:
        return _boxes(directory, directory / ANNOTATIONS)
    if kind is LabelKind.MASKS:
        return _masks(directory)
    if kind is LabelKind.TEXT:
        return _texts(directory, directory / TEXT_LABELS)
    return None


def _images(directory: Path) -> dict[str, Path]:
    files = sorted(
        (p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: natural_key(p.name),
    )
    return {p.name: p for p in files}


# ---------------------------------------------------------------------- COCO boxes
def _boxes(directory: Path, path: Path) -> TaskLabels:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PtqInputError(path, f"cannot be read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise PtqInputError(path, f"is not JSON: {exc.msg}", line=exc.lineno) from exc
    if not isinstance(doc, dict):
        raise PtqInputError(path, "is not a COCO object (images, annotations, categories)")
    images, anns, cats = doc.get("images"), doc.get("annotations"), doc.get("categories", [])
    if not isinstance(images, list) or not isinstance(anns, list) or not isinstance(cats, list):
        raise PtqInputError(path, "needs lists 'images' and 'annotations' (COCO style)")
    try:
        cat_ids = sorted(int(c["id"]) for c in cats)
        names = {int(c["id"]): str(c.get("name", c["id"])) for c in cats}
    except (KeyError, TypeError, ValueError) as exc:
        raise PtqInputError(path, f"a category without an integer 'id' ({exc})") from exc
    index = {cid: i for i, cid in enumerate(cat_ids)}
    found = _images(directory)
    by_id: dict[int, tuple[Path, int, int]] = {}
    for k, im in enumerate(images):
        try:
            iid, name = int(im["id"]), str(im["file_name"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PtqInputError(path, f"images[{k}] needs 'id' and 'file_name'") from exc
        file = found.get(Path(name).name)
        if file is None:
            raise PtqInputError(path, f"images[{k}] names {name}, which is not in {directory}")
        w, h = im.get("width"), im.get("height")
        if not isinstance(w, int) or not isinstance(h, int) or w <= 0 or h <= 0:
            w, h = _image_size(file, path)
        by_id[iid] = (file, w, h)
    boxes: dict[int, list[list[float]]] = {iid: [] for iid in by_id}
    classes: dict[int, list[int]] = {iid: [] for iid in by_id}
    for k, a in enumerate(anns):
        try:
            iid, bbox = int(a["image_id"]), [float(v) for v in a["bbox"]]
            cid = int(a.get("category_id", cat_ids[0] if cat_ids else 0))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise PtqInputError(
                path, f"annotations[{k}] needs 'image_id', 'bbox' [x, y, w, h], 'category_id'"
            ) from exc
        if iid not in by_id:
            raise PtqInputError(path, f"annotations[{k}] names image_id {iid}, not in 'images'")
        if len(bbox) != 4 or bbox[2] < 0 or bbox[3] < 0:
            raise PtqInputError(path, f"annotations[{k}] bbox {bbox} is not [x, y, w, h]")
        if cat_ids and cid not in index:
            raise PtqInputError(path, f"annotations[{k}] category_id {cid} is not a category")
        x, y, w, h = bbox
        boxes[iid].append([x, y, x + w, y + h])
        classes[iid].append(index.get(cid, cid))
    items = []
    for iid, (file, w, h) in by_id.items():
        xyxy = np.asarray(boxes[iid], np.float32).reshape(-1, 4)
        items.append(TaskLabel(file, BoxTruth(xyxy, np.asarray(classes[iid], np.int64), w, h)))
    if not items:
        raise PtqInputError(path, "lists no image")
    items.sort(key=lambda t: natural_key(t.file.name))
    return TaskLabels(directory, LabelKind.BOXES, tuple(items), tuple(names[c] for c in cat_ids))


def _image_size(file: Path, labels: Path) -> tuple[int, int]:
    import cv2

    image = cv2.imdecode(np.fromfile(file, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise PtqInputError(labels, f"gives no width/height for {file.name}, which cannot be read")
    return int(image.shape[1]), int(image.shape[0])


# ---------------------------------------------------------------------- masks
def _masks(directory: Path) -> TaskLabels:
    masks = directory / MASKS
    pngs = {p.stem: p for p in masks.iterdir() if p.is_file() and p.suffix.lower() == ".png"}
    items = []
    for name, file in _images(directory).items():
        mask = pngs.get(Path(name).stem)
        if mask is None:
            raise PtqInputError(masks, f"has no {Path(name).stem}.png for the image {name}")
        items.append(TaskLabel(file, mask))
    if not items:
        raise PtqInputError(directory, "has masks/ but no images beside it")
    return TaskLabels(directory, LabelKind.MASKS, tuple(items))


def read_mask(path: Path, hw: tuple[int, int]) -> np.ndarray:
    """A mask PNG as class indices at `hw` (nearest neighbour); a 0/255 mask reads as 0/1."""
    import cv2

    image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise PtqInputError(path, "cannot be decoded as a PNG mask")
    if image.ndim == 3:
        if not (image[..., :1] == image[..., :3]).all():
            raise PtqInputError(path, "is a colour PNG; a mask holds one class index per pixel")
        image = image[..., 0]
    values = np.unique(image)
    if set(values.tolist()) <= {0, 255}:
        image = (image > 0).astype(np.uint8)
    h, w = hw
    if image.shape != (h, w) and h and w:
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_NEAREST)
    return image.astype(np.int32)


# ---------------------------------------------------------------------- text lines
def _texts(directory: Path, path: Path) -> TaskLabels:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise PtqInputError(path, "is not UTF-8 text") from exc
    except OSError as exc:
        raise PtqInputError(path, f"cannot be read: {exc}") from exc
    found = _images(directory)
    items = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        if "\t" not in line:
            raise PtqInputError(path, "has no TAB between the image name and its text", line=number)
        name, text = line.split("\t", 1)
        name = name.strip()
        file = found.get(name)
        if file is None:
            raise PtqInputError(
                path, f"names {name}, which is not an image in {directory}", line=number
            )
        if name in seen:
            raise PtqInputError(path, f"names {name} twice", line=number)
        seen.add(name)
        items.append(TaskLabel(file, text.rstrip("\r\n")))
    if not items:
        raise PtqInputError(path, "lists no image")
    return TaskLabels(directory, LabelKind.TEXT, tuple(items))
