"""The model-response probe: the float model on the calibration samples as given and on
plausible alternatives (channels swapped, rescaled, normalisation removed or added, the other
layout); which one it prefers, and how clearly."""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ptqtui.check.facts.batchnorm import BatchNormProbe, paired_gain_z, running_stats
from ptqtui.check.facts.first_layer import FirstLayer, first_conv, off_scale
from ptqtui.check.facts.forensics import other_layout_reader
from ptqtui.check.facts.heads import decision_change
from ptqtui.check.facts.missing import MissingFact
from ptqtui.check.facts.samples import model_feeds, probe_indices, read_samples
from ptqtui.check.facts.stats import channel_axis
from ptqtui.memory import release
from ptqtui.progress import check_cancel, report
from ptqtui.remedy import InputFix

if TYPE_CHECKING:
    from ptqtui.check.context import Context
    from ptqtui.check.facts.float_model import FloatModel
    from ptqtui.inputs.data import Sample
    from ptqtui.inputs.preprocess import Preprocessor

PROBE_SAMPLES = 32  # model-response probe: enough for a stable mean confidence, cheap to run
PROBE = "model-response probe"  # what the time budget names when the probe does not fit

# The probe's variants of the calibration samples
AS_GIVEN = "as given"
SWAPPED = "channels swapped"
TIMES_255 = "scaled x255"
DIV_255 = "scaled /255"
NORM_REMOVED = "config normalisation removed"
NORM_ADDED = "ImageNet normalisation added"
OTHER_LAYOUT = "bytes read in the other layout"  # NHWC files read NCHW, or the reverse
# Combinations: two mistakes at once (0..1 floats written NHWC is a common pair); each single
# fix alone leaves garbage, so only the pair explains such data
TIMES_255_OTHER_LAYOUT = "scaled x255, bytes read in the other layout"
DIV_255_OTHER_LAYOUT = "scaled /255, bytes read in the other layout"

# Verdict thresholds on the mean top-1 probability (classifiers). A pipeline mistake moves
# it by tens of points (0.4 -> 0.9 on the demo); sampling noise over 32 samples is a few.
STRONG_MARGIN = 0.15
STRONG_WINS = 0.75  # share of samples on which the alternative is more confident
WEAK_MARGIN = 0.05
WEAK_WINS = 0.6

# The first Conv's RMS this many decades outside the BatchNorm band (4x) says the data is on
# another scale than the training's, whatever the outputs look like (first_layer.py)
OFF_SCALE_DECADES = 0.6


# A paired difference of top-1 probability this many standard errors from zero is a real
# preference, not sampling noise (about p < 0.05 two-sided on 32 samples)
PAIRED_Z = 2.0

IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)
IMAGENET_SCALE_RGB = (1 / (255 * 0.229), 1 / (255 * 0.224), 1 / (255 * 0.225))
COLOR_TYPES = ("rgb", "bgr")

Variants = dict[str, Callable[[np.ndarray], np.ndarray]]

# The data fixes that turn the samples as given into each variant (the finding's remedy)
VARIANT_FIXES: dict[str, tuple[InputFix, ...]] = {
    AS_GIVEN: (),
    SWAPPED: (InputFix.SWAP_CHANNELS,),
    TIMES_255: (InputFix.SCALE_X255,),
    DIV_255: (InputFix.SCALE_DIV255,),
    NORM_REMOVED: (InputFix.REMOVE_NORMALISATION,),
    NORM_ADDED: (InputFix.ADD_NORMALISATION,),
    OTHER_LAYOUT: (),  # the direction (NHWC or NCHW) depends on the declared layout
    TIMES_255_OTHER_LAYOUT: (InputFix.SCALE_X255,),
    DIV_255_OTHER_LAYOUT: (InputFix.SCALE_DIV255,),
}
LAYOUT_VARIANTS = (OTHER_LAYOUT, TIMES_255_OTHER_LAYOUT, DIV_255_OTHER_LAYOUT)


