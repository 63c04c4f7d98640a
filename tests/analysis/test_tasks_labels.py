"""Task labels in --eval-dir (COCO boxes, mask PNGs, text lines): loaded from small real files,
bad files refused in one line, and the real metric measured on a real session."""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ptqtui.analysis.run import run_analysis
from ptqtui.analysis.tasks import Boxes, CtcSequence, DenseMap, YoloDetection, score_label
from ptqtui.cli import main
from ptqtui.errors import PtqInputError
from ptqtui.inputs.resolve import load_inputs
from ptqtui.inputs.task_labels import BoxTruth, LabelKind, load_task_labels, read_mask
from ptqtui.request import InputFlags, Request

SIZE = 16


def _png(path, image):
    ok, buf = cv2.imencode(".png", image)
    assert ok
    path.write_bytes(buf.tobytes())


def _scene(rng, k):
    """A dark 16x16 picture with one bright rectangle, and its mask."""
    image = rng.integers(0, 40, (SIZE, SIZE, 3)).astype(np.uint8)
    y, x = int(rng.integers(0, 8)), int(rng.integers(0, 8))
    h, w = 4 + k % 5, 5 + k % 4
    image[y : y + h, x : x + w] = rng.integers(200, 255, (h, w, 3))
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[y : y + h, x : x + w] = 255
    return image, mask


def _images(directory, n, seed=0):
    directory.mkdir()
    rng = np.random.default_rng(seed)
    masks = []
    for k in range(n):
        image, mask = _scene(rng, k)
        _png(directory / f"im{k:02d}.png", image)
        masks.append(mask)
    return masks


# ---------------------------------------------------------------------- loading
def test_coco_boxes_load_in_category_order(tmp_path):
    d = tmp_path / "ev"
    _images(d, 2)
    coco = {
        "images": [
            {"id": 7, "file_name": "im00.png", "width": 16, "height": 16},
            {"id": 8, "file_name": "im01.png"},
        ],
        "annotations": [
            {"image_id": 7, "bbox": [1, 2, 3, 4], "category_id": 90},
            {"image_id": 7, "bbox": [0, 0, 5, 5], "category_id": 1},
        ],
        "categories": [{"id": 90, "name": "toothbrush"}, {"id": 1, "name": "person"}],
    }
    (d / "annotations.json").write_text(json.dumps(coco))
    labels = load_task_labels(d)
    assert labels is not None and labels.kind is LabelKind.BOXES
    assert labels.classes == ("person", "toothbrush")  # sorted by id: index 0 = id 1
    first, second = labels.items
    assert isinstance(first.truth, BoxTruth) and first.file.name == "im00.png"
    assert first.truth.xyxy.tolist() == [[1, 2, 4, 6], [0, 0, 5, 5]]
    assert first.truth.classes.tolist() == [1, 0]
    assert isinstance(second.truth, BoxTruth) and len(second.truth.xyxy) == 0
    assert (second.truth.width, second.truth.height) == (16, 16)  # read from the PNG


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"images": [', "is not JSON"),
        ('{"images": [], "annotations": {}}', "needs lists"),
        ('{"images": [{"id": 1, "file_name": "nope.png"}], "annotations": []}', "nope.png"),
        (
            '{"images": [{"id": 1, "file_name": "im00.png"}], '
            '"annotations": [{"image_id": 1, "bbox": [1, 2, -3, 4]}]}',
            "is not [x, y, w, h]",
        ),
        (
            '{"images": [{"id": 1, "file_name": "im00.png"}], '
            '"annotations": [{"image_id": 2, "bbox": [1, 2, 3, 4]}]}',
            "image_id 2",
        ),
    ],
)
def test_a_bad_annotations_file_is_one_error_naming_it(tmp_path, text, problem):
    d = tmp_path / "ev"
    _images(d, 1)
    (d / "annotations.json").write_text(text)
    with pytest.raises(PtqInputError) as err:
        load_task_labels(d)
    assert err.value.path is not None and err.value.path.endswith("annotations.json")
    assert problem in err.value.one_line()


