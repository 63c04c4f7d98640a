"""A prepared, realistic Diagnosis for front-end tests (TUI, report writers): no onnxruntime.

It reads like a diagnosis of the demo's `bgr_swap` scenario: a critical channel swap, a
calibration step worth taking, a sensitive tail. Paths are relative and there are no
clocks, so snapshots and golden files are stable.
"""

from __future__ import annotations

from ptqtui.advise.results import Measure, Plan, PlanStep
from ptqtui.analysis.results import (
    Analysis,
    CurvePoint,
    MethodThreshold,
    NodeRow,
    Quality,
    Similarity,
    SweepRow,
    Timing,
)
from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.diagnosis import (
    DataSummary,
    Diagnosis,
    FileRef,
    InputSummary,
    ModelSummary,
    Skipped,
)
from ptqtui.remedy import DType, InputChange, InputFix, NodeChange, Remedy, SettingsDelta

_OPS = [
    ("stem/Conv", "Conv"),
    ("block1/dw/Conv", "Conv"),
    ("block1/pw/Conv", "Conv"),
    ("block1/Add", "Add"),
    ("block2/dw/Conv", "Conv"),
    ("block2/pw/Conv", "Conv"),
    ("block2/Concat", "Concat"),
    ("block3/dw/Conv", "Conv"),
    ("block3/pw/Conv", "Conv"),
    ("head/GlobalAveragePool", "GlobalAveragePool"),
    ("head/Gemm", "Gemm"),
    ("head/Softmax", "Softmax"),
]


def _node(i: int, name: str, op: str) -> NodeRow:
    cos = 0.9995 - 0.0009 * i - (0.004 if name == "head/Gemm" else 0.0)
    sens = 0.9999 - (0.0062 if name == "head/Gemm" else 0.00004 * i)
    dw = "/dw/" in name
    return NodeRow(
        name=name,
        op_type=op,
        output=f"{name}_output_0",
        dtype="int8",
        placement="BPU",
        similarity=Similarity(
            cosine=round(cos, 6),
            mse=round(0.0004 * (i + 1), 6),
            mre=round(0.011 * (i + 1), 6),
            sqnr_db=round(33.0 - 1.4 * i, 3),
            chebyshev=round(0.05 * (i + 1), 4),
        ),
        sensitivity_cosine=round(sens, 6),
        sensitivity_weights=round(sens + 0.00002, 6) if op in ("Conv", "Gemm") else None,
        sensitivity_activations=round(sens + 0.00001, 6),
        int16_gain=0.0051 if name == "head/Gemm" else round(0.00003 * i, 6),
        act_min=0.0 if op != "Gemm" else -7.5,
        act_max=round(6.0 + i, 3),
        act_p9999=round(3.0 + 0.5 * i, 3),
        threshold=round(3.2 + 0.5 * i, 3),
        weight_range_ratio=38.5 if dw else (2.1 if op in ("Conv", "Gemm") else None),
        histogram=_histogram(i),
        topo_index=i,
        histogram_top=round(6.4 + i, 3),
        thresholds=_thresholds(i),
        weight_channel_max=_channels(i, dw) if op in ("Conv", "Gemm") else (),
        weight_channels=len(_channels(i, dw)) if op in ("Conv", "Gemm") else 0,
        weight_tensor_max=max(_channels(i, dw)) if op in ("Conv", "Gemm") else None,
    )


def _histogram(i: int) -> tuple[int, ...]:
    """A long-tailed |x| histogram: most values near 0, a thin tail to max (64 bins)."""
    return tuple(int(40000 * 0.82**k) + (1 if k in (50 + i % 5, 63) else 0) for k in range(64))


def _thresholds(i: int) -> tuple[MethodThreshold, ...]:
    top = round(6.0 + i, 3)
    values = (
        ("max", top),
        ("max_percentile 0.99999", round(0.9 * top, 3)),
        ("max_percentile 0.99995", round(0.7 * top, 3)),
        ("max_percentile 0.9999", round(3.2 + 0.5 * i, 3)),
        ("max_percentile 0.9995", round(0.35 * top, 3)),
        ("max_percentile 0.999", round(0.3 * top, 3)),
        ("kl", round(0.45 * top, 3)),
    )
    return tuple(MethodThreshold(m, t, m == "max_percentile 0.9999") for m, t in values)


def _channels(i: int, depthwise: bool) -> tuple[float, ...]:
    """Per-channel |w| max: depthwise convs have a few wide channels (the PTQ301 picture)."""
    n = 32 if depthwise else 16
    return tuple(
        round((3.85 if depthwise and c in (3, 17) else 0.1 + 0.004 * ((c * 7 + i) % 11)), 4)
        for c in range(n)
    )