class ProbeStrength(str, enum.Enum):
    """How clearly the float model prefers a variant; equal to its value as a string."""

    STRONG = "strong"
    WEAK = "weak"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class VariantScore:
    """How the float model responds to one variant of the probe samples."""

    variant: str
    mean_top1: float | None  # classifiers: mean top-1 probability
    mean_entropy: float | None  # classifiers: mean entropy (nats)
    # classifiers: share of samples whose top-1 class differs from as given; dense heads:
    # share of the head's positives that differ (heads.py)
    changed: float | None
    wins: float | None  # share of samples more confident than as given
    output_mean: float
    output_std: float
    decisiveness: float | None  # heads in [0, 1]: mean |2p - 1|
    # classifiers: mean per-sample gain of top-1 probability over as given, in standard errors
    paired_z: float | None = None
    first_rms: float | None = None  # median RMS of the first Conv's output (first_layer.py)
    # unfolded BatchNormalization: fall of the deviation from the running statistics against
    # as given, in standard errors (positive: closer to the training's; batchnorm.py)
    bn_gain_z: float | None = None

    def describe(self) -> str:
        if self.mean_top1 is not None:
            text = f"{self.variant}: mean top-1 probability {self.mean_top1:.3f}"
            if self.mean_entropy is not None:
                text += f", entropy {self.mean_entropy:.2f}"
            if self.changed is not None and self.variant != AS_GIVEN:
                text += f", top-1 class changes on {100 * self.changed:.0f} %"
            return text
        text = f"{self.variant}: output mean {self.output_mean:.4g}, std {self.output_std:.4g}"
        if self.decisiveness is not None:
            text += f", decisiveness {self.decisiveness:.3f}"
        if self.changed is not None and self.variant != AS_GIVEN:
            text += f", head positives changed {100 * self.changed:.0f} %"
        if self.first_rms is not None:
            text += f", first conv RMS {self.first_rms:.3g}"
        if self.bn_gain_z is not None:
            text += f", BatchNorm statistics {self.bn_gain_z:+.1f} s.e. closer"
        return text


@dataclass(frozen=True, slots=True)
class ProbeVerdict:
    """Which variant of one input's samples the float model prefers, and by how much."""

    input: str
    classifier: bool
    samples: int
    scores: tuple[VariantScore, ...]  # AS_GIVEN first
    preferred: str
    margin: float  # preferred score minus the as-given score
    strength: ProbeStrength  # a plain "strong" | "weak" | "none" is accepted and converted

    def __post_init__(self) -> None:
        object.__setattr__(self, "strength", ProbeStrength(self.strength))

    def fixes(self, variant: str, declared_layout: str | None) -> tuple[InputFix, ...]:
        """The data fixes that turn the samples as given into `variant`."""
        fixes = VARIANT_FIXES.get(variant, ())
        if variant in LAYOUT_VARIANTS:
            read = InputFix.READ_NCHW if declared_layout == "NHWC" else InputFix.READ_NHWC
            fixes = (*fixes, read)
        return fixes

    def score(self, variant: str) -> VariantScore | None:
        for s in self.scores:
            if s.variant == variant:
                return s
        return None

    @property
    def given(self) -> VariantScore:
        return self.scores[0]

    def prefers(self, variant: str, strength: ProbeStrength | str = ProbeStrength.STRONG) -> bool:
        """The model prefers `variant` at least as clearly as `strength` asks."""
        if self.preferred != variant:
            return False
        if self.strength is ProbeStrength.STRONG:
            return True
        return ProbeStrength(strength) is ProbeStrength.WEAK and self.strength is ProbeStrength.WEAK

    def measured(self, variant: str) -> str:
        """'mean top-1 probability 0.41 as given, 0.93 with channels swapped (...)'."""
        alt = self.score(variant)
        given = self.given
        if alt is None:
            return ""
        if self.classifier and alt.mean_top1 is not None and given.mean_top1 is not None:
            text = (
                f"float model on {self.samples} calibration samples: mean top-1 probability "
                f"{given.mean_top1:.2f} as given, {alt.mean_top1:.2f} {variant}"
            )
            if alt.wins is not None:
                text += f"; more confident on {100 * alt.wins:.0f} % of samples"
            if alt.changed is not None:
                text += f"; top-1 class changes on {100 * alt.changed:.0f} %"
            return text
        return f"{given.describe()}; {alt.describe()}"


