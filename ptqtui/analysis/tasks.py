"""Task adapters: the loss in the user's own terms (top-1, boxes, masks, strings).

A `Task` decodes a model's outputs into predictions, one per batch item, and scores how well
the quantized predictions agree with the float ones (1.0 = the same). Without labels that
agreement is the task metric; with labels `score` compares a prediction with the truth.

Adapters here: classification (arg-max), YOLO-family detection heads as exported for NPUs
(v5 rows with objectness, v8/v11 transposed rows, or per-level maps with or without DFL),
dense maps (DBNet-style probability maps, segmentation logits), CTC sequences (OCR
recognisers), and raw (no decoding: output cosine only). `infer_task` picks one from the
output shapes; `--task NAME` overrides it; `--task-module FILE.py` loads a user's own.

Everything is numpy; no heavy dependency. Predictions are plain values (arrays, tuples,
strings) so a user adapter can be written in a few lines.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ptqtui.errors import PtqInputError

Outputs = Mapping[str, np.ndarray]  # model output name -> array (batch first where it has one)

# Decoding cut-offs, the public defaults of the heads they decode (not tuned here):
DET_SCORE = 0.25  # YOLO predict default confidence
DET_NMS_IOU = 0.45  # YOLO NMS IoU (v5 default; v8 uses 0.7 for predict, 0.45 is stricter)
DET_MATCH_IOU = 0.5  # a quantized box matches a float box at IoU >= 0.5 (mAP@0.5 convention)
DET_MAX_BOXES = 300  # YOLO's max_det default
DBNET_THRESHOLD = 0.3  # DBNet's binarisation threshold of the probability map
CTC_BLANK = 0  # the blank index of PaddleOCR, ddddocr and most CTC heads
CTC_MAX_STEPS = 512  # time steps of a CTC head: a text line's columns / 4 or / 8 (40 to ~200)
# Share of time steps a CTC head's logits give to the blank on a real text line: ddddocr's
# recogniser 0.56-0.97 on the corpus crops (32 steps, 1-13 characters); a line of one character
# per step is < 0.2 only when every step is a character, which greedy CTC cannot repeat.
CTC_MIN_BLANK_SHARE = 0.2
Z_95 = 1.959963984540054  # two-sided 95 % normal quantile


class Task(Protocol):
    """Decode outputs and compare predictions; one prediction per batch item."""

    name: str
    metric: str  # what `agreement` measures, short, for people: "box F1@0.5 agreement"
    binary: bool  # agreement is 0 or 1 per sample (an interval on a proportion)

    def decode(self, outputs: Outputs) -> list[Any]: ...

    def agreement(self, reference: Any, quantized: Any) -> float: ...


# --------------------------------------------------------------------------- intervals
@dataclass(frozen=True, slots=True)
class Interval:
    """A mean over samples with its 95 % interval."""

    value: float
    low: float
    high: float
    samples: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def wilson_interval(successes: float, n: int, z: float = Z_95) -> Interval:
    """Wilson score interval of a proportion (good at 0 and 1, where the normal one fails)."""
    if n <= 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), n)


def mean_interval(values: Sequence[float], *, binary: bool = False) -> Interval:
    """Mean of per-sample scores in 0..1 with its 95 % interval: Wilson for 0/1 scores, the
    normal interval of the mean (clipped to 0..1) otherwise. NaNs are left out."""
    v = np.asarray([x for x in values if not math.isnan(x)], np.float64)
    n = int(v.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    if binary:
        return wilson_interval(float(v.sum()), n)
    mean = float(v.mean())
    if n < 2:
        return Interval(mean, 0.0, 1.0, n)
    half = Z_95 * float(v.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, max(0.0, mean - half), min(1.0, mean + half), n)


# --------------------------------------------------------------------------- adapters
@dataclass(frozen=True)
class Classification:
    """Arg-max of the first output ([N, C] or [N, C, 1, 1])."""

    output: str | None = None
    name: str = "classification"
    metric: str = "top-1 agreement"
    binary: bool = True

    def decode(self, outputs: Outputs) -> list[int]:
        a = np.asarray(_pick(outputs, self.output))
        a = a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(1, -1)
        return [int(i) for i in np.argmax(a, axis=1)]

    def agreement(self, reference: int, quantized: int) -> float:
        return 1.0 if reference == quantized else 0.0


@dataclass(frozen=True, slots=True)
class Boxes:
    """Detections of one image: xyxy boxes in input pixels, scores, class indices."""

    xyxy: np.ndarray  # [K, 4] float32
    scores: np.ndarray  # [K]
    classes: np.ndarray  # [K] int

    def __len__(self) -> int:
        return int(self.scores.shape[0])


@dataclass(frozen=True)
class YoloDetection:
    """YOLO-family heads: concatenated rows (v5 with objectness, v8/v11 transposed) or per-level
    maps (box distribution with DFL, or 4 box values, beside class scores)."""

    input_hw: tuple[int, int]
    score_threshold: float = DET_SCORE
    nms_iou: float = DET_NMS_IOU
    match_iou: float = DET_MATCH_IOU
    name: str = "detection"
    metric: str = "box F1@0.5 agreement"
    binary: bool = False

    def decode(self, outputs: Outputs) -> list[Boxes]:
        arrays = [np.asarray(a, np.float32) for a in outputs.values()]
        if len(arrays) == 1 and arrays[0].ndim == 3:
            rows = _yolo_rows(arrays[0], self.input_hw)
        else:
            rows = _yolo_levels(arrays, self.input_hw)
        return [self._boxes(*r) for r in rows]

    def _boxes(self, cxcywh: np.ndarray, scores: np.ndarray) -> Boxes:
        cls = np.argmax(scores, axis=1) if scores.size else np.zeros(0, np.int64)
        best = scores[np.arange(len(cls)), cls] if scores.size else np.zeros(0, np.float32)
        keep = best >= self.score_threshold
        xyxy = _xyxy(cxcywh[keep])
        kept = nms(xyxy, best[keep], cls[keep], self.nms_iou)[:DET_MAX_BOXES]
        return Boxes(xyxy[kept], best[keep][kept], cls[keep][kept])

    def agreement(self, reference: Boxes, quantized: Boxes) -> float:
        return box_f1(reference, quantized, self.match_iou)


@dataclass(frozen=True)
class DenseMap:
    """Dense outputs: one channel = a probability map binarised at `threshold` (DBNet); several
    channels = class logits, arg-max per pixel (segmentation)."""

    output: str | None = None
    threshold: float = DBNET_THRESHOLD
    name: str = "dense"
    metric: str = "map IoU agreement"
    binary: bool = False

    def decode(self, outputs: Outputs) -> list[np.ndarray]:
        a = np.asarray(_pick(outputs, self.output), np.float32)
        if a.ndim == 3:
            a = a[:, None]
        if a.shape[1] == 1:
            prob = a[:, 0]
            if prob.min() < 0.0 or prob.max() > 1.0:  # logits: the map before its sigmoid
                prob = 1.0 / (1.0 + np.exp(-prob))
            return [m > self.threshold for m in prob]
        return [m.astype(np.int32) for m in np.argmax(a, axis=1)]

    def agreement(self, reference: np.ndarray, quantized: np.ndarray) -> float:
        if reference.dtype == bool:
            return mask_iou(reference, quantized)
        return mean_iou(reference, quantized)


@dataclass(frozen=True)
class CtcSequence:
    """CTC recogniser outputs ([N, T, C], or [T, N, C] when `time_first`), greedy-decoded."""

    charset: tuple[str, ...] = ()  # index -> character (blank included); indices without one
    blank: int = CTC_BLANK
    time_first: bool = False
    output: str | None = None
    name: str = "ocr"
    metric: str = "string agreement"
    binary: bool = True

    def decode(self, outputs: Outputs) -> list[str]:
        a = np.asarray(_pick(outputs, self.output))
        if a.ndim == 2:
            a = a[None]
        if self.time_first:
            a = a.transpose(1, 0, 2)
        return [self._text(ctc_greedy(seq, self.blank)) for seq in a]

    def _text(self, indices: Sequence[int]) -> str:
        if self.charset:
            return "".join(self.charset[i] if i < len(self.charset) else "?" for i in indices)
        return " ".join(str(i) for i in indices)

    def agreement(self, reference: str, quantized: str) -> float:
        return 1.0 if reference == quantized else 0.0

    def char_error_rate(self, reference: str, quantized: str) -> float:
        ref = reference.split(" ") if not self.charset else list(reference)
        hyp = quantized.split(" ") if not self.charset else list(quantized)
        ref = [c for c in ref if c]
        hyp = [c for c in hyp if c]
        if not ref:
            return 0.0 if not hyp else 1.0
        return edit_distance(ref, hyp) / len(ref)


@dataclass(frozen=True)
class Raw:
    """No decoding: the report shows output similarity only, and says so."""

    name: str = "raw"
    metric: str = "output cosine only (no task decoding)"
    binary: bool = False

    def decode(self, outputs: Outputs) -> list[None]:
        first = np.asarray(next(iter(outputs.values())))
        return [None] * (first.shape[0] if first.ndim else 1)

    def agreement(self, reference: None, quantized: None) -> float:
        return math.nan


TASK_NAMES = ("classification", "detection", "dense", "ocr", "raw")


# --------------------------------------------------------------------------- choosing one
def infer_task(
    shapes: Mapping[str, tuple[int, ...]],
    input_hw: tuple[int, int],
    *,
    sample: Outputs | None = None,
    charset: tuple[str, ...] = (),
) -> Task:
    """The adapter the model's outputs look like (`sample`: one float output, to tell CTC
    probabilities from YOLO rows when the shapes alone cannot)."""
    dims = {k: tuple(int(d) for d in v) for k, v in shapes.items()}
    first_name, first = next(iter(dims.items()))
    if len(dims) == 1 and _is_class_scores(first):
        return Classification(first_name)
    if len(dims) == 1 and len(first) == 3:
        # one sample's outputs: [1, T, C] batch first, or [T, 1, C] time first (the layout of
        # CTC heads exported from PyTorch's nn.CTCLoss convention, ddddocr's recogniser)
        time_first = _time_first(first)
        a, b = (first[0], first[2]) if time_first else first[1:]
        anchors = _anchor_counts(input_hw)
        if not charset and not time_first and (a in anchors or b in anchors):
            return YoloDetection(input_hw)
        if charset or _looks_ctc(sample, first_name, a, b, time_first=time_first):
            return CtcSequence(charset=charset, output=first_name, time_first=time_first)
    maps = [d for d in dims.values() if len(d) == 4 and d[2] > 1 and d[3] > 1]
    if len(maps) >= 2 and len({d[2:] for d in maps}) >= 2 and len(maps) == len(dims):
        return YoloDetection(input_hw)
    if len(dims) == 1 and len(first) == 4 and first[2] > 1 and first[3] > 1:
        return DenseMap(first_name)
    return Raw()


def task_named(name: str, shapes: Mapping[str, tuple[int, ...]], input_hw: tuple[int, int]) -> Task:
    """`--task NAME`: the named adapter, configured for these outputs."""
    first_name = next(iter(shapes))
    if name == "classification":
        return Classification(first_name)
    if name == "detection":
        return YoloDetection(input_hw)
    if name == "dense":
        return DenseMap(first_name)
    if name == "ocr":
        return CtcSequence(output=first_name, time_first=_time_first(shapes[first_name]))
    if name == "raw":
        return Raw()
    raise ValueError(f"task {name!r} is not one of {', '.join(TASK_NAMES)}")


@dataclass(frozen=True)
class UserTask:
    """A user's adapter from `--task-module FILE.py`: `decode(outputs) -> predictions` and
    `agreement(float_preds, quant_preds) -> float` (one prediction per batch item)."""

    decode_fn: Callable[[Outputs], Sequence[Any]]
    agreement_fn: Callable[[Any, Any], float]
    name: str = "user"
    metric: str = "agreement (task module)"
    binary: bool = False

    def decode(self, outputs: Outputs) -> list[Any]:
        return list(self.decode_fn(outputs))

    def agreement(self, reference: Any, quantized: Any) -> float:
        return float(self.agreement_fn(reference, quantized))


def load_task_module(path: Path) -> UserTask:
    """Import a user's task module; one clear error when it lacks what it needs."""
    if not path.is_file():
        raise PtqInputError(path, "no such file")
    spec = importlib.util.spec_from_file_location(f"ptqtui_user_task_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise PtqInputError(path, "not a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: any failure is their input's problem
        raise PtqInputError(path, f"importing it failed: {exc}") from exc
    decode = getattr(module, "decode", None)
    agreement = getattr(module, "agreement", None)
    if not callable(decode) or not callable(agreement):
        raise PtqInputError(path, "defines no decode(outputs) and agreement(a, b) functions")
    return UserTask(
        decode,
        agreement,
        name=str(getattr(module, "NAME", path.stem)),
        metric=str(getattr(module, "METRIC", UserTask.metric)),
        binary=bool(getattr(module, "BINARY", False)),
    )


EMPTY_SHARE = 0.25  # empty float predictions from which the agreement's meaning is said


def is_empty(prediction: Any) -> bool:
    """A prediction that finds nothing: no boxes, an empty map, an empty string."""
    if isinstance(prediction, Boxes | str):
        return len(prediction) == 0
    if isinstance(prediction, np.ndarray) and prediction.dtype == bool:
        return not prediction.any()
    return False


def empty_note(task: Task, predictions: Sequence[Any]) -> str | None:
    """When the float model finds nothing on a good share of the samples (EMPTY_SHARE), the
    agreement there is "nothing either way": said, with the count (the corpus' OCR crops read
    "" on 57 of 100 once; ppocrv4_det's maps are empty on 41 of its 100 photos)."""
    n = len(predictions)
    empty = sum(1 for p in predictions if is_empty(p))
    if n == 0 or empty < EMPTY_SHARE * n:
        return None
    return (
        f"{task.metric}: the float model finds nothing on {empty} of {n} calibration samples; "
        "there the agreement only says the int8 model finds nothing too (calibration data "
        "with the objects or text the model is for would measure more)"
    )


# --------------------------------------------------------------------------- labels
LABEL_METRICS = {  # the real metric of each adapter against labels (--eval-dir)
    "detection": "box mAP@0.5 vs labels",
    "dense": "mask IoU vs labels",
    "ocr": "exact string vs labels",
}


def label_metric(task: Task) -> str | None:
    """What `score_label` measures for this adapter; None: it has no labelled metric."""
    if isinstance(task, CtcSequence) and not task.charset:
        return None  # indices only: a label's characters cannot be compared
    if isinstance(task, YoloDetection | DenseMap | CtcSequence):
        return LABEL_METRICS[task.name]
    return None


def score_label(task: Task, truth: Any, prediction: Any) -> float:
    """One prediction against its label, 0..1: the image's box AP@0.5 (`Boxes` truth), mask
    IoU (binary map) or mean IoU (class masks), exact string (OCR)."""
    if isinstance(task, YoloDetection):
        return mean_ap([truth], [prediction], task.match_iou)
    if isinstance(task, DenseMap):
        if prediction.dtype == bool:
            return mask_iou(np.asarray(truth) > 0, prediction)
        return mean_iou(np.asarray(truth), prediction)
    if isinstance(task, CtcSequence):
        return 1.0 if str(truth) == prediction else 0.0
    raise ValueError(f"the {task.name} adapter has no labelled metric")


def score_labels(task: Task, truths: Sequence[Any], predictions: Sequence[Any]) -> float:
    """The labelled metric over a set: box mAP@0.5 over every image at once (detection), the
    mean of `score_label` over the images otherwise."""
    if isinstance(task, YoloDetection):
        return mean_ap(truths, predictions, task.match_iou)
    pairs = zip(truths, predictions, strict=True)
    return float(np.mean([score_label(task, t, p) for t, p in pairs]))


def mean_ap(
    truths: Sequence[Boxes], predictions: Sequence[Boxes], match_iou: float = DET_MATCH_IOU
) -> float:
    """Box mAP at IoU `match_iou` over a set of images, COCO/VOC-2010 style: per class, every
    prediction ranked by score over all images, matched greedily to an unmatched labelled box
    of its class at IoU >= `match_iou`, AP the area under the all-point interpolated
    precision-recall curve (precision made monotone, no 11-point sampling); the mean over the
    classes that have labelled boxes. No labelled box at all: 1.0 when nothing is predicted."""
    classes = sorted({int(c) for t in truths for c in t.classes})
    if not classes:
        return 1.0 if all(len(p) == 0 for p in predictions) else 0.0
    return float(np.mean([_class_ap(truths, predictions, c, match_iou) for c in classes]))


def _class_ap(truths: Sequence[Boxes], predictions: Sequence[Boxes], cls: int, iou: float) -> float:
    """All-point interpolated AP of one class."""
    n_truth = sum(int(np.sum(t.classes == cls)) for t in truths)
    ranked = [
        (float(p.scores[k]), i, k)
        for i, p in enumerate(predictions)
        for k in range(len(p))
        if int(p.classes[k]) == cls
    ]
    ranked.sort(key=lambda r: -r[0])  # stable: ties keep image order
    taken = [np.zeros(len(t), bool) for t in truths]
    hits = np.zeros(len(ranked))
    for j, (_, i, k) in enumerate(ranked):
        t = truths[i]
        ious = box_iou(predictions[i].xyxy[k : k + 1], t.xyxy)[0] if len(t) else np.zeros(0)
        ious = np.where((t.classes == cls) & ~taken[i], ious, -1.0)
        if ious.size and ious.max() >= iou:
            taken[i][int(np.argmax(ious))] = True
            hits[j] = 1.0
    if not ranked:
        return 0.0
    tp = np.cumsum(hits)
    recall = np.concatenate([[0.0], tp / n_truth, [1.0]])
    precision = np.concatenate([[1.0], tp / np.arange(1, len(ranked) + 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the monotone envelope
    steps = np.where(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


# --------------------------------------------------------------------------- geometry
def nms(xyxy: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by per-class non-maximum suppression, best score first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    suppressed = np.zeros(len(order), bool)
    for rank, i in enumerate(order):
        if suppressed[rank]:
            continue
        keep.append(int(i))
        rest = order[rank + 1 :]
        same = classes[rest] == classes[i]
        over = box_iou(xyxy[i : i + 1], xyxy[rest])[0] > iou
        suppressed[rank + 1 :] |= same & over
    return np.asarray(keep, np.int64)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes: [len(a), len(b)]."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def box_f1(reference: Boxes, quantized: Boxes, match_iou: float = DET_MATCH_IOU) -> float:
    """F1 of the quantized boxes against the float ones: a match is the same class at IoU >=
    `match_iou`, greedy by the quantized score. No boxes on either side: 1.0."""
    if len(reference) == 0 and len(quantized) == 0:
        return 1.0
    if len(reference) == 0 or len(quantized) == 0:
        return 0.0
    ious = box_iou(quantized.xyxy, reference.xyxy)
    ious[quantized.classes[:, None] != reference.classes[None, :]] = 0.0
    taken = np.zeros(len(reference), bool)
    hits = 0
    for q in np.argsort(-quantized.scores, kind="stable"):
        row = np.where(taken, 0.0, ious[q])
        j = int(np.argmax(row))
        if row[j] >= match_iou:
            taken[j] = True
            hits += 1
    return 2.0 * hits / (len(reference) + len(quantized))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two binary masks; both empty: 1.0."""
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)


def mean_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Mean IoU over the classes present in either label map."""
    classes = np.union1d(np.unique(a), np.unique(b))
    return float(np.mean([mask_iou(a == c, b == c) for c in classes]))


def ctc_greedy(scores: np.ndarray, blank: int = CTC_BLANK) -> list[int]:
    """Best path: arg-max per time step, repeats collapsed, blanks dropped."""
    best = np.argmax(np.asarray(scores), axis=-1)
    out: list[int] = []
    prev = -1
    for i in best.tolist():
        if i != prev and i != blank:
            out.append(int(i))
        prev = i
    return out


def edit_distance(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Levenshtein distance."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


# --------------------------------------------------------------------------- helpers
def _pick(outputs: Outputs, name: str | None) -> np.ndarray:
    if name is not None and name in outputs:
        return outputs[name]
    return next(iter(outputs.values()))


def _is_class_scores(shape: tuple[int, ...]) -> bool:
    """[N, C] or [N, C, 1, 1]; not [T, 1, C] (one sample's time-first sequence, T > 1)."""
    if _time_first(shape):
        return False
    return len(shape) >= 2 and int(np.prod(shape[1:])) == max(shape[1:]) > 1


def _time_first(shape: tuple[int, ...]) -> bool:
    """One sample's [T, 1, C] output: a sequence laid out time first (batch of 1 in the middle)."""
    return len(shape) == 3 and shape[0] > 1 and shape[1] == 1 and shape[2] > 1


def _anchor_counts(input_hw: tuple[int, int]) -> set[int]:
    """Rows a YOLO head has for this input: one per cell of strides 8, 16, 32 (v8/v11), three
    per cell (v5), and with a stride-64 level (P6 models)."""
    h, w = input_hw
    p5 = sum((h // s) * (w // s) for s in (8, 16, 32))
    p6 = p5 + (h // 64) * (w // 64)
    return {p5, 3 * p5, p6, 3 * p6} - {0}


def _looks_ctc(
    sample: Outputs | None, name: str, a: int, b: int, *, time_first: bool = False
) -> bool:
    """[N, T, C] (or [T, N, C]) rows of a CTC head: on a real sample either probability
    distributions (softmax over classes) or logits whose best class is the blank on a good
    share of the time steps (CTC emits blank between and around characters); from the shapes
    alone, batch first with fewer time steps than classes (most OCR heads)."""
    if not (2 <= a <= CTC_MAX_STEPS and b >= 2):
        return False
    if sample is None or name not in sample:
        return not time_first and a < b
    x = np.asarray(sample[name], np.float64)
    if x.ndim != 3:
        return False
    if time_first:
        x = x.transpose(1, 0, 2)
    sums = x.sum(axis=-1)
    if np.all(x >= -1e-6) and np.allclose(sums, 1.0, atol=1e-3):
        return True
    blank_share = float(np.mean(np.argmax(x, axis=-1) == CTC_BLANK))
    return blank_share >= CTC_MIN_BLANK_SHARE


def _xyxy(cxcywh: np.ndarray) -> np.ndarray:
    c = np.asarray(cxcywh, np.float32).reshape(-1, 4)
    half = c[:, 2:] / 2
    return np.concatenate([c[:, :2] - half, c[:, :2] + half], axis=1)


def _sigmoid_if_logits(x: np.ndarray) -> np.ndarray:
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        return 1.0 / (1.0 + np.exp(-x))
    return x


def _yolo_rows(
    a: np.ndarray, input_hw: tuple[int, int] = (0, 0)
) -> list[tuple[np.ndarray, np.ndarray]]:
    """[N, 4+nc, A] (v8/v11, transposed) or [N, A, 5+nc] (v5, objectness at column 4; YOLOX
    exported without its grid decoding is decoded here: see `_grid_decode`)."""
    out = []
    for item in a:
        if item.shape[0] < item.shape[1]:  # v8: channels first, anchors last
            rows = item.T
            out.append((rows[:, :4], _sigmoid_if_logits(rows[:, 4:])))
        else:  # v5: one row per anchor
            obj = _sigmoid_if_logits(item[:, 4:5])
            box = _grid_decode(item[:, :4], input_hw)
            out.append((box, _sigmoid_if_logits(item[:, 5:]) * obj))
    return out


# Boxes in input pixels reach beyond this somewhere; raw YOLOX offsets (grid cells, log sizes)
# stay within a few units. Below it, with one row per cell of strides 8/16/32, the rows are
# YOLOX's undecoded head (ddddocr's detector, YOLOX exports with decode_in_inference=False).
RAW_OFFSET_MAX = 16.0


def _grid_decode(box: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """YOLOX's decoding, when the rows are undecoded: cx, cy = (offset + cell) * stride, w, h =
    exp(value) * stride, over the cells of strides 8, 16, 32 in order."""
    h, w = input_hw
    grids = [(h // s, w // s, s) for s in (8, 16, 32)]
    if not h or sum(gh * gw for gh, gw, _ in grids) != len(box):
        return box
    if not box.size or float(np.abs(box).max()) >= RAW_OFFSET_MAX:
        return box
    cells, strides = [], []
    for gh, gw, s in grids:
        gy, gx = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
        cells.append(np.stack([gx, gy], axis=-1).reshape(-1, 2))
        strides.append(np.full((gh * gw, 1), s))
    cell = np.concatenate(cells).astype(np.float32)
    stride = np.concatenate(strides).astype(np.float32)
    xy = (box[:, :2] + cell) * stride
    wh = np.exp(np.clip(box[:, 2:4], -20, 20)) * stride
    return np.concatenate([xy, wh], axis=1)


def _yolo_levels(
    arrays: list[np.ndarray], input_hw: tuple[int, int]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per-level maps (NCHW or NHWC): at each spatial size a box map (4 or 4*reg_max
    channels, DFL) and a class-score map. The stride is the input size over the map size."""
    nhwc = _maps_nhwc(arrays, input_hw)
    by_size: dict[tuple[int, int], list[np.ndarray]] = {}
    for a in nhwc:
        by_size.setdefault((a.shape[1], a.shape[2]), []).append(a)
    batch = arrays[0].shape[0]
    boxes: list[list[np.ndarray]] = [[] for _ in range(batch)]
    scores: list[list[np.ndarray]] = [[] for _ in range(batch)]
    for (h, w), maps in sorted(by_size.items(), reverse=True):
        box, cls = _split_level(maps)
        stride = input_hw[0] / h
        gy, gx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        centres = np.stack([gx, gy], axis=-1).reshape(-1, 2).astype(np.float32) + 0.5
        for n in range(batch):
            dist = box[n].reshape(h * w, -1)
            if dist.shape[1] > 4:  # DFL: a distribution over reg_max bins per side
                reg = dist.shape[1] // 4
                p = dist.reshape(-1, 4, reg)
                p = np.exp(p - p.max(axis=2, keepdims=True))
                p /= p.sum(axis=2, keepdims=True)
                dist = (p * np.arange(reg, dtype=np.float32)).sum(axis=2)
            lt, rb = dist[:, :2], dist[:, 2:]
            xyxy = np.concatenate([centres - lt, centres + rb], axis=1) * stride
            wh = xyxy[:, 2:] - xyxy[:, :2]
            boxes[n].append(np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) / 2, wh], axis=1))
            scores[n].append(_sigmoid_if_logits(cls[n].reshape(h * w, -1)))
    return [(np.concatenate(b), np.concatenate(s)) for b, s in zip(boxes, scores, strict=True)]


def _maps_nhwc(arrays: list[np.ndarray], input_hw: tuple[int, int]) -> list[np.ndarray]:
    """The maps as NHWC. A layout fits a map when its spatial dims divide the input by one
    integer stride; the layout that fits every map wins, NCHW (ONNX's) when both do."""
    if any(a.ndim != 4 for a in arrays):
        raise ValueError("detection maps must be 4-D")

    def fits(h: int, w: int) -> bool:
        return (
            h > 0
            and w > 0
            and input_hw[0] % h == 0
            and input_hw[1] % w == 0
            and input_hw[0] // h == input_hw[1] // w
        )

    if all(fits(a.shape[2], a.shape[3]) for a in arrays):
        return [a.transpose(0, 2, 3, 1) for a in arrays]
    if all(fits(a.shape[1], a.shape[2]) for a in arrays):
        return list(arrays)
    raise ValueError("detection maps whose size is not the input size over a stride")


def _split_level(maps: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The box map (4 or a multiple of 4 channels, the widest such) and the class map."""
    if len(maps) == 1:  # one map: 4 box values then class scores (or 4*reg_max then classes)
        m = maps[0]
        return m[..., :4], m[..., 4:]
    # reg_max 16 (64 channels) is every public v8/v11 export; 4 is a head without DFL
    box = next((m for m in maps if m.shape[-1] in (64, 4)), None)
    if box is None:
        box = next((m for m in maps if m.shape[-1] % 4 == 0), None)
    if box is None:
        raise ValueError("no box map among the detection outputs")
    cls = next(m for m in maps if m is not box)
    return box, cls