def prepared_diagnosis() -> Diagnosis:
    nodes = tuple(_node(i, name, op) for i, (name, op) in enumerate(_OPS))
    curve = tuple(
        CurvePoint(i, n.name, round(1.0 - 0.0011 * i - (0.004 if i >= 10 else 0), 6))
        for i, n in enumerate(nodes)
    )
    sweep = (
        SweepRow("default", (("calibration_type", "default"),), 0.9871, 0.873, 0.951, 0.0006,
                 chosen=True, note="Select kl method."),
        SweepRow("mix", (("calibration_type", "mix"),), 0.9880, 0.877, 0.955, 0.0006),
        SweepRow("kl", (("calibration_type", "kl"),), 0.9868, 0.870, 0.950, 0.0007),
        SweepRow("max, max_percentile 0.99999",
                 (("calibration_type", "max"), ("max_percentile", "0.99999")),
                 0.9790, 0.853, 0.931, 0.0008),
        SweepRow("max, max_percentile 0.99995",
                 (("calibration_type", "max"), ("max_percentile", "0.99995")),
                 0.9902, 0.880, 0.961, 0.0006),
        SweepRow("max, max_percentile 0.9999",
                 (("calibration_type", "max"), ("max_percentile", "0.9999")),
                 0.9911, 0.883, 0.963, 0.0006),
        SweepRow("max, max_percentile 0.9995",
                 (("calibration_type", "max"), ("max_percentile", "0.9995")),
                 0.9893, 0.877, 0.957, 0.0007),
        SweepRow("max, max_percentile 0.999",
                 (("calibration_type", "max"), ("max_percentile", "0.999")),
                 0.9850, 0.867, 0.944, 0.0007),
        SweepRow("max 0.9999 + per_channel",
                 (("calibration_type", "max"), ("max_percentile", "0.9999"),
                  ("per_channel", "true")),
                 0.9958, 0.893, 0.981, 0.0005),
        SweepRow("max 0.9999 + per_channel + asymmetric",
                 (("calibration_type", "max"), ("max_percentile", "0.9999"),
                  ("per_channel", "true"), ("asymmetric", "true")),
                 0.9957, 0.893, 0.980, 0.0005),
    )  # fmt: skip
    quality = Quality(
        output_cosine=0.9871,
        top1_float=0.967,
        top1_quant=0.873,
        top1_agreement=0.880,
        loss_points=9.4,
        band="large",
        basis="top-1 accuracy on 300 labelled images",
        samples=300,
    )
    analysis = Analysis(
        scheme="int8 per-tensor, calibration default (kl chosen)",
        quality=quality,
        nodes=nodes,
        curve=curve,
        sweep=sweep,
        log=("Select kl method.",),
        timings=(
            Timing("loading inputs", 0.4),
            Timing("calibration", 2.1, 100),
            Timing("node table", 0.6, 8),
            Timing("sensitivity", 3.9, 96),
            Timing("method sweep", 6.2, 480),
        ),
        notes=("sensitivity measured on 8 samples (seed 0)",),
    )
    findings = (
        Finding(
            code="PTQ001",
            severity=Severity.CRITICAL,
            message=(
                "calibration/0001.bin..0100.bin look BGR while input_type_train is rgb: "
                "with channels swapped the float model is more confident on 96 of 100 samples "
                "(mean top-1 probability 0.62 -> 0.94)"
            ),
            evidence=(
                Evidence("mean top-1 probability, as given", "0.62", "about 0.94", "calibration/"),
                Evidence("mean of channel 0 (R) vs channel 2 (B)", "98.1 < 131.4",
                         "R above B for natural images", "calibration/0007.bin"),
                Evidence("input_type_train", "rgb", None, "config.yaml line 14"),
            ),
            fix="Write the calibration files in RGB order (cv2.cvtColor(img, cv2.COLOR_BGR2RGB))"
            " or set input_type_train to bgr if the model was trained on BGR.",
            remedy=Remedy(inputs=(InputChange(InputFix.SWAP_CHANNELS, "images"),)),
            measured="top-1 87.3 % -> 96.0 % with channels swapped back",
            related=("calibration/0001.bin",),
        ),
        Finding(
            code="PTQ301",
            severity=Severity.MAJOR,
            message="depthwise weights of block1/dw/Conv span 38.5x between channels; "
            "per_channel raises output cosine 0.9911 -> 0.9958",
            evidence=(Evidence("widest / median channel |w| max", "38.5", "< 8",
                               "node block1/dw/Conv"),),
            fix="Quantize weights per channel.",
            remedy=Remedy(settings=SettingsDelta(per_channel=True)),
            measured="cosine 0.9911 -> 0.9958, top-1 88.3 % -> 89.3 %",
            related=("block1/dw/Conv", "block2/dw/Conv", "block3/dw/Conv"),
        ),
        Finding(
            code="PTQ304",
            severity=Severity.MINOR,
            message="the output Gemm loses most: int16 on head/Gemm gains 0.0051 cosine",
            evidence=(Evidence("output cosine, only head/Gemm quantized", "0.9937", "> 0.999",
                               "node head/Gemm"),),
            fix="Run head/Gemm in int16 (node_info InputType/OutputType int16).",
            remedy=Remedy(
                settings=SettingsDelta(nodes=(NodeChange("head/Gemm", dtype=DType.INT16),))
            ),
            measured="cosine 0.9958 -> 0.9981",
            related=("head/Gemm",),
        ),
        Finding(
            code="PTQ104",
            severity=Severity.INFO,
            message="100 calibration samples: the recommended amount",
        ),
    )  # fmt: skip
    steps = (
        PlanStep(
            1, "pipeline", "Feed RGB calibration data",
            "Swap the calibration files' channels to RGB, as input_type_train declares.",
            "The model was trained on RGB; BGR data puts every activation range off.",
            Severity.CRITICAL,
            evidence=("swap probe: confidence 0.62 -> 0.94 on 96 % of samples",),
            before=Measure(0.9871, 0.873), after=Measure(0.9950, 0.960),
            codes=("PTQ001",), tried=True,
        ),
        PlanStep(
            2, "calibration", "Per-channel weights",
            "Set per_channel: true with calibration_type max, max_percentile 0.9999.",
            "Depthwise weights span 38.5x between channels; per-tensor scales waste levels.",
            Severity.MAJOR,
            evidence=("sweep: max 0.9999 0.9911, + per_channel 0.9958 (noise 0.0005)",),
            before=Measure(0.9950, 0.960), after=Measure(0.9972, 0.963),
            yaml_change="calibration_parameters:\n  calibration_type: max\n"
            "  max_percentile: 0.9999\n  per_channel: true",
            codes=("PTQ301",), tried=True,
        ),
        PlanStep(
            3, "precision", "head/Gemm in int16",
            "Set node_info head/Gemm InputType int16.",
            "The output layer is the most sensitive node.",
            Severity.MINOR,
            before=Measure(0.9972, 0.963), after=Measure(0.9986, 0.965),
            yaml_change="calibration_parameters:\n  node_info:\n    head/Gemm:\n"
            "      InputType: int16",
            codes=("PTQ304",), tried=True,
        ),
    )  # fmt: skip
    plan = Plan(
        route="large loss (9.4 points of top-1 on 300 labelled images): pipeline and config first",
        target_cosine=0.99,
        steps=steps,
        reached=Measure(0.9986, 0.965),
        config_diff="--- config.yaml\n+++ config.yaml (ptqtui)\n@@ -20,3 +20,6 @@\n"
        " calibration_parameters:\n   cal_data_dir: ./calibration\n"
        "-  calibration_type: default\n+  calibration_type: max\n+  max_percentile: 0.9999\n"
        "+  per_channel: true\n",
        patched_config=None,
    )
    return Diagnosis(
        version="0.1.0",
        seed=0,
        title="demo: bgr_swap",
        files=(
            FileRef("model", "demo_data/model.onnx", "ab" * 32),
            FileRef("config", "demo_data/scenarios/bgr_swap/config.yaml", "cd" * 32),
            FileRef("calibration", "demo_data/scenarios/bgr_swap/calibration", None,
                    "100 samples"),
            FileRef("evaluation", "demo_data/eval", None, "300 images, 10 classes"),
        ),
        model=ModelSummary(
            name="model.onnx",
            opset=13,
            inputs=(InputSummary("images", "1x3x64x64", "float32", "NCHW", "rgb", "rgb",
                                 "data_mean_and_scale", (123.675, 116.28, 103.53),
                                 (0.01712, 0.01751, 0.01743), "uint8"),),
            outputs=("probs",),
            nodes=len(nodes) + 6,
            quantized_nodes=len(nodes),
            op_counts=(("Conv", 7), ("Relu", 6), ("Add", 1), ("Concat", 1), ("Gemm", 1)),
            normalisation=(),
        ),
        config_generation="makertbin",
        calibration=DataSummary("demo_data/scenarios/bgr_swap/calibration", 100, (".bin",),
                                (), ()),
        evaluation=DataSummary("demo_data/eval", 300, ("10 classes",), (), ()),
        findings=findings,
        skipped=(Skipped("PTQ004", "needs --raw-dir with the raw images behind the .bin files"),),
        notes=("node names taken from the model",),
        analysis=analysis,
        plan=plan,
    )  # fmt: skip


