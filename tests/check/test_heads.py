from __future__ import annotations

import numpy as np
import onnxruntime as ort

from ptqtui.check.facts.heads import decision_change, mean_decision_change, score_values
from tests.check.factories import heatmap_model, natural_images, to_nchw


def _run(model, images):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    outs = []
    for x in images:
        feed = (x.astype(np.float32) - 127.5) / 64.0
        outs.append([np.asarray(o) for o in session.run(None, {name: feed})])
    return outs


def test_a_channel_swap_changes_a_colour_heads_positives():
    images = to_nchw(natural_images(8))
    given = _run(heatmap_model(), images)
    swapped = _run(heatmap_model(), [x[:, ::-1] for x in images])
    change = mean_decision_change(given, swapped)
    assert change is not None and change >= 0.1


def test_grey_images_swapped_change_nothing():
    grey = [
        np.repeat(x.mean(axis=1, keepdims=True).astype(np.uint8), 3, axis=1)
        for x in to_nchw(natural_images(8))
    ]
    given = _run(heatmap_model(), grey)
    swapped = _run(heatmap_model(), [x[:, ::-1] for x in grey])
    assert mean_decision_change(given, swapped) == 0.0


def test_box_outputs_keep_only_their_score_columns():
    boxes = np.array([[[10.0, 20.0, 5.0, 5.0, 0.9, 0.8], [30.0, 40.0, 6.0, 2.0, 0.2, 0.7]]])
    assert score_values([boxes]).tolist() == [0.9, 0.8, 0.2, 0.7]
    moved = boxes.copy()
    moved[0, 0, 4] = 0.1  # the first box's objectness falls below 0.5
    assert decision_change([boxes], [moved]) == 1 / 3


def test_unbounded_outputs_have_no_score_values():
    # a conv's raw output (no sigmoid): values outside [0, 1], no decision to compare
    model = heatmap_model()
    model.graph.output[0].name = "c"
    del model.graph.node[1]
    [raw] = _run(model, to_nchw(natural_images(1)))
    assert score_values(raw).size == 0 and decision_change(raw, raw) is None
