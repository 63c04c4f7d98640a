"""The float model's classes on calibration samples, and its accuracy on labelled evaluation
images (channels as configured and swapped); statistics of those images."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ptqtui.check.facts.missing import MissingFact
from ptqtui.check.facts.probe import AS_GIVEN, COLOR_TYPES, SWAPPED, class_probs
from ptqtui.check.facts.samples import model_feeds, probe_indices, read_samples
from ptqtui.check.facts.stats import ArrayStats, array_stats, channel_axis
from ptqtui.errors import PtqInputError
from ptqtui.progress import check_cancel

if TYPE_CHECKING:
    from ptqtui.check.context import Context
    from ptqtui.inputs.data import LabelledFile

PREDICTION_SAMPLES = 256  # float-model predictions on calibration samples (coverage)
EVAL_SAMPLES = 64  # evaluation images read for statistics


@dataclass(frozen=True, slots=True)
class Predictions:
    """The float model's top-1 classes on calibration samples (classifiers only)."""

    input_names: tuple[str, ...]
    classes: int
    top1: tuple[int, ...]
    confidence: tuple[float, ...]
    files: tuple[str, ...]

    def counts(self) -> list[int]:
        counts = [0] * self.classes
        for c in self.top1:
            counts[c] += 1
        return counts


@dataclass(frozen=True, slots=True)
class EvalProbe:
    """The float model's top-1 accuracy on labelled evaluation images, per variant."""

    input: str
    samples: int
    accuracy: tuple[tuple[str, float], ...]  # (variant, top-1 accuracy), AS_GIVEN first

    def of(self, variant: str) -> float:
        return dict(self.accuracy)[variant]


def compute_predictions(ctx: Context) -> Predictions:
    """Float-model classes on up to PREDICTION_SAMPLES seeded calibration samples."""
    model = ctx.float_model
    pres = ctx.preprocessors
    source = ctx.calibration
    top1: list[int] = []
    conf: list[float] = []
    files: list[str] = []
    classes = 0
    for sample in read_samples(source, probe_indices(source, ctx.seed, PREDICTION_SAMPLES)):
        check_cancel(ctx.cancel)
        probs = class_probs(model.run(model_feeds(pres, sample.arrays)))
        if probs is None:
            raise MissingFact("the model is not a classifier (no N x classes output)")
        classes = probs.shape[1]
        for row in probs:
            top1.append(int(np.argmax(row)))
            conf.append(float(np.max(row)))
            files.append(sample.name)
    if not top1:
        raise MissingFact("no readable calibration sample")
    return Predictions(
        tuple(p.input_name for p in pres), classes, tuple(top1), tuple(conf), tuple(files)
    )


def eval_arrays(ctx: Context) -> Iterator[tuple[LabelledFile, np.ndarray]]:
    """(labelled file, array at input_type_train) for up to EVAL_SAMPLES evaluation images,
    chosen with the seed and read as the correct pipeline would."""
    inputs = ctx.inputs
    if inputs is None or inputs.eval_set is None:
        raise MissingFact(ctx.why_missing("eval_set", "no evaluation data (--eval-dir)"))
    if len(inputs.layouts) != 1:
        raise MissingFact("evaluation statistics need a single-input model")
    from ptqtui.inputs import data as data_module

    eval_set = inputs.eval_set
    lay = inputs.layouts[0]
    mode = inputs.request.read_mode
    rng = np.random.default_rng(ctx.seed)
    count = min(EVAL_SAMPLES, len(eval_set))
    picks = sorted(int(i) for i in rng.choice(len(eval_set), size=count, replace=False))
    for idx in picks:
        item = eval_set.items[idx]
        try:
            if item.file.suffix.lower() in (".npy", ".bin") or lay.color == "featuremap":
                arr = data_module.read_file(item.file, lay, mode)
            else:
                arr = data_module.read_image(item.file, lay, mode, to_color=True)
        # the reader's unreadable-file error is private to it; the loader records it
        except (PtqInputError, data_module.UnreadableFile):
            continue
        yield item, arr


def compute_eval_samples(ctx: Context) -> tuple[ArrayStats, ...]:
    """Per-image statistics of up to EVAL_SAMPLES evaluation images."""
    arrays = list(eval_arrays(ctx))
    lay = ctx.layouts[0]
    stats = [
        array_stats(k, item.file, "image", arr, lay, layout_check=False)
        for k, (item, arr) in enumerate(arrays)
    ]
    if not stats:
        raise MissingFact("no readable evaluation image")
    return tuple(stats)


def compute_eval_probe(ctx: Context) -> EvalProbe:
    """Top-1 accuracy of the float model on labelled evaluation images through the config's
    preprocessing, as the config says and with the channels swapped."""
    model = ctx.float_model
    [pre] = ctx.preprocessors[:1] or [None]
    if pre is None or len(ctx.preprocessors) != 1:
        raise MissingFact("the evaluation probe needs a single-input model")
    spec = ctx.spec_of(pre.input_name)
    if spec.type_train not in COLOR_TYPES:
        raise MissingFact("the evaluation probe varies rgb/bgr inputs only")
    axis = channel_axis(pre.layout)
    right = {AS_GIVEN: 0, SWAPPED: 0}
    count = 0
    inputs = ctx.inputs
    classes = len(inputs.eval_set.classes) if inputs and inputs.eval_set else 0
    for item, arr in eval_arrays(ctx):
        check_cancel(ctx.cancel)
        for variant, x in ((AS_GIVEN, arr), (SWAPPED, np.flip(arr, axis=axis))):
            probs = class_probs(model.run({pre.input_name: pre(x.astype(np.float32))}))
            if probs is None or probs.shape[1] != classes:
                raise MissingFact(
                    f"the model's outputs do not match the evaluation classes ({classes} classes)"
                )
            right[variant] += int(np.argmax(probs[0]) == item.label)
        count += 1
    if count == 0:
        raise MissingFact("no readable evaluation image")
    return EvalProbe(
        input=pre.input_name,
        samples=count,
        accuracy=tuple((v, right[v] / count) for v in (AS_GIVEN, SWAPPED)),
    )
