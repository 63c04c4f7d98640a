"""Task adapters on hand-made outputs with known answers (NMS, CTC decode, IoU, intervals)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ptqtui.analysis import tasks
from ptqtui.analysis.tasks import (
    Boxes,
    Classification,
    CtcSequence,
    DenseMap,
    Raw,
    YoloDetection,
    box_f1,
    ctc_greedy,
    edit_distance,
    infer_task,
    mean_interval,
    nms,
    task_named,
    wilson_interval,
)
from ptqtui.errors import PtqInputError


def test_wilson_interval_matches_the_textbook_value():
    # 8 of 10: Wilson 95 % interval is 0.490 .. 0.943
    iv = wilson_interval(8, 10)
    assert iv.value == 0.8
    assert iv.low == pytest.approx(0.4902, abs=1e-3)
    assert iv.high == pytest.approx(0.9433, abs=1e-3)


def test_wilson_interval_stays_inside_0_1_at_the_edges():
    iv = wilson_interval(100, 100)
    assert iv.high == 1.0 and 0.95 < iv.low < 1.0


def test_mean_interval_narrows_with_samples():
    rng = np.random.default_rng(0)
    few = mean_interval(rng.uniform(0.6, 1.0, 10).tolist())
    many = mean_interval(rng.uniform(0.6, 1.0, 1000).tolist())
    assert many.half_width < few.half_width / 5
    assert math.isnan(mean_interval([]).value)


def test_nms_keeps_the_best_of_overlapping_boxes_of_one_class():
    xyxy = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    classes = np.array([0, 0, 0, 1])  # the last overlaps the first but is another class
    assert nms(xyxy, scores, classes, 0.45).tolist() == [0, 2, 3]


def _boxes(rows, classes=None):
    rows = np.asarray(rows, np.float32).reshape(-1, 4)
    n = len(rows)
    cls = np.zeros(n, np.int64) if classes is None else np.asarray(classes)
    return Boxes(rows, np.linspace(0.9, 0.5, n) if n else np.zeros(0), cls)


def test_box_f1_counts_matches_of_the_same_class_only():
    ref = _boxes([[0, 0, 10, 10], [20, 20, 30, 30]])
    assert box_f1(ref, ref) == 1.0
    shifted = _boxes([[0, 0, 10, 10], [40, 40, 50, 50]])
    assert box_f1(ref, shifted) == pytest.approx(0.5)
    other_class = _boxes([[0, 0, 10, 10], [20, 20, 30, 30]], classes=[1, 1])
    assert box_f1(ref, other_class) == 0.0
    assert box_f1(_boxes([]), _boxes([])) == 1.0
    assert box_f1(ref, _boxes([])) == 0.0


def test_yolo_v8_rows_decode_to_boxes_after_nms():
    # [1, 4 + 2 classes, 3 anchors]: two overlapping class-0 boxes and one class-1 box
    rows = np.array(
        [
            [50, 52, 200],  # cx
            [50, 50, 200],  # cy
            [20, 20, 40],  # w
            [20, 20, 40],  # h
            [0.9, 0.8, 0.1],  # class 0
            [0.1, 0.1, 0.7],  # class 1
        ],
        np.float32,
    )[None]
    rows = np.concatenate([rows, np.zeros((1, 6, 30), np.float32)], axis=2)  # more anchors
    [boxes] = YoloDetection((640, 640)).decode({"out": rows})
    assert len(boxes) == 2
    assert sorted(boxes.classes.tolist()) == [0, 1]
    assert boxes.xyxy[boxes.classes == 1][0].tolist() == [180, 180, 220, 220]


def test_yolo_v5_rows_multiply_objectness_into_class_scores():
    # [1, anchors, 5 + 1]: objectness 0.2 * class 0.9 = 0.18 < 0.25 is dropped
    rows = np.array([[[50, 50, 10, 10, 0.9, 0.9], [300, 300, 10, 10, 0.2, 0.9]]] * 1, np.float32)
    rows = np.concatenate([rows, np.zeros((1, 10, 6), np.float32)], axis=1)  # more anchors
    [boxes] = YoloDetection((640, 640)).decode({"out": rows})
    assert len(boxes) == 1 and boxes.scores[0] == pytest.approx(0.81)


def test_yolo_per_level_dfl_maps_decode_to_the_planted_box():
    # one level, stride 32 on a 64x64 input: a 2x2 map; DFL with reg_max 16, one hot bins
    reg = 16
    box = np.full((1, 4 * reg, 2, 2), -20.0, np.float32)
    cls = np.full((1, 3, 2, 2), -10.0, np.float32)  # logits
    # cell (y=0, x=1): distances l,t,r,b = 1, 1, 2, 2 strides
    for side, d in enumerate((1, 1, 2, 2)):
        box[0, side * reg + d, 0, 1] = 20.0
    cls[0, 2, 0, 1] = 5.0
    maps = {"box": box, "cls": cls}
    [boxes] = YoloDetection((64, 64)).decode(maps)
    assert len(boxes) == 1 and int(boxes.classes[0]) == 2
    # centre of cell (0, 1) is (1.5, 0.5) strides: x 0.5..3.5, y -0.5..2.5 strides of 32
    assert boxes.xyxy[0].tolist() == pytest.approx([16, -16, 112, 80], abs=1e-3)


def test_yolo_per_level_maps_in_nhwc_as_npu_exports_write_them():
    reg = 16
    box = np.full((1, 2, 2, 4 * reg), -20.0, np.float32)
    cls = np.full((1, 2, 2, 80), -10.0, np.float32)
    for side, d in enumerate((1, 1, 1, 1)):
        box[0, 1, 1, side * reg + d] = 20.0
    cls[0, 1, 1, 7] = 4.0
    [boxes] = YoloDetection((64, 64)).decode({"box": box, "cls": cls})
    assert int(boxes.classes[0]) == 7
    assert boxes.xyxy[0].tolist() == pytest.approx([16, 16, 80, 80], abs=1e-3)


def test_ctc_greedy_collapses_repeats_and_drops_blanks():
    # best path 0 1 1 0 1 2 2 0 -> 1 1 2
    path = [0, 1, 1, 0, 1, 2, 2, 0]
    scores = np.eye(3)[path]
    assert ctc_greedy(scores) == [1, 1, 2]


def test_ctc_decodes_strings_with_a_charset_and_scores_agreement():
    task = CtcSequence(charset=("", "a", "b"))
    scores = np.eye(3)[[1, 0, 1, 2]][None]  # a a b
    [text] = task.decode({"out": scores})
    assert text == "aab"
    assert task.agreement("aab", "aab") == 1.0 and task.agreement("aab", "ab") == 0.0
    assert task.char_error_rate("aab", "ab") == pytest.approx(1 / 3)


def test_ctc_time_first_outputs_are_transposed():
    scores = np.eye(3)[[1, 2]][:, None, :]  # [T=2, N=1, C=3]
    assert CtcSequence(time_first=True).decode({"o": scores}) == ["1 2"]


def test_edit_distance():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3


def test_dense_probability_maps_are_binarised_and_compared_by_iou():
    a = np.zeros((1, 1, 8, 8), np.float32)
    a[0, 0, :4, :4] = 0.9
    b = np.zeros_like(a)
    b[0, 0, :4, :2] = 0.9
    task = DenseMap()
    [ma], [mb] = task.decode({"o": a}), task.decode({"o": b})
    assert task.agreement(ma, mb) == pytest.approx(0.5)


def test_dense_logits_take_the_argmax_class_and_mean_iou():
    logits = np.zeros((1, 3, 2, 2), np.float32)
    logits[0, 1, 0, :] = 1  # top row class 1
    logits[0, 2, 1, :] = 1  # bottom row class 2
    [mask] = DenseMap().decode({"o": logits})
    assert mask.tolist() == [[1, 1], [2, 2]]
    other = np.array([[1, 1], [1, 2]])
    # class 1: IoU 2/3, class 2: IoU 1/2
    assert DenseMap().agreement(mask, other) == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_infer_task_from_output_shapes():
    hw = (640, 640)
    assert isinstance(infer_task({"p": (1, 1000)}, hw), Classification)
    assert isinstance(infer_task({"p": (1, 84, 8400)}, hw), YoloDetection)
    assert isinstance(infer_task({"p": (1, 25200, 85)}, hw), YoloDetection)
    assert isinstance(infer_task({"p": (1, 40, 6625)}, hw), CtcSequence)
    assert isinstance(infer_task({"p": (1, 1, 640, 640)}, hw), DenseMap)
    levels = {f"o{i}": (1, 80 // 2**i, 80 // 2**i, c) for i in range(3) for c in (64,)}
    levels |= {f"c{i}": (1, 80 // 2**i, 80 // 2**i, 80) for i in range(3)}
    assert isinstance(infer_task(levels, hw), YoloDetection)
    assert isinstance(infer_task({"a": (1, 7), "b": (1, 3, 2)}, hw), Raw)


def test_infer_task_tells_ctc_probabilities_from_rows_by_their_values():
    probs = np.random.default_rng(0).dirichlet(np.ones(37), size=(1, 40)).astype(np.float32)
    assert isinstance(infer_task({"p": probs.shape}, (32, 100), sample={"p": probs}), CtcSequence)
    rows = np.abs(np.random.default_rng(0).normal(100, 50, (1, 40, 37))).astype(np.float32)
    task = infer_task({"p": rows.shape}, (32, 100), sample={"p": rows})
    assert not isinstance(task, CtcSequence)


def test_infer_task_reads_time_first_ctc_logits_by_their_blank_share():
    # [T, 1, C] logits of one sample: the blank (0) wins 20 of 32 steps, characters the rest
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 1, (32, 1, 500)).astype(np.float32)
    best = np.zeros(32, np.int64)
    best[[2, 3, 7, 11, 12, 15, 18, 21, 22, 25, 28, 30]] = [5, 5, 9, 40, 41, 41, 7, 7, 3, 499, 8, 8]
    logits[np.arange(32), 0, best] = 20.0
    task = infer_task({"o": logits.shape}, (64, 256), sample={"o": logits})
    assert isinstance(task, CtcSequence) and task.time_first
    # adjacent repeats collapse (5 5 at steps 2-3), a blank between two keeps both (41, 7, 8)
    assert task.decode({"o": logits}) == ["5 9 40 41 41 7 7 3 499 8 8"]
    # task_named("ocr") reads the same layout
    assert task_named("ocr", {"o": logits.shape}, (64, 256)).time_first
    # the same shape with no blank-dominated steps (noise) is not a recogniser, nor top-1
    noise = rng.normal(0, 1, (32, 1, 500)).astype(np.float32)
    assert isinstance(infer_task({"o": noise.shape}, (64, 256), sample={"o": noise}), Raw)
    # and without a sample, a time-first shape alone decides nothing
    assert isinstance(infer_task({"o": logits.shape}, (64, 256)), Raw)


def test_a_user_task_module_is_loaded_and_used(tmp_path):
    module = tmp_path / "mytask.py"
    module.write_text(
        "import numpy as np\n"
        "NAME = 'sign'\n"
        "def decode(outputs):\n"
        "    return [bool(x > 0) for x in next(iter(outputs.values())).reshape(-1)]\n"
        "def agreement(a, b):\n"
        "    return float(a == b)\n"
    )
    task = tasks.load_task_module(module)
    assert task.name == "sign"
    preds = task.decode({"o": np.array([1.0, -1.0])})
    assert preds == [True, False] and task.agreement(True, False) == 0.0


def test_a_task_module_without_the_functions_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\n")
    with pytest.raises(PtqInputError, match="decode"):
        tasks.load_task_module(bad)
    with pytest.raises(PtqInputError, match="no such file"):
        tasks.load_task_module(tmp_path / "missing.py")


def test_undecoded_yolox_rows_are_decoded_on_their_grid():
    # 32x32 input: cells 4x4 (stride 8), 2x2 (16), 1x1 (32) = 21 rows of raw offsets
    rows = np.zeros((1, 21, 6), np.float32)
    rows[0, :, 2:4] = np.log(0.5)  # half a stride wide
    rows[0, 5, :4] = [0.5, 0.5, np.log(2.0), np.log(2.0)]  # cell (1, 1) of stride 8
    rows[0, 5, 4:] = [0.9, 0.9]  # objectness and class score, already sigmoided
    [boxes] = YoloDetection((32, 32)).decode({"out": rows})
    assert len(boxes) == 1
    np.testing.assert_allclose(boxes.xyxy[0], [4.0, 4.0, 20.0, 20.0], atol=1e-5)


def test_an_agreement_on_mostly_empty_predictions_is_said():
    none = Boxes(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
    one = Boxes(np.array([[0, 0, 4, 4]], np.float32), np.ones(1, np.float32), np.zeros(1, int))
    det = YoloDetection((32, 32))
    note = tasks.empty_note(det, [none, none, one])
    assert note is not None and "nothing on 2 of 3" in note
    assert tasks.empty_note(det, [none, one, one, one, one]) is None  # 1 in 5: below a quarter
    assert tasks.empty_note(CtcSequence(), ["", "", "ab"]) is not None
    assert tasks.empty_note(DenseMap(), [np.zeros((2, 2), bool)] * 2) is not None
    assert tasks.empty_note(Classification(), [0, 0, 0]) is None  # a class is never empty
