from __future__ import annotations

import numpy as np
from onnx import numpy_helper
from ptqtui.rules import ptq001_channel_order_mismatch as rule

from ptqtui.check.findings import Severity
from ptqtui.remedy import ConfigEdit, InputChange, InputFix, Remedy
from tests.check.factories import (
    config_context,
    heatmap_model,
    make_context,
    mapper_config,
    natural_images,
    to_nchw,
)

BGR_MEAN = "103.53 116.28 123.675"


def _bgr(images):
    return [im[:, :, ::-1] for im in images]


def test_fires_critical_when_the_model_prefers_swapped_channels(tmp_path):
    ctx = make_context(tmp_path, calib=to_nchw(_bgr(natural_images(20))))
    [finding] = rule.check(ctx)
    assert finding.severity is Severity.CRITICAL
    assert "swapped" in finding.message and "0.20 as given" in finding.message
    assert "more confident on 100 % of samples" in finding.measured
    assert finding.remedy == Remedy(inputs=(InputChange(InputFix.SWAP_CHANNELS, "images"),))


def test_config_type_is_the_odd_one_out(tmp_path):
    # data written BGR as the config says, but mean_value (RGB order) and the model want RGB
    ctx = make_context(
        tmp_path, calib=to_nchw(_bgr(natural_images(20))), input__input_type_train="bgr"
    )
    [finding] = rule.check(ctx)
    assert finding.severity is Severity.CRITICAL
    [change] = finding.remedy.config
    assert (change.key, change.old, change.new) == (
        "input_parameters.input_type_train",
        "bgr",
        "rgb",
    )
    assert change.line is not None and not finding.remedy.inputs


def test_reversed_mean_is_minor_when_the_model_confirms_the_data(tmp_path):
    ctx = make_context(tmp_path, input__mean_value=BGR_MEAN)
    [finding] = rule.check(ctx)
    assert finding.severity is Severity.MINOR and "reversed" in finding.message
    [change] = finding.remedy.config
    assert change.old == (103.53, 116.28, 123.675) and change.new == (123.675, 116.28, 103.53)


def test_config_only_mean_order_conflict_is_a_note_without_remedy(tmp_path):
    # ImageNet means in RGB order with bgr is how PaddleOCR trains: the config alone proves nothing
    ctx = config_context(tmp_path, mapper_config(input__input_type_train="bgr"))
    [finding] = rule.check(ctx)
    assert finding.severity is Severity.INFO and finding.remedy is None
    assert finding.remedy is None  # either the key or the values: no one cure


def test_illegal_type_pair(tmp_path):
    config = mapper_config(input__input_type_rt="gray")
    findings = rule.check(config_context(tmp_path, config))
    assert any("cannot feed" in f.message for f in findings)


def test_blue_data_is_critical_on_a_head_that_relies_on_the_order(tmp_path):
    # no classifier: a strong cast and a swap that changes the head's positives (the impact)
    calib = to_nchw(_bgr(natural_images(20)))
    [finding] = rule.check(make_context(tmp_path, calib=calib, model=heatmap_model()))
    assert finding.severity is Severity.CRITICAL and "bluer" in finding.message
    assert [c.fix for c in finding.remedy.inputs] == [InputFix.SWAP_CHANNELS]
    [impact] = [e for e in finding.evidence if "head positives" in e.what]
    assert int(impact.observed.split(" %")[0]) >= 10


def test_blue_data_is_major_on_a_head_blind_to_the_order(tmp_path):
    # the same data, a head whose filters treat R, G and B alike: the swap changes nothing
    calib = to_nchw(_bgr(natural_images(20)))
    model = heatmap_model()
    [w] = [t for t in model.graph.initializer if t.name == "w"]
    blind = numpy_helper.to_array(w).mean(axis=1, keepdims=True).repeat(3, axis=1)
    w.CopyFrom(numpy_helper.from_array(blind.astype(np.float32), "w"))
    [finding] = rule.check(make_context(tmp_path, calib=calib, model=model))
    assert finding.severity is Severity.MAJOR and "bluer" in finding.message


def test_quiet_on_rgb_data_and_config(tmp_path):
    assert rule.check(make_context(tmp_path)) == []
    calib = to_nchw(natural_images(20), np.uint8)
    assert rule.check(make_context(tmp_path / "h", calib=calib, model=heatmap_model())) == []


def _eval():
    return [(im, i % 5) for i, im in enumerate(natural_images(20, seed=4))]


def test_evaluation_images_corroborate_the_swap(tmp_path):
    ctx = make_context(tmp_path, calib=to_nchw(_bgr(natural_images(20))), eval_images=_eval())
    [finding] = rule.check(ctx)
    assert finding.severity is Severity.CRITICAL and "evaluation images agree" in finding.message
    assert "energy distance" in finding.evidence[-1].what


def test_evaluation_images_alone_give_major_without_a_classifier(tmp_path):
    calib = to_nchw(_bgr(natural_images(20)))
    ctx = make_context(tmp_path, calib=calib, model=heatmap_model(), eval_images=_eval())
    [finding] = rule.check(ctx)
    assert finding.severity is Severity.MAJOR and "reverse channel order" in finding.message
    assert finding.remedy.fixes == (InputFix.SWAP_CHANNELS,)


def test_labelled_images_show_the_config_order_is_wrong(tmp_path):
    # config says bgr and the data follows it; the model was trained on RGB
    ctx = make_context(
        tmp_path,
        calib=to_nchw(_bgr(natural_images(20))),
        eval_images=_eval(),
        input__input_type_train="bgr",
        input__mean_value=BGR_MEAN,
        input__scale_value="0.01743 0.01751 0.01712",
    )
    [finding] = rule.check(ctx)
    assert finding.severity is Severity.CRITICAL and "labelled" in finding.message
    assert "100.0 % with channels swapped" in finding.measured
    assert [(e.key, e.new) for e in finding.remedy.config] == [
        ("input_parameters.input_type_train", "rgb"),
        ("input_parameters.mean_value", (123.675, 116.28, 103.53)),
        ("input_parameters.scale_value", (0.01712, 0.01751, 0.01743)),
    ]
    assert all(isinstance(e, ConfigEdit) for e in finding.remedy.config)


def test_labelled_images_confirm_a_reversed_mean(tmp_path):
    ctx = make_context(tmp_path, eval_images=_eval(), input__mean_value=BGR_MEAN)
    [finding] = rule.check(ctx)
    assert finding.severity is Severity.MINOR and "labelled evaluation images" in finding.measured