# 32x32 RGB PNGs (made once with ptqtui.analysis.thumbnails.encode_png, kept as text so the
# golden files do not depend on the PNG encoder): a scene as BGR data shows it, fixed, black.
_SCENE_AS_GIVEN = (
    "iVBORw0KGgoAAAANSUhEUgAAACAAAAAgCAIAAAD8GO2jAAAAu0lEQVRIDbXBMRFFIQwEwDtfpykNFBEBRqKDIl5i4r"
    "f/DR0z2WWFoRMrDJ1YYejECkMnVhg6scLwamvhzzgTF1YYnmwtXMaZ+GKF4cnWwmWciS9WGJ5sLVzGmfhiheHJ1sJl"
    "nIkvVhiebC1cxpn4YoXh1dbCn3EmLqwwdGKFoRPliU6UJzpRnuhEeaIT5YlOlCc6UZ7oRHmiE+WJTpQnOlGe6ER5oh"
    "PliU6UJzpRnuhEeaIT5YlOlCc6/QD+x0wD/TK0tQAAAABJRU5ErkJggg=="
)
_SCENE_SWAPPED = (
    "iVBORw0KGgoAAAANSUhEUgAAACAAAAAgCAIAAAD8GO2jAAAAu0lEQVRIDbXBMRFFIQwEwDtfpykNFBEBRqKDIl5i4r"
    "f/DR0z2aVFoRMtCp1oUehEi0InWhQ60aLwamnjzzwDF1oUnixtXOYZ+KJF4cnSxmWegS9aFJ4sbVzmGfiiReHJ0sZl"
    "noEvWhSeLG1c5hn4okXh1dLGn3kGLrQodKJFoRPThU5MFzoxXejEdKET04VOTBc6MV3oxHShE9OFTkwXOjFd6MR0oR"
    "PThU5MFzoxXejEdKET04VOTBc6/QAE2kwDXCh4RgAAAABJRU5ErkJggg=="
)
_BLACK = (
    "iVBORw0KGgoAAAANSUhEUgAAACAAAAAgCAIAAAD8GO2jAAAAQElEQVRIDbXBAQEAAABAIP6ftkLJTGYyk5nMZCYzmc"
    "lMZjKTmcxkJjOZyUxmMpOZzGQmM5nJTGYyk5nMZCYzmQXUMAAh/li15wAAAABJRU5ErkJggg=="
)