def compute_probe(ctx: Context) -> tuple[ProbeVerdict, ...]:
    """One verdict per image-like input, on up to `ctx.probe_samples` seeded samples."""
    model = ctx.float_model
    source = ctx.calibration
    indices = probe_indices(source, ctx.seed, ctx.probe_samples)
    samples = list(read_samples(source, indices))
    if not samples:
        raise MissingFact("no readable calibration sample for the model-response probe")
    with model.keeping_no_prefixes():
        verdicts = _verdicts(ctx, model, samples)
    release()  # the variants' feeds and outputs, allocated and dropped a sample at a time
    if not verdicts:
        raise MissingFact("no input the probe can vary (needs rgb/bgr/gray image inputs)")
    return tuple(verdicts)


def _verdicts(ctx: Context, model: FloatModel, samples: list[Sample]) -> list[ProbeVerdict]:
    """One verdict per input that has variants (see `compute_probe`)."""
    pres = ctx.preprocessors
    verdicts = []
    for pre in pres:
        variants = variants_for(ctx, pre)
        if len(variants) < 2:
            continue
        # each variant's outputs summed up as they come: a 640 detector's maps are 1.6 MB a
        # sample, 32 samples x 9 variants of them were 470 MB held until the verdict
        outputs = {v: OutputSummary() for v in variants}
        first = _first_layer(ctx, pre.input_name)
        rms: dict[str, list[float]] = {v: [] for v in variants}
        norms = _batchnorm(ctx)
        bn: dict[str, list[float]] = {v: [] for v in BN_VARIANTS if v in variants}
        deadline = ctx.deadline
        started = deadline.clock() if deadline is not None else 0.0
        for done, sample in enumerate(samples):
            check_cancel(ctx.cancel)
            if deadline is not None:  # all samples or none: fewer would weaken the verdict
                each = (deadline.clock() - started) / done if done else 0.0
                deadline.require(each * (len(samples) - done), PROBE)
            report(ctx.progress, "model-response probe", done, len(samples), pre.input_name)
            base = model_feeds(pres, sample.arrays)
            x = sample.arrays[pre.input_name]
            given: list[np.ndarray] = []
            for variant, make in variants.items():  # AS_GIVEN first
                feeds = dict(base)
                feeds[pre.input_name] = make(x)
                out = model.run(feeds)
                if variant == AS_GIVEN:
                    given = out
                outputs[variant].add(out, given)
                if first is not None:
                    rms[variant].append(first.rms(feeds[pre.input_name]))
                if norms is not None and variant in bn and len(bn) > 1:
                    bn[variant].append(norms.deviation(feeds))
        medians = {v: float(np.nanmedian(r)) for v, r in rms.items() if r}
        found = verdict(pre.input_name, outputs, len(samples), medians)
        if norms is not None and len(bn) > 1:
            scores = tuple(
                dataclasses.replace(s, bn_gain_z=paired_gain_z(bn[AS_GIVEN], bn[s.variant]))
                if s.variant in bn and s.variant != AS_GIVEN
                else s
                for s in found.scores
            )
            found = dataclasses.replace(found, scores=scores)
        verdicts.append(found)
    return verdicts


# The variants the BatchNormalization statistics are measured on: the channel-order question
# (the scale questions have the first layer); one more full pass a sample each
BN_VARIANTS = (AS_GIVEN, SWAPPED)


def _batchnorm(ctx: Context) -> BatchNormProbe | None:
    """The BatchNormalization probe of a model that kept such nodes unfolded (else None)."""
    stats = running_stats(ctx.graph)
    if not stats:
        return None
    try:
        return BatchNormProbe(ctx.graph, stats)
    except Exception:  # onnxruntime raises its own types
        return None  # the probe goes on without this evidence