def test_masks_load_and_read_as_class_indices(tmp_path):
    d = tmp_path / "ev"
    masks = _images(d, 2)
    (d / "masks").mkdir()
    for k, m in enumerate(masks):
        _png(d / "masks" / f"im{k:02d}.png", m)
    labels = load_task_labels(d)
    assert labels is not None and labels.kind is LabelKind.MASKS and len(labels) == 2
    m = read_mask(labels.items[0].truth, (8, 8))  # 0/255 -> 0/1, nearest to the map size
    assert m.shape == (8, 8) and set(np.unique(m).tolist()) <= {0, 1} and m.any()
    (d / "masks" / "im01.png").unlink()
    with pytest.raises(PtqInputError, match=r"no im01\.png"):
        load_task_labels(d)


def test_text_labels_load_and_a_bad_line_is_named(tmp_path):
    d = tmp_path / "ev"
    _images(d, 2)
    (d / "labels.txt").write_text("im00.png\thello world\nim01.png\tC-3PO\n", encoding="utf-8")
    labels = load_task_labels(d)
    assert labels is not None and labels.kind is LabelKind.TEXT
    assert [t.truth for t in labels.items] == ["hello world", "C-3PO"]
    (d / "labels.txt").write_text("im00.png\thello\nim09.png\tnope\n", encoding="utf-8")
    with pytest.raises(PtqInputError) as err:
        load_task_labels(d)
    assert err.value.line == 2 and "im09.png" in err.value.problem
    # 'file label' lines without a TAB stay classification labels
    (d / "labels.txt").write_text("im00.png 0\nim01.png 1\n", encoding="utf-8")
    assert load_task_labels(d) is None


def test_scores_against_labels_have_known_answers():
    box = Boxes(np.array([[0, 0, 10, 10]], np.float32), np.ones(1, np.float32), np.zeros(1, int))
    moved = Boxes(np.array([[5, 0, 15, 10]], np.float32), np.ones(1, np.float32), np.zeros(1, int))
    det = YoloDetection((32, 32))
    assert score_label(det, box, box) == 1.0 and score_label(det, box, moved) == 0.0  # IoU 1/3
    truth = np.array([[0, 1], [1, 1]])
    assert score_label(DenseMap(), truth, np.array([[False, True], [False, True]])) == 2 / 3
    ocr = CtcSequence(charset=("", "a", "b"))
    assert score_label(ocr, "ab", "ab") == 1.0 and score_label(ocr, "ab", "a") == 0.0


