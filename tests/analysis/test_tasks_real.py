"""The adapters on real model outputs: float and int8 (max, per-tensor) outputs of corpus
models, saved reduced to what decides the decoding (tests/fixtures/tasks/make_fixtures.py),
against the answers the full outputs gave."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ptqtui.analysis.tasks import (
    Classification,
    CtcSequence,
    DenseMap,
    YoloDetection,
    infer_task,
    mean_interval,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "tasks"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))


def _load(name: str) -> dict[str, np.ndarray]:
    path = FIXTURES / f"{name}.npz"
    if not path.exists():
        pytest.skip(f"{path.name} not built")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def test_ppocrv4_rec_strings_collapse_under_per_tensor_int8():
    z = _load("ppocrv4_rec")
    want = EXPECTED["ppocrv4_rec"]
    task = CtcSequence(charset=tuple(str(c) for c in z["charset"]))
    floats = task.decode({"x": z["float"].astype(np.float32)})
    quants = task.decode({"x": z["int8"].astype(np.float32)})
    assert floats == want["float"] and all(floats)  # real text, read by the float model
    assert quants == want["int8"]
    agree = [task.agreement(a, b) for a, b in zip(floats, quants, strict=True)]
    cer = [task.char_error_rate(a, b) for a, b in zip(floats, quants, strict=True)]
    assert agree == want["agreement"] and cer == pytest.approx(want["cer"])
    assert [task.agreement(a, a) for a in floats] == [1.0, 1.0]
    # the shape alone says CTC: [N, T, C] with T < C, softmax rows
    shapes = {"x": (1, *z["float"].shape[1:2], 6625)}
    assert isinstance(infer_task(shapes, (48, 320)), CtcSequence)


def test_ddddocr_rec_time_first_logits_are_read_as_ctc():
    z = _load("ddddocr_rec")
    want = EXPECTED["ddddocr_rec"]
    f, q = z["float"].astype(np.float32), z["int8"].astype(np.float32)  # [T, 2, C'] logits
    one = {"387": f[:, :1]}
    full_shape = tuple(int(d) for d in z["full_shape"])  # [32, 1, 8210]
    task = infer_task({"387": full_shape}, (64, 256), sample=one)
    assert isinstance(task, CtcSequence) and task.time_first and not task.charset
    floats, quants = task.decode({"387": f}), task.decode({"387": q})
    assert floats == want["float"] and all(floats)  # every crop reads as characters
    assert quants == want["int8"]
    cols = z["columns"]  # the reduced columns map back to the model's class indices
    full = [" ".join(str(cols[int(i)]) for i in s.split()) for s in floats]
    assert full == want["float_full"]
    agree = [task.agreement(a, b) for a, b in zip(floats, quants, strict=True)]
    assert agree == want["agreement"]
    cer = [task.char_error_rate(a, b) for a, b in zip(floats, quants, strict=True)]
    assert cer == pytest.approx(want["cer"])
    # read batch first by mistake, the same logits are not a recogniser's
    assert not isinstance(infer_task({"387": full_shape[::-1]}, (64, 256)), CtcSequence)


def test_ddddocr_det_undecoded_yolox_rows_give_boxes_and_their_f1():
    z = _load("ddddocr_det")
    want = EXPECTED["ddddocr_det"]
    task = YoloDetection((416, 416), score_threshold=0.1)  # ddddocr's own score cut
    fb = task.decode({"o": z["float"]})
    qb = task.decode({"o": z["int8"]})
    assert [len(b) for b in fb] == want["float_boxes"] and [len(b) for b in qb] == want[
        "int8_boxes"
    ]
    assert all(len(b) for b in fb)
    for b in fb:  # decoded on the grid: boxes inside the 416 x 416 input, in pixels
        assert float(b.xyxy.max()) > 32 and float(b.xyxy.min()) > -64
        assert float(b.xyxy.max()) < 416 + 64
    agree = [task.agreement(a, b) for a, b in zip(fb, qb, strict=True)]
    assert agree == pytest.approx(want["agreement"])
    assert [task.agreement(a, a) for a in fb] == [1.0] * len(fb)
    iv = mean_interval(agree)
    assert iv.low <= iv.value <= iv.high and iv.samples == len(agree)


def test_ppocrv4_det_probability_maps_give_their_iou():
    z = _load("ppocrv4_det")
    want = EXPECTED["ppocrv4_det"]
    task = DenseMap()
    f = task.decode({"o": z["float"].astype(np.float32) / 255})
    q = task.decode({"o": z["int8"].astype(np.float32) / 255})
    assert f[0].shape == tuple(want["shape"][2:]) and f[0].any()
    agree = [task.agreement(a, b) for a, b in zip(f, q, strict=True)]
    assert agree == pytest.approx(want["agreement"], abs=0.01)  # maps stored at 8 bits
    assert task.agreement(f[0], f[0]) == 1.0


def test_efficientnet_top1_on_real_logits():
    z = _load("efficientnet_lite1")
    want = EXPECTED["efficientnet_lite1"]
    task = Classification()
    assert task.decode({"o": z["float"].astype(np.float32)}) == want["float"]
    assert task.decode({"o": z["int8"].astype(np.float32)}) == want["int8"]
    assert isinstance(infer_task({"o": z["float"].shape}, (240, 240)), Classification)


def _ap_by_thresholds(truths, preds, match_iou=0.5):
    """AP of one class the slow way: precision and recall at every score cut, the precision
    at recall >= r maximised (all-point interpolation)."""
    from ptqtui.analysis.tasks import box_iou

    ranked = sorted(
        ((float(p.scores[k]), i, k) for i, p in enumerate(preds) for k in range(len(p))),
        key=lambda r: -r[0],
    )
    n_truth = sum(len(t) for t in truths)
    points = []
    for cut in range(1, len(ranked) + 1):
        taken = [set() for _ in truths]
        tp = 0
        for _, i, k in ranked[:cut]:
            ious = box_iou(preds[i].xyxy[k : k + 1], truths[i].xyxy)[0]
            free = [j for j in np.argsort(-ious) if j not in taken[i] and ious[j] >= match_iou]
            if free:
                taken[i].add(int(free[0]))
                tp += 1
        points.append((tp / n_truth, tp / cut))
    ap, last = 0.0, 0.0
    for r, _ in points:
        if r > last:
            ap += (r - last) * max(p for rr, p in points if rr >= r)
            last = r
    return ap


def test_ddddocr_det_int8_boxes_scored_as_map_against_the_float_boxes():
    from ptqtui.analysis.tasks import Boxes, mean_ap

    z = _load("ddddocr_det")
    task = YoloDetection((416, 416), score_threshold=0.1)
    fb = task.decode({"o": z["float"]})
    qb = task.decode({"o": z["int8"]})
    one = [Boxes(b.xyxy, b.scores, np.zeros(len(b), int)) for b in fb]  # one class, as labels
    q1 = [Boxes(b.xyxy, b.scores, np.zeros(len(b), int)) for b in qb]
    assert mean_ap(one, one) == 1.0
    got = mean_ap(one, q1)
    assert 0.0 < got < 1.0  # the int8 model misses one of the 9 float boxes (F1 0.86 above)
    assert got == pytest.approx(_ap_by_thresholds(one, q1))