def _first_layer(ctx: Context, input_name: str) -> FirstLayer | None:
    """The first-Conv runner of one input (None: no Conv right after the input)."""
    conv = first_conv(ctx.graph, input_name)
    if conv is None:
        return None
    try:
        return FirstLayer(ctx.graph, conv)
    except Exception:  # onnx's extractor and onnxruntime raise their own types
        return None  # the probe goes on with the model's outputs alone


def variants_for(ctx: Context, pre: Preprocessor) -> Variants:
    """The plausible alternatives of one input's data, as float-model inputs."""
    spec = ctx.spec_of(pre.input_name)
    stats = ctx.data_stats_of(pre.input_name)
    if spec.type_train not in (*COLOR_TYPES, "gray", "yuv444"):
        return {}
    axis = channel_axis(pre.layout)
    variants: Variants = {AS_GIVEN: lambda x: pre(x.astype(np.float32))}
    channels = len(stats.channel_means)
    if spec.type_train in COLOR_TYPES and channels == 3:
        variants[SWAPPED] = lambda x: pre(np.flip(x, axis=axis).astype(np.float32))
    if stats.full_scale == 1.0 and stats.max > 0:
        variants[TIMES_255] = lambda x: pre(x.astype(np.float32) * 255.0)
    if stats.max > 2.0 and stats.min >= -1.0:
        variants[DIV_255] = lambda x: pre(x.astype(np.float32) / 255.0)
    other = other_layout_reader(ctx.calibration, pre.input_name)
    if other is not None:
        variants[OTHER_LAYOUT] = lambda x: pre(other(x).astype(np.float32))
        if TIMES_255 in variants:
            variants[TIMES_255_OTHER_LAYOUT] = lambda x: pre(other(x).astype(np.float32) * 255.0)
        if DIV_255 in variants:
            variants[DIV_255_OTHER_LAYOUT] = lambda x: pre(other(x).astype(np.float32) / 255.0)
    normalises = pre.norm_type not in (None, "no_preprocess")
    if normalises:
        variants[NORM_REMOVED] = lambda x: x.astype(np.float32)
    elif (
        ctx.model_normalisation(pre.input_name) is None
        and spec.type_train in COLOR_TYPES
        and channels == 3
        and stats.full_scale == 255.0
    ):
        rgb = spec.type_train == "rgb"
        mean = IMAGENET_MEAN_RGB if rgb else IMAGENET_MEAN_RGB[::-1]
        scale = IMAGENET_SCALE_RGB if rgb else IMAGENET_SCALE_RGB[::-1]
        variants[NORM_ADDED] = _normaliser(mean, scale, axis)
    return variants


def _normaliser(
    mean: tuple[float, ...], scale: tuple[float, ...], axis: int
) -> Callable[[np.ndarray], np.ndarray]:
    m = np.asarray(mean, np.float32)
    s = np.asarray(scale, np.float32)

    def add_norm(x: np.ndarray) -> np.ndarray:
        shape = [1] * x.ndim
        shape[axis] = len(m)
        return (x.astype(np.float32) - m.reshape(shape)) * s.reshape(shape)

    return add_norm