def prepared_with_pictures() -> Diagnosis:
    """The prepared Diagnosis plus findings whose pictures the TUI and reports draw: a long
    tail (PTQ302), abnormal samples (PTQ103) and the channel swap's samples, with thumbnails."""
    import dataclasses

    from ptqtui.analysis.results import SampleThumbnail
    from ptqtui.remedy import DType, InputChange, InputFix, NodeChange, Remedy, SettingsDelta

    base = prepared_diagnosis()
    swap = dataclasses.replace(
        base.findings[0], remedy=Remedy(inputs=(InputChange(InputFix.SWAP_CHANNELS, "images"),))
    )
    weights = dataclasses.replace(
        base.findings[1], remedy=Remedy(settings=SettingsDelta(per_channel=True))
    )
    int16 = SettingsDelta(nodes=(NodeChange("head/Gemm", dtype=DType.INT16),))
    tail_node = dataclasses.replace(base.findings[2], remedy=Remedy(settings=int16))
    tail = Finding(
        code="PTQ302",
        severity=Severity.MINOR,
        message="block1/Add: max |x| 9.0 is 2.1x its 99.99th percentile 4.3; max calibration "
        "spends levels on a few outliers",
        evidence=(Evidence("max / 99.99 % |x|", "2.1", "< 1.5", "node block1/Add"),),
        related=("block1/Add",),
        remedy=Remedy(settings=SettingsDelta(calibration_type="max", max_percentile=0.9999)),
    )
    dark = Finding(
        code="PTQ103",
        severity=Severity.MINOR,
        message="2 of 100 calibration samples are abnormal: 2 black (0017.bin, 0018.bin)",
        evidence=(Evidence("black samples", "2", "0", "0017.bin, 0018.bin"),),
        remedy=Remedy(
            inputs=(InputChange(InputFix.DROP_SAMPLES, "images", ("0017.bin", "0018.bin")),)
        ),
    )
    thumbs = (
        SampleThumbnail("PTQ001", "images", "0001.bin", "as given", _SCENE_AS_GIVEN, 32, 32),
        SampleThumbnail("PTQ001", "images", "0001.bin", "swap channels", _SCENE_SWAPPED, 32, 32,
                        InputFix.SWAP_CHANNELS),
        SampleThumbnail("PTQ103", "images", "0017.bin", "as given", _BLACK, 32, 32),
        SampleThumbnail("PTQ103", "images", "0018.bin", "as given", _BLACK, 32, 32),
    )  # fmt: skip
    findings = (swap, weights, tail_node, tail, dark, *base.findings[3:])
    return dataclasses.replace(base, findings=findings, thumbnails=thumbs)
