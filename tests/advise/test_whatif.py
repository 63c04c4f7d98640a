"""The what-if service on the real simulator: remedies measured, input fixes emulated on the
calibration data, the pipeline as deployed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import pytest

from ptqtui.advise.plan import build_plan
from ptqtui.advise.results import Pipeline, Reference
from ptqtui.analysis.run import run_analysis
from ptqtui.analysis.whatif import (
    EXTRA_CONTEXTS,
    CannotEmulate,
    WhatIf,
    _normaliser,
    input_changes,
)
from ptqtui.check.findings import Finding, Severity
from ptqtui.inputs.resolve import load_inputs
from ptqtui.remedy import InputChange, InputFix, Remedy, SettingsDelta
from ptqtui.request import Request
from tests.check.factories import (
    colour_classifier,
    mapper_config,
    natural_images,
    to_nchw,
    write_bins,
    write_config,
)


@pytest.fixture(scope="module")
def bgr_case(tmp_path_factory):
    """Calibration .bin files written BGR for an RGB model; RGB labelled evaluation images."""
    tmp = tmp_path_factory.mktemp("bgr")
    (tmp / "model.onnx").write_bytes(colour_classifier().SerializeToString())
    images = natural_images(24, seed=1)
    write_bins(tmp / "calib", to_nchw([im[:, :, ::-1] for im in images]))
    config = write_config(tmp / "mapper.yaml", mapper_config(cal__calibration_type="max"))
    for i, (img, label) in enumerate(
        (im, i % 5) for i, im in enumerate(natural_images(30, seed=7))
    ):
        folder = tmp / "eval" / f"{label}_class"
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"e{i:03d}.png"), img[:, :, ::-1])
    request = Request(model=tmp / "model.onnx", config=config, eval_dir=tmp / "eval")
    inputs = load_inputs(request)
    analysis, ctx = run_analysis(inputs, sensitivity_samples=4)
    return inputs, analysis, ctx


def test_swap_fix_recovers_the_accuracy_of_the_deployed_pipeline(bgr_case) -> None:
    inputs, _, ctx = bgr_case
    w = WhatIf(ctx, inputs)
    swap = InputChange(InputFix.SWAP_CHANNELS)
    assert w.can_emulate(swap)
    deployed = w.measure_as_deployed(Remedy(), swap)
    after = w.measure(Remedy(inputs=(swap,)))
    assert deployed is not None and deployed.top1 is not None and after.top1 is not None
    assert after.top1 - deployed.top1 > 0.3  # the swap is what costs the accuracy
    assert w.measure(Remedy(inputs=(swap,))) is after  # cached
    layout = InputChange(InputFix.READ_NCHW)  # the files are NCHW already: nothing to undo
    assert not w.can_emulate(layout)
    try:
        w.measure(Remedy(inputs=(layout,)))
    except CannotEmulate:
        pass
    else:
        raise AssertionError("an input fix that cannot be emulated was measured")


def test_undo_normalisation_and_layout_fixers_invert() -> None:
    import numpy as np

    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 4, 4)).astype(np.float32)
    mean, scale = (123.675, 116.28, 103.53), (0.01712, 0.01751, 0.01743)
    redo = _normaliser(mean, scale, 1, 4, redo=True)
    undo = _normaliser(mean, scale, 1, 4, redo=False)
    assert np.allclose(undo(redo(x)), x, atol=1e-3)
    assert Path(__file__).exists()


@pytest.fixture(scope="module")
def double_norm_case(tmp_path_factory):
    """Calibration data already normalised (float32) while norm_type normalises again."""
    import numpy as np

    from tests.check.factories import MEAN, SCALE

    tmp = tmp_path_factory.mktemp("norm")
    (tmp / "model.onnx").write_bytes(colour_classifier().SerializeToString())
    mean = np.asarray(MEAN, np.float32).reshape(1, 3, 1, 1)
    scale = np.asarray(SCALE, np.float32).reshape(1, 3, 1, 1)
    arrays = [(x.astype(np.float32) - mean) * scale for x in to_nchw(natural_images(24, seed=1))]
    write_bins(tmp / "calib_f32", arrays)
    config = write_config(
        tmp / "mapper.yaml",
        mapper_config(
            cal__calibration_type="max",
            cal__cal_data_type="float32",
            cal__cal_data_dir="./calib_f32",
        ),
    )
    for i, img in enumerate(natural_images(30, seed=7)):
        folder = tmp / "eval" / f"{i % 5}_class"
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"e{i:03d}.png"), img[:, :, ::-1])
    inputs = load_inputs(Request(model=tmp / "model.onnx", config=config, eval_dir=tmp / "eval"))
    analysis, ctx = run_analysis(inputs, sensitivity_samples=4)
    return inputs, analysis, ctx


def test_paired_noise_is_below_the_unpaired_spread(bgr_case) -> None:
    import dataclasses

    inputs, _, ctx = bgr_case
    w = WhatIf(ctx, inputs)
    a = Remedy()
    b = Remedy(settings=SettingsDelta(max_percentile=0.9999))
    paired = w.paired_noise(a, b)
    assert paired is not None and paired >= 0.0
    assert w.paired_noise(a, a) == 0.0
    assert w.settings_for(b) == dataclasses.replace(ctx.settings, max_percentile=0.9999)


def test_config_edits_the_simulator_reads_change_the_settings() -> None:
    from ptqtui.analysis.whatif import settings_after
    from ptqtui.quant.scheme import QuantSettings
    from ptqtui.remedy import ConfigEdit

    base = QuantSettings("max", 0.99995, set_model_output_int8=True)
    cp = "calibration_parameters"
    remedy = Remedy(
        config=(
            ConfigEdit(f"{cp}.calibration_type", "kl", "max"),
            ConfigEdit(f"{cp}.max_percentile", remove=True),
            ConfigEdit(f"{cp}.optimization", "asymmetric", "set_model_output_int8,asymmetric"),
            ConfigEdit("model_parameters.node_info", node="head/Gemm", fields=(("ON", "CPU"),)),
            ConfigEdit("compiler_parameters.compile_mode", "latency", "speed"),
        ),
        settings=SettingsDelta(per_channel=True),
    )
    s = settings_after(base, remedy)
    assert (s.calibration_type, s.max_percentile, s.per_channel) == ("kl", None, True)
    assert s.asymmetric and not s.set_model_output_int8
    assert [(o.node, o.on) for o in s.node_overrides] == [("head/Gemm", "CPU")]
    assert settings_after(base, Remedy()) == base


def test_dropped_samples_recalibrate_without_them(bgr_case) -> None:
    inputs, _, ctx = bgr_case
    w = WhatIf(ctx, inputs)
    names = tuple(g[0].name for g in inputs.calibration.files[:12])
    drop = InputChange(InputFix.DROP_SAMPLES, samples=names)
    assert w.can_emulate(drop)
    assert not w.can_emulate(InputChange(InputFix.DROP_SAMPLES, samples=("nope.bin",)))
    dropped = w.measure(Remedy(inputs=(drop,)))
    fixed_ctx = w._contexts[(drop,)]
    assert fixed_ctx.observation.n_samples == len(inputs.calibration) - 12
    assert dropped.cosine != w.measure(Remedy()).cosine


def test_the_sweep_measurements_are_reused(bgr_case) -> None:
    inputs, analysis, ctx = bgr_case
    w = WhatIf(ctx, inputs, eval_limit=None)
    before = ctx.sim.forward_passes
    for row in analysis.sweep:
        assert row.remedy is not None
        m = w.measure(row.remedy)
        assert (m.cosine, m.top1, m.agreement) == (row.cosine, row.top1, row.agreement)
    assert ctx.sim.forward_passes == before  # nothing measured again


def test_plan_puts_the_measured_swap_first(bgr_case) -> None:
    inputs, analysis, ctx = bgr_case
    swap = Finding("PTQ001", Severity.CRITICAL, "calibration data looks BGR",
                   remedy=Remedy(inputs=(InputChange(InputFix.SWAP_CHANNELS),)))  # fmt: skip
    plan = build_plan([swap], analysis, WhatIf(ctx, inputs), inputs.config)
    first = plan.steps[0]
    assert first.codes == ("PTQ001",) and first.tried
    assert first.before is not None and first.after is not None
    assert first.after.top1 is not None and first.before.top1 is not None
    assert first.after.top1 > first.before.top1 + 0.3
    assert first.measured_on is not None
    assert first.measured_on.pipeline is Pipeline.WRITTEN_THEN_FIXED
    assert first.measured_on.reference is Reference.LABELS


def test_plan_measures_the_double_normalisation_fix(double_norm_case) -> None:
    inputs, analysis, ctx = double_norm_case
    norm = Finding("PTQ002", Severity.CRITICAL, "data normalised, norm_type normalises again",
                   remedy=Remedy(inputs=(InputChange(InputFix.REMOVE_NORMALISATION),)))  # fmt: skip
    plan = build_plan([norm], analysis, WhatIf(ctx, inputs), inputs.config)
    first = plan.steps[0]
    assert first.tried and first.before is not None and first.after is not None
    assert first.before.top1 is not None and first.after.top1 is not None
    assert first.after.top1 > first.before.top1 + 0.3


def test_the_plan_measures_no_calibration_method_the_sweep_measured(bgr_case) -> None:
    inputs, analysis, ctx = bgr_case
    before = set(ctx._measured)
    build_plan([], analysis, WhatIf(ctx, inputs), inputs.config)
    # a measure is remembered by (calibration key, scheme key, ...): the calibration key is
    # (type, percentile, per_channel, asymmetric, bias_correction, ...)
    new = set(ctx._measured) - before
    methods = [
        key
        for key in new
        if not any(key[0][2:5]) and key[1] == ctx.scheme.key()  # no flag, no node changed
    ]
    assert methods == []  # mix, kl, max and the five percentiles came from the sweep


def test_norm_type_no_preprocess_measures_as_the_data_fix(double_norm_case) -> None:
    from ptqtui.remedy import ConfigEdit

    inputs, _, ctx = double_norm_case
    w = WhatIf(ctx, inputs)
    edit = ConfigEdit("input_parameters.norm_type", "no_preprocess", "data_mean_and_scale")
    by_config = w.measure(Remedy(config=(edit,)))
    by_data = w.measure(Remedy(inputs=(InputChange(InputFix.REMOVE_NORMALISATION),)))
    assert by_config is by_data  # one what-if, measured once
    assert by_config.top1 is not None and by_config.top1 > w.measure(Remedy()).top1 + 0.3


def test_emulation_contexts_beyond_the_latest_are_dropped_and_rebuilt_alike(bgr_case) -> None:
    import weakref

    inputs, _, ctx = bgr_case
    w = WhatIf(ctx, inputs)
    swap = Remedy(inputs=(InputChange(InputFix.SWAP_CHANNELS),))
    names = tuple(g[0].name for g in inputs.calibration.files[:6])
    drop = Remedy(inputs=(InputChange(InputFix.DROP_SAMPLES, samples=names),))
    swapped = w.measure(swap)
    first = weakref.ref(w._contexts[input_changes(swap)])
    w.measure(drop)
    assert len(w._contexts) == 1 + EXTRA_CONTEXTS and input_changes(swap) not in w._contexts
    assert first() is None  # nothing else held the swap's simulator
    assert w.measure(swap) is swapped  # its measure stays cached
    again = w.measure(dataclasses.replace(swap, settings=SettingsDelta(per_channel=True)))
    rebuilt = WhatIf(ctx, inputs).measure(
        dataclasses.replace(swap, settings=SettingsDelta(per_channel=True))
    )
    assert (again.cosine, again.top1) == (rebuilt.cosine, rebuilt.top1)
    assert len(w._contexts) == 1 + EXTRA_CONTEXTS and ctx in w._contexts.values()
    fixed = w._contexts[input_changes(swap)]
    assert fixed.sim.prefixes.bytes == 0 and fixed.sim.prefixes.cap == 0  # holds no prefix