def class_probs(outputs: list[np.ndarray]) -> np.ndarray | None:
    """(N, classes) probabilities from the first classifier-like output, else None."""
    for out in outputs:
        arr = np.asarray(out, dtype=np.float64)
        if arr.ndim == 4 and arr.shape[2:] == (1, 1):
            arr = arr[:, :, 0, 0]
        if arr.ndim != 2 or arr.shape[1] < 2 or not np.all(np.isfinite(arr)):
            continue
        rows = arr.sum(axis=1)
        if arr.min() >= -1e-6 and np.allclose(rows, 1.0, atol=1e-3):
            return np.clip(arr, 0.0, 1.0)
        return _softmax(arr)
    return None


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class OutputSummary:
    """What `verdict` needs of one variant's outputs, added a sample at a time: the class
    probabilities (classifiers: a row a sample), the head's decision change against the same
    sample as given, and the count, mean, spread, range and decisiveness of every output value
    (Chan's pairwise update in float64), so no output map is kept."""

    def __init__(self) -> None:
        self.probs: list[np.ndarray | None] = []  # class_probs of each sample
        self.changes: list[float | None] = []  # decision_change against as given, each sample
        self.count = 0  # finite output values
        self.mean = 0.0
        self.m2 = 0.0  # sum of squared deviations from the mean
        self.low = math.inf
        self.high = -math.inf
        self.spread_sum = 0.0  # sum of |2x - 1| over the finite values
        self.non_finite = 0  # NaN/Inf output values

    @property
    def samples(self) -> int:
        return len(self.probs)

    def add(self, outputs: list[np.ndarray], given: list[np.ndarray]) -> None:
        """One sample's outputs, and the same sample's outputs as given."""
        self.probs.append(class_probs(outputs))
        self.changes.append(decision_change(given, outputs))
        for out in outputs:
            values = np.asarray(out, dtype=np.float64).ravel()
            finite = values[np.isfinite(values)]
            self.non_finite += values.size - finite.size
            n = finite.size
            if n == 0:
                continue
            mean = float(finite.mean())
            m2 = float(np.square(finite - mean).sum())
            total = self.count + n
            delta = mean - self.mean
            self.mean += delta * n / total
            self.m2 += m2 + delta * delta * self.count * n / total
            self.count = total
            self.low = min(self.low, float(finite.min()))
            self.high = max(self.high, float(finite.max()))
            self.spread_sum += float(np.abs(2.0 * finite - 1.0).sum())

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.count) if self.count else math.nan

    @property
    def finite_mean(self) -> float:
        return self.mean if self.count else math.nan

    @property
    def decisiveness(self) -> float | None:
        """Mean |2x - 1| when every finite value lies in [0, 1] (a score head), else None."""
        bounded = self.count > 0 and self.low >= 0.0 and self.high <= 1.0
        return self.spread_sum / self.count if bounded else None

    def changed(self) -> float | None:
        """Mean decision change over the samples (None: the head has no score output)."""
        known = [c for c in self.changes if c is not None]
        return float(np.mean(known)) if known else None


def summarise(outputs: dict[str, list[list[np.ndarray]]]) -> dict[str, OutputSummary]:
    """Every variant's summary from its kept outputs (AS_GIVEN first; tests, small models)."""
    given = outputs[AS_GIVEN]
    summaries = {}
    for v, outs in outputs.items():
        summary = OutputSummary()
        for g, o in zip(given, outs, strict=True):
            summary.add(o, g)
        summaries[v] = summary
    return summaries


def verdict(
    input_name: str,
    outputs: dict[str, OutputSummary],
    samples: int,
    first_rms: dict[str, float] | None = None,
) -> ProbeVerdict:
    """The verdict from every variant's output summary (AS_GIVEN first) and first-layer RMS."""
    rms = first_rms or {}
    probs = {v: o.probs for v, o in outputs.items()}
    if all(p is not None for plist in probs.values() for p in plist):
        stacked = {
            v: np.concatenate([p for p in plist if p is not None]) for v, plist in probs.items()
        }
        return _classifier_verdict(input_name, stacked, outputs, samples, rms)
    scores = []
    for v, o in outputs.items():
        scores.append(
            VariantScore(
                variant=v,
                mean_top1=None,
                mean_entropy=None,
                # dense heads: the share of the head's positives the variant changes (heads.py)
                changed=o.changed(),
                wins=None,
                output_mean=o.finite_mean,
                output_std=o.std,
                decisiveness=o.decisiveness,
                first_rms=rms.get(v),
            )
        )
    # Heads that are not classifiers: no generic measure says which input is right (scaled-up
    # inputs saturate a sigmoid head, which looks "decisive"), so the statistics are reported
    # and the verdict stays undetermined; the rules then rely on the data statistics.
    # fewest fixes first; between equals, the training's normalisation over a bare rescale
    scale = _scale_choice(
        scores, lambda s: (-len(VARIANT_FIXES.get(s.variant, ())), s.variant == NORM_ADDED)
    )
    if scale is not None:
        return ProbeVerdict(
            input_name, False, samples, tuple(scores), scale, 0.0, ProbeStrength.STRONG
        )
    return ProbeVerdict(
        input_name, False, samples, tuple(scores), AS_GIVEN, 0.0, ProbeStrength.NONE
    )