# ---------------------------------------------------------------------- on a real session
def _dense_model(path):
    """x[1,3,16,16] 0..255 -> Conv 3x3 (4) -> Relu -> Conv 1x1 -> Sigmoid: bright = text."""
    rng = np.random.default_rng(0)
    w1 = np.abs(rng.normal(1.0, 0.2, (4, 3, 3, 3))) / (27 * 255)
    w2 = np.full((1, 4, 1, 1), 12.0 / 4 * 4, np.float32) + rng.normal(0, 0.5, (1, 4, 1, 1))
    b2 = np.array([-6.0], np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"]),
        helper.make_node("Sigmoid", ["c2"], ["prob"]),
    ]
    graph = helper.make_graph(
        nodes,
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 1, SIZE, SIZE])],
        initializer=[
            numpy_helper.from_array(w1.astype(np.float32), "w1"),
            numpy_helper.from_array(w2.astype(np.float32), "w2"),
            numpy_helper.from_array(b2, "b2"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


def _dense_request(tmp_path, **extra):
    _dense_model(tmp_path / "m.onnx")
    _images(tmp_path / "cal", 12, seed=1)
    masks = _images(tmp_path / "ev", 6, seed=2)
    (tmp_path / "ev" / "masks").mkdir()
    for k, m in enumerate(masks):
        _png(tmp_path / "ev" / "masks" / f"im{k:02d}.png", m)
    flags = InputFlags(input_type_train="rgb", layout="NCHW")
    return Request(
        model=tmp_path / "m.onnx",
        cal_dirs=(tmp_path / "cal",),
        eval_dir=tmp_path / "ev",
        flags=flags,
        **extra,
    )


def test_mask_labels_give_the_real_metric_float_and_int8(tmp_path):
    analysis, ctx = run_analysis(load_inputs(_dense_request(tmp_path)), sensitivity_samples=2)
    q = analysis.quality
    assert q is not None and q.task == "dense"
    assert ctx.task_eval is not None and len(ctx.task_eval) == 6
    assert q.label_metric == "mask IoU vs labels" and "labelled images" in q.basis
    assert q.top1_float is not None and q.top1_float > 0.5  # the model finds the rectangles
    assert q.top1_quant is not None and 0.0 <= q.top1_quant <= 1.0
    assert q.loss_points == pytest.approx(100 * (q.top1_float - q.top1_quant))
    assert q.top1_agreement is not None  # the agreement with float stays beside it


def test_labels_of_another_task_are_ignored_and_said(tmp_path):
    request = _dense_request(tmp_path)
    (tmp_path / "ev" / "labels.txt").write_text("im00.png\tabc\n", encoding="utf-8")
    import shutil

    shutil.rmtree(tmp_path / "ev" / "masks")
    analysis, ctx = run_analysis(load_inputs(request), sensitivity_samples=2)
    assert ctx.task_eval is None
    assert any("labels (text) ignored" in n for n in ctx.notes)
    assert analysis.quality is not None and analysis.quality.label_metric is None


def test_a_bad_label_file_exits_2_with_one_line(tmp_path, capsys):
    request = _dense_request(tmp_path)
    (tmp_path / "ev" / "masks" / "im03.png").unlink()
    code = main(
        [
            str(request.model),
            "--cal-dir",
            str(tmp_path / "cal"),
            "--eval-dir",
            str(tmp_path / "ev"),
            "--input-type-train",
            "rgb",
            "--layout",
            "NCHW",
            "--report",
            "text",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    err = [ln for ln in err if not ln.endswith(" ...")]  # progress lines, when slow
    assert code == 2
    assert len(err) == 1 and "masks" in err[0] and "im03.png" in err[0]


def _ctc_model(path):
    """x[1,1,8,32] grey (0..255) -> Conv (8x1, one column at a time) -> [1,32,3] softmax over
    blank, 'a', 'b': bright columns are blank, dark ones 'a', mid-grey ones 'b'."""
    w = np.zeros((3, 1, 8, 1), np.float32)
    w[0, 0, :, 0] = 20 / (8 * 255)  # blank: 20 m - 14 (m = the column's mean, 0..1)
    w[1, 0, :, 0] = -20 / (8 * 255)  # 'a': 6 - 20 m
    b = np.array([-14.0, 6.0, 0.0], np.float32)  # 'b': 0
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"]),
        helper.make_node("Reshape", ["c", "shape"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Softmax", ["t"], ["probs"], axis=2),
    ]
    graph = helper.make_graph(
        nodes,
        "ctc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 32])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 32, 3])],
        initializer=[
            numpy_helper.from_array(w, "w"),
            numpy_helper.from_array(b, "b"),
            numpy_helper.from_array(np.array([1, 3, 32], np.int64), "shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {"character": "a\nb"})  # PaddleOCR's metadata key
    onnx.save(model, path)


def _line(text: str) -> np.ndarray:
    """An 8x32 grey line: 3 columns per character ('a' dark, 'b' grey), a bright gap between."""
    img = np.full((8, 32), 240, np.uint8)
    x = 1
    for ch in text:
        img[:, x : x + 3] = 20 if ch == "a" else 128
        x += 4
    return img


def test_text_labels_give_exact_string_and_cer_float_and_int8(tmp_path):
    _ctc_model(tmp_path / "m.onnx")
    (tmp_path / "cal").mkdir()
    words = ["ab", "ba", "aab", "bba", "abab", "b", "a", "bab"]
    for k, word in enumerate(words * 2):
        _png(tmp_path / "cal" / f"c{k:02d}.png", _line(word))
    ev = tmp_path / "ev"
    ev.mkdir()
    lines = []
    for k, word in enumerate(words[:6]):
        _png(ev / f"l{k}.png", _line(word))
        lines.append(f"l{k}.png\t{word if k != 5 else 'bb'}")  # the last label: one b too many
    (ev / "labels.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    request = Request(
        model=tmp_path / "m.onnx",
        cal_dirs=(tmp_path / "cal",),
        eval_dir=ev,
        flags=InputFlags(input_type_train="gray", layout="NCHW"),
    )
    analysis, ctx = run_analysis(load_inputs(request), sensitivity_samples=2)
    q = analysis.quality
    assert q is not None and q.task == "ocr" and q.label_metric == "exact string vs labels"
    assert ctx.task_eval is not None and len(ctx.task_eval) == 6
    assert q.top1_float == pytest.approx(5 / 6)  # the float model reads 5 of 6 as labelled
    assert q.label_cer_float == pytest.approx(0.5 / 6)  # 'b' for 'bb': CER 1/2 on one line
    assert q.top1_quant is not None and q.label_cer_quant is not None


def _b(rows, scores=None, classes=None) -> Boxes:
    xyxy = np.array(rows, np.float32).reshape(-1, 4)
    n = len(xyxy)
    s = np.ones(n, np.float32) if scores is None else np.array(scores, np.float32)
    c = np.zeros(n, int) if classes is None else np.array(classes, int)
    return Boxes(xyxy, s, c)


def test_box_ap_is_all_point_interpolated_on_hand_made_boxes():
    from ptqtui.analysis.tasks import mean_ap

    truth = _b([[0, 0, 10, 10], [20, 20, 30, 30]])
    # ranked: TP (0.9), FP (0.8, nowhere), TP (0.7): precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    pred = _b([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 31]], [0.9, 0.8, 0.7])
    assert mean_ap([truth], [pred]) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)  # 0.8333
    # (the 11-point interpolation would give (6 + 5 * 2/3) / 11 = 0.8485)
    # a second box on a matched label is a false positive; no box at all for a label: missed
    dup = _b([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8])
    assert mean_ap([truth], [dup]) == pytest.approx(0.5)
    # per class, then the mean over the classes that have labels (class 2 has none: ignored)
    two = _b([[0, 0, 10, 10], [20, 20, 30, 30]], classes=[0, 1])
    got = _b([[0, 0, 10, 10], [70, 70, 80, 80], [0, 0, 5, 5]], [0.9, 0.9, 0.5], [0, 1, 2])
    assert mean_ap([two], [got]) == pytest.approx((1.0 + 0.0) / 2)
    assert mean_ap([two], [two]) == 1.0
    # a box matches labels of its own image only
    a, b = _b([[0, 0, 10, 10]]), _b([[40, 40, 50, 50]])
    assert mean_ap([a, b], [b, a]) == 0.0 and mean_ap([a, b], [a, b]) == 1.0
    # nothing labelled: 1 when nothing is found, else 0
    none = _b([])
    assert mean_ap([none], [none]) == 1.0 and mean_ap([none], [a]) == 0.0


def test_the_labelled_detection_metric_is_map_over_the_set_not_a_mean_per_image():
    from ptqtui.analysis.tasks import label_metric, score_labels

    det = YoloDetection((32, 32))
    assert label_metric(det) == "box mAP@0.5 vs labels"
    truths = [_b([[0, 0, 10, 10]]), _b([[0, 0, 10, 10]])]
    # image 1: its box at 0.9; image 2: a false box at 0.95 before its true one at 0.3
    preds = [
        _b([[0, 0, 10, 10]], [0.9]),
        _b([[20, 20, 30, 30], [0, 0, 10, 10]], [0.95, 0.3]),
    ]
    # ranked over the set: FP (0.95), TP (0.9), TP (0.3): precision 0, 1/2, 2/3
    assert score_labels(det, truths, preds) == pytest.approx(0.5 * 2 / 3 + 0.5 * 2 / 3)
    per_image = np.mean([score_label(det, t, p) for t, p in zip(truths, preds, strict=True)])
    assert per_image == pytest.approx((1.0 + 0.5) / 2)  # not what the set's mAP is