def _scale_choice(
    scores: list[VariantScore], rank: Callable[[VariantScore], tuple[float, ...]]
) -> str | None:
    """The best-ranked variant that brings the first Conv back into the BatchNorm band, when
    the data as given puts it far outside (None: the scale is right or cannot be told)."""
    given = off_scale(scores[0].first_rms)
    if given is None or given < OFF_SCALE_DECADES:
        return None
    inside = [s for s in scores[1:] if off_scale(s.first_rms) == 0.0 and s.variant != SWAPPED]
    inside = [s for s in inside if s.variant not in LAYOUT_VARIANTS or _layout_only(s, scores)]
    if not inside:
        return None
    return max(inside, key=rank).variant


def _layout_only(candidate: VariantScore, scores: list[VariantScore]) -> bool:
    """A layout combination counts only when the model's outputs prefer it (classifiers)."""
    return candidate.paired_z is not None and candidate.paired_z >= PAIRED_Z


def _classifier_verdict(
    input_name: str,
    stacked: dict[str, np.ndarray],
    outputs: dict[str, OutputSummary],
    samples: int,
    rms: dict[str, float],
) -> ProbeVerdict:
    given = stacked[AS_GIVEN]
    given_top = given.max(axis=1)
    given_cls = given.argmax(axis=1)
    scores = []
    for v, p in stacked.items():
        top = p.max(axis=1)
        diff = top - given_top
        spread = float(diff.std(ddof=1)) if diff.size > 1 else 0.0
        z = float(diff.mean() / (spread / math.sqrt(diff.size))) if spread > 0 else 0.0
        entropy = float(np.mean(-np.sum(p * np.log(np.clip(p, 1e-12, 1.0)), axis=1)))
        scores.append(
            VariantScore(
                variant=v,
                mean_top1=float(top.mean()),
                mean_entropy=entropy,
                changed=float(np.mean(p.argmax(axis=1) != given_cls)),
                wins=float(np.mean(top > given_top + 1e-6)),
                output_mean=outputs[v].finite_mean if not outputs[v].non_finite else math.nan,
                output_std=outputs[v].std if not outputs[v].non_finite else math.nan,
                decisiveness=None,
                paired_z=z,
                first_rms=rms.get(v),
            )
        )
    # a confident answer on off-scale input is no evidence (a colour classifier stays sure of
    # itself on raw pixels): when the first layer says the scale is wrong, that decides.
    # Between fixes the first layer accepts alike, the training's normalisation in the config
    # ranks above dividing the data by 255 unless the model is far surer without it: the
    # board feeds pixels, so a pixel model's scale belongs in its preprocessing (measured:
    # EfficientNet-Lite1 missing_norm, neither gives the training's (x - 127) / 128; ImageNet's
    # is the closer, 1.11 vs 1.16 relative RMS)
    scale = _scale_choice(
        scores,
        lambda s: ((s.mean_top1 or 0.0) + (STRONG_MARGIN if s.variant == NORM_ADDED else 0.0),),
    )
    if scale is not None:
        chosen = next(s for s in scores if s.variant == scale)
        margin = (chosen.mean_top1 or 0.0) - (scores[0].mean_top1 or 0.0)
        return ProbeVerdict(
            input_name, True, samples, tuple(scores), scale, float(margin), ProbeStrength.STRONG
        )
    best = max(scores, key=lambda s: s.mean_top1 or 0.0)
    margin = (best.mean_top1 or 0.0) - (scores[0].mean_top1 or 0.0)
    strength = ProbeStrength.NONE
    if best.variant != AS_GIVEN:
        wins = best.wins or 0.0
        if margin >= STRONG_MARGIN and wins >= STRONG_WINS:
            strength = ProbeStrength.STRONG
        elif margin >= WEAK_MARGIN and wins >= WEAK_WINS:
            strength = ProbeStrength.WEAK
    preferred = best.variant if strength is not ProbeStrength.NONE else AS_GIVEN
    return ProbeVerdict(
        input_name, True, samples, tuple(scores), preferred, float(margin), strength
    )
