"""The facts rules read, each computed once, on first use, from the loaded inputs.

A fact that cannot be computed (no config, no calibration data, not a classifier ...) raises
`MissingFact(reason)`; the engine then reports the rules that need it as skipped, with the
reason. Samples are streamed: per-sample statistics are small, and the model-response probe
reads at most `PROBE_SAMPLES` samples, chosen with the request's seed.

Facts (names for a rule's `needs`): config, graph, specs, layouts, preprocessors, calibration,
sample_stats, data_stats, probe (the model-response probe: the float model on the samples as
given and on plausible alternatives), predictions, eval_samples, eval_stats, eval_probe
(accuracy on labelled evaluation images, channels as configured and swapped), order_test,
raw_dir, resize_matches, analysis.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ptqtui.errors import PtqInputError
from ptqtui.ortlog import session_options
from ptqtui.progress import ProgressCallback, check_cancel, report

if TYPE_CHECKING:
    from ptqtui.inputs.config import InputSpec, MapperConfig
    from ptqtui.inputs.data import InputLayout, SampleSource
    from ptqtui.inputs.model import InputNormalisation, ModelGraph
    from ptqtui.inputs.preprocess import Preprocessor
    from ptqtui.inputs.resolve import LoadedInputs

PROBE_SAMPLES = 32  # model-response probe: enough for a stable mean confidence, cheap to run
MAX_STATS_SAMPLES = 2000  # per-sample statistics: beyond this the set is only counted
LAYOUT_SAMPLES = 32  # samples whose two layout readings are compared
PREDICTION_SAMPLES = 256  # float-model predictions on calibration samples (coverage)
EVAL_SAMPLES = 64  # evaluation images read for statistics
RESIZE_SAMPLES = 16  # raw images re-resized for the interpolation forensics
ORDER_TEST_SAMPLES = 512  # calibration samples in the channel-order test (pairwise distances)
ORDER_TEST_GAIN = 0.5  # reversed at least twice as close to the evaluation data: reversed
THUMB = 8  # thumbnails are THUMB x THUMB per channel (near-duplicate search)

# The probe's variants of the calibration samples
AS_GIVEN = "as given"
SWAPPED = "channels swapped"
TIMES_255 = "scaled x255"
DIV_255 = "scaled /255"
NORM_REMOVED = "config normalisation removed"
NORM_ADDED = "ImageNet normalisation added"
OTHER_LAYOUT = "bytes read in the other layout"  # NHWC files read NCHW, or the reverse

# Verdict thresholds on the mean top-1 probability (classifiers). A pipeline mistake moves
# it by tens of points (0.4 -> 0.9 on the demo); sampling noise over 32 samples is a few.
STRONG_MARGIN = 0.15
STRONG_WINS = 0.75  # share of samples on which the alternative is more confident
WEAK_MARGIN = 0.05
WEAK_WINS = 0.6

IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)
IMAGENET_SCALE_RGB = (1 / (255 * 0.229), 1 / (255 * 0.224), 1 / (255 * 0.225))
COLOR_TYPES = ("rgb", "bgr")


class MissingFact(Exception):
    """A fact a rule needs cannot be computed; the rule is skipped with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------- fact types


@dataclass(frozen=True, slots=True)
class ArrayStats:
    """One input's array of one calibration sample."""

    sample: int  # position in the source's file list
    path: Path
    kind: str  # "bin" | "npy" | "image"
    dtype: str
    min: float
    max: float
    mean: float
    std: float
    channel_means: tuple[float, ...]  # in the input's layout's channel order
    nonfinite: int
    integral: bool  # every value is a whole number
    low_share: tuple[float, float]  # share at <= 2 % of full scale, for full scale 1 and 255
    high_share: tuple[float, float]  # share at >= 98 % of full scale, for 1 and 255
    smoothness: tuple[float, float] | None  # (as read, read in the other layout); bin/npy only
    vivid: tuple[float, ...] = ()  # chromaticity (x3) of the most saturated 10 % of pixels

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True, slots=True)
class DataStats:
    """One input's values over the whole set."""

    input: str
    count: int
    min: float
    max: float
    mean: float
    std: float
    channel_means: tuple[float, ...]
    channel_stds: tuple[float, ...]
    nonfinite: int
    integral: bool
    negative: bool

    @property
    def full_scale(self) -> float | None:
        """1.0 for 0..1 data, 255.0 for pixel data, None for anything else."""
        if self.min < -0.01:
            return None
        if self.max <= 1.0 + 1e-3:
            return 1.0
        if self.max <= 255.0 + 1e-3:
            return 255.0
        return None

    @property
    def max_abs(self) -> float:
        return max(abs(self.min), abs(self.max))

    def describe(self) -> str:
        chans = " ".join(f"{m:.3g}" for m in self.channel_means)
        return f"range {self.min:.4g}..{self.max:.4g}, mean {self.mean:.4g}, std {self.std:.4g}" + (
            f", channel means {chans}" if len(self.channel_means) > 1 else ""
        )


@dataclass(frozen=True, slots=True)
class SampleSet:
    """Per-sample statistics of every input, plus thumbnails for near-duplicate search."""

    inputs: tuple[str, ...]
    stats: tuple[tuple[ArrayStats, ...], ...]  # [input][sample]
    thumbs: tuple[np.ndarray, ...]  # [input] -> (samples, THUMB*THUMB*C) float32
    total: int  # readable samples in the source (may exceed the stats kept)
    unreadable: tuple[tuple[str, str], ...]  # (file, problem)

    def of(self, input_name: str) -> tuple[ArrayStats, ...]:
        return self.stats[self.inputs.index(input_name)]


@dataclass(frozen=True, slots=True)
class VariantScore:
    """How the float model responds to one variant of the probe samples."""

    variant: str
    mean_top1: float | None  # classifiers: mean top-1 probability
    mean_entropy: float | None  # classifiers: mean entropy (nats)
    changed: float | None  # share of samples whose top-1 class differs from as given
    wins: float | None  # share of samples more confident than as given
    output_mean: float
    output_std: float
    decisiveness: float | None  # heads in [0, 1]: mean |2p - 1|

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
    strength: str  # "strong" | "weak" | "none"

    def score(self, variant: str) -> VariantScore | None:
        for s in self.scores:
            if s.variant == variant:
                return s
        return None

    @property
    def given(self) -> VariantScore:
        return self.scores[0]

    def prefers(self, variant: str, strength: str = "strong") -> bool:
        if self.preferred != variant:
            return False
        return self.strength == "strong" or (strength == "weak" and self.strength == "weak")

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


@dataclass(frozen=True, slots=True)
class ResizeMatch:
    """Which interpolation reproduces one `.bin` file from its raw image."""

    file: str
    raw: str
    errors: tuple[tuple[str, float], ...]  # interpolation -> relative RMS residual, best first

    @property
    def best(self) -> str:
        return self.errors[0][0]

    def error(self, method: str) -> float:
        return dict(self.errors)[method]


# ---------------------------------------------------------------- the context


class Context:
    """Lazy facts over the loaded inputs (or, for `lint`, a config and maybe a model)."""

    def __init__(
        self,
        inputs: LoadedInputs | None = None,
        *,
        config: MapperConfig | None = None,
        graph: ModelGraph | None = None,
        missing: dict[str, str] | None = None,
        seed: int = 0,
        probe_samples: int = PROBE_SAMPLES,
        analysis: Any = None,
        sim: Any = None,
    ) -> None:
        self.inputs = inputs
        self._analysis = analysis
        self._sim = sim
        self._config = inputs.config if inputs is not None else config
        self._graph = inputs.graph if inputs is not None else graph
        self._missing = dict(inputs.missing if inputs is not None else {})
        self._missing.update(missing or {})
        self.seed = inputs.request.seed if inputs is not None else seed
        self.probe_samples = probe_samples
        self._cache: dict[str, Any] = {}
        self._session: Any = None
        # set by the engine: long facts report progress and stop between samples
        self.progress: ProgressCallback | None = None
        self.cancel: threading.Event | None = None

    @classmethod
    def from_inputs(cls, inputs: LoadedInputs, **kwargs: Any) -> Context:
        return cls(inputs, **kwargs)

    # -- access helpers

    def _fact(self, name: str, compute: Callable[[], Any]) -> Any:
        if name in self._cache:
            value = self._cache[name]
            if isinstance(value, MissingFact):
                raise value
            return value
        try:
            value = compute()
        except MissingFact as missing:
            self._cache[name] = missing
            raise
        except PtqInputError as exc:
            missing = MissingFact(exc.one_line())
            self._cache[name] = missing
            raise missing from exc
        self._cache[name] = value
        return value

    def require(self, fact: str) -> Any:
        """The fact named `fact` (a `needs` entry); MissingFact if it cannot be had."""
        if fact.startswith("_") or not hasattr(type(self), fact):
            raise MissingFact(f"unknown fact {fact!r}")
        return getattr(self, fact)

    def maybe(self, fact: str) -> Any:
        """The fact, or None when it is missing."""
        try:
            return self.require(fact)
        except MissingFact:
            return None

    def _why_missing(self, key: str, default: str) -> str:
        return self._missing.get(key, default)

    # -- config and model

    @property
    def config(self) -> MapperConfig:
        if self._config is None:
            raise MissingFact(self._why_missing("config", "no config (-c CONFIG.yaml)"))
        return self._config

    @property
    def graph(self) -> ModelGraph:
        if self._graph is None:
            raise MissingFact(self._why_missing("graph", "no model (MODEL.onnx)"))
        return self._graph

    @property
    def request(self) -> Any:
        if self.inputs is None:
            raise MissingFact("no request (config-only lint)")
        return self.inputs.request

    @property
    def specs(self) -> tuple[InputSpec, ...]:
        """One InputSpec per model input (full run), else per config input (lint)."""
        if self.inputs is not None:
            return self.inputs.specs
        return self.config.inputs

    @property
    def layouts(self) -> tuple[InputLayout, ...]:
        if self.inputs is None:
            raise MissingFact("no data layouts (config-only lint)")
        return self.inputs.layouts

    @property
    def preprocessors(self) -> tuple[Preprocessor, ...]:
        if self.inputs is None or self.inputs.preprocessors is None:
            raise MissingFact(self._why_missing("preprocessing", "no preprocessing"))
        return self.inputs.preprocessors

    def spec_of(self, input_name: str) -> InputSpec:
        for spec in self.specs:
            if spec.name == input_name:
                return spec
        raise MissingFact(f"no input spec for {input_name}")

    def model_normalisation(self, input_name: str) -> InputNormalisation | None:
        graph = self.maybe("graph")
        if graph is None:
            return None
        for norm in graph.normalisation:
            if norm.input == input_name:
                return norm
        return None

    def config_value_text(self, key: str) -> str | None:
        """The value of a one-line key as written in the YAML file ('klx' for 'key: klx')."""
        line = self.config.line_of(key)
        if line is None:
            return None
        lines = self._fact("config_lines", self._read_config_lines)
        if line > len(lines):
            return None
        _, sep, value = lines[line - 1].partition(":")
        value = value.split(" #", 1)[0].strip().strip("'\"")
        return value if sep and value else None

    def _read_config_lines(self) -> list[str]:
        try:
            return self.config.path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError):
            return []

    def where_config(self, key: str) -> str:
        if self._config is None:
            return key
        return self._config.where(key)

    @property
    def analysis(self) -> Any:
        """The quantization analysis (ptqtui.analysis), when the diagnosis ran it."""
        if self._analysis is None:
            raise MissingFact(self._why_missing("analysis", "no quantization analysis was run"))
        return self._analysis

    @property
    def sim(self) -> Any:
        """The simulator (ptqtui.analysis.context.SimContext) for what-ifs numeric rules measure."""
        if self._sim is None:
            raise MissingFact(self._why_missing("sim", "the quantization simulator did not run"))
        return self._sim

    # -- calibration data

    @property
    def calibration(self) -> SampleSource:
        if self.inputs is None or self.inputs.calibration is None:
            raise MissingFact(self._why_missing("calibration", "no calibration data"))
        return self.inputs.calibration

    @property
    def calibration_dir(self) -> str:
        return "; ".join(str(d) for d in self.calibration.dirs)

    @property
    def sample_stats(self) -> SampleSet:
        return self._fact("sample_stats", self._compute_sample_stats)

    @property
    def data_stats(self) -> tuple[DataStats, ...]:
        return self._fact("data_stats", self._compute_data_stats)

    def data_stats_of(self, input_name: str) -> DataStats:
        for d in self.data_stats:
            if d.input == input_name:
                return d
        raise MissingFact(f"no statistics for input {input_name}")

    def _compute_sample_stats(self) -> SampleSet:
        source = self.calibration
        layouts = source.layouts
        per_input: list[list[ArrayStats]] = [[] for _ in layouts]
        thumbs: list[list[np.ndarray]] = [[] for _ in layouts]
        total = 0
        for sample in source.iter_samples():
            check_cancel(self.cancel)
            total += 1
            if total > MAX_STATS_SAMPLES:
                continue
            for i, lay in enumerate(layouts):
                arr = sample.arrays[lay.name]
                path = sample.files[i]
                per_input[i].append(_array_stats(sample.index, path, sample.kind, arr, lay))
                thumbs[i].append(_thumbnail(arr, lay.layout))
        if total == 0:
            problems = [f"{m.file.name}: {m.describe()}" for m in source.mismatches[:1]]
            problems += [f"{u.file.name}: {u.problem}" for u in source.unreadable[:1]]
            why = "; first: " + problems[0] if problems else ""
            raise MissingFact(f"no readable calibration sample{why}")
        return SampleSet(
            inputs=tuple(lay.name for lay in layouts),
            stats=tuple(tuple(s) for s in per_input),
            thumbs=tuple(np.stack(t).astype(np.float32) for t in thumbs),
            total=total,
            unreadable=tuple((u.file.name, u.problem) for u in source.unreadable),
        )

    def _compute_data_stats(self) -> tuple[DataStats, ...]:
        sset = self.sample_stats
        layouts = self.calibration.layouts
        out = []
        for name, lay in zip(sset.inputs, layouts, strict=True):
            out.append(_aggregate(name, sset.of(name), self.calibration, lay))
        return tuple(out)

    # -- the float model

    def run_float(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run the float model once; feeds are cast to the model's input dtypes."""
        session = self._float_session()
        dtypes = {t.name: t.dtype for t in self.graph.inputs}
        cast = {
            k: v.astype(_np_dtype(dtypes.get(k, "float32")), copy=False) for k, v in feeds.items()
        }
        return [np.asarray(o) for o in session.run(None, cast)]

    def _float_session(self) -> Any:
        if self._session is None:
            import onnxruntime as ort  # lazy: slow to import, the TUI must start fast

            graph = self.graph
            options = session_options()
            options.intra_op_num_threads = 2
            options.inter_op_num_threads = 1
            data: Any = str(graph.path) if graph.path.exists() else graph.model.SerializeToString()
            try:
                self._session = ort.InferenceSession(
                    data, options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own exception types
                raise MissingFact(f"onnxruntime cannot run the float model: {exc}") from exc
        return self._session

    def _feeds(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The float model's inputs for samples at input_type_train: the config preprocessing."""
        feeds = {}
        for pre in self.preprocessors:
            feeds[pre.input_name] = pre(arrays[pre.input_name])
        return feeds

    def _probe_indices(self, limit: int) -> list[int]:
        source = self.calibration
        n = len(source)
        if n == 0:
            raise MissingFact("no readable calibration sample")
        rng = np.random.default_rng(self.seed)
        count = min(limit, n)
        return sorted(int(i) for i in rng.choice(n, size=count, replace=False))

    def _read_samples(self, indices: list[int]) -> Iterator[Any]:
        source = self.calibration
        for index in indices:
            try:
                yield source.read(index)
            except PtqInputError:
                continue

    @property
    def probe(self) -> tuple[ProbeVerdict, ...]:
        """The model-response probe, one verdict per image-like input."""
        return self._fact("probe", self._compute_probe)

    def probe_of(self, input_name: str) -> ProbeVerdict | None:
        for verdict in self.probe:
            if verdict.input == input_name:
                return verdict
        return None

    def _compute_probe(self) -> tuple[ProbeVerdict, ...]:
        self.graph  # noqa: B018 - raises MissingFact without a model
        pres = self.preprocessors
        samples = list(self._read_samples(self._probe_indices(self.probe_samples)))
        if not samples:
            raise MissingFact("no readable calibration sample for the model-response probe")
        verdicts = []
        for pre in pres:
            variants = self._variants_for(pre)
            if len(variants) < 2:
                continue
            outputs: dict[str, list[list[np.ndarray]]] = {v: [] for v in variants}
            for done, sample in enumerate(samples):
                check_cancel(self.cancel)
                report(self.progress, "model-response probe", done, len(samples), pre.input_name)
                base = self._feeds(sample.arrays)
                x = sample.arrays[pre.input_name]
                for variant, make in variants.items():
                    feeds = dict(base)
                    feeds[pre.input_name] = make(x)
                    outputs[variant].append(self.run_float(feeds))
            verdicts.append(_verdict(pre.input_name, outputs, len(samples)))
        if not verdicts:
            raise MissingFact("no input the probe can vary (needs rgb/bgr/gray image inputs)")
        return tuple(verdicts)

    def _variants_for(self, pre: Preprocessor) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
        """The plausible alternatives of one input's data, as float-model inputs."""
        spec = self.spec_of(pre.input_name)
        stats = self.data_stats_of(pre.input_name)
        if spec.type_train not in (*COLOR_TYPES, "gray", "yuv444"):
            return {}
        axis = _channel_axis(pre.layout)
        variants: dict[str, Callable[[np.ndarray], np.ndarray]] = {
            AS_GIVEN: lambda x: pre(x.astype(np.float32))
        }
        channels = len(stats.channel_means)
        if spec.type_train in COLOR_TYPES and channels == 3:
            variants[SWAPPED] = lambda x: pre(np.flip(x, axis=axis).astype(np.float32))
        if stats.full_scale == 1.0 and stats.max > 0:
            variants[TIMES_255] = lambda x: pre(x.astype(np.float32) * 255.0)
        if stats.max > 2.0 and stats.min >= -1.0:
            variants[DIV_255] = lambda x: pre(x.astype(np.float32) / 255.0)
        other = _other_layout_reader(self.calibration, pre.input_name)
        if other is not None:
            variants[OTHER_LAYOUT] = lambda x: pre(other(x).astype(np.float32))
        normalises = pre.norm_type not in (None, "no_preprocess")
        if normalises:
            variants[NORM_REMOVED] = lambda x: x.astype(np.float32)
        elif (
            self.model_normalisation(pre.input_name) is None
            and spec.type_train in COLOR_TYPES
            and channels == 3
            and stats.full_scale == 255.0
        ):
            mean = IMAGENET_MEAN_RGB if spec.type_train == "rgb" else IMAGENET_MEAN_RGB[::-1]
            scale = IMAGENET_SCALE_RGB if spec.type_train == "rgb" else IMAGENET_SCALE_RGB[::-1]
            m = np.asarray(mean, np.float32)
            s = np.asarray(scale, np.float32)

            def add_norm(x: np.ndarray) -> np.ndarray:
                shape = [1] * x.ndim
                shape[axis] = 3
                return (x.astype(np.float32) - m.reshape(shape)) * s.reshape(shape)

            variants[NORM_ADDED] = add_norm
        return variants

    @property
    def predictions(self) -> Predictions:
        """Float-model classes on up to PREDICTION_SAMPLES calibration samples."""
        return self._fact("predictions", self._compute_predictions)

    def _compute_predictions(self) -> Predictions:
        self.graph  # noqa: B018
        indices = self._probe_indices(PREDICTION_SAMPLES)
        top1: list[int] = []
        conf: list[float] = []
        files: list[str] = []
        classes = 0
        for sample in self._read_samples(indices):
            check_cancel(self.cancel)
            outs = self.run_float(self._feeds(sample.arrays))
            probs = _class_probs(outs)
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
            tuple(p.input_name for p in self.preprocessors),
            classes,
            tuple(top1),
            tuple(conf),
            tuple(files),
        )

    # -- evaluation data

    @property
    def eval_stats(self) -> tuple[DataStats, ...]:
        """Statistics of the evaluation images, read as the correct pipeline would."""
        samples = self.eval_samples
        lay = self.layouts[0]
        return self._fact("eval_stats", lambda: (_aggregate(lay.name, samples, None, lay),))

    @property
    def eval_samples(self) -> tuple[ArrayStats, ...]:
        """Per-image statistics of up to EVAL_SAMPLES evaluation images (seeded choice)."""
        return self._fact("eval_samples", self._compute_eval_samples)

    @property
    def order_test(self) -> OrderTest:
        """Is the calibration data in the channel order of the evaluation images?"""
        return self._fact("order_test", self._compute_order_test)

    def _compute_order_test(self) -> OrderTest:
        evaluation = self.eval_samples
        [name] = self.sample_stats.inputs[:1] or [""]
        calib = self.sample_stats.of(name)
        if len(calib[0].vivid) != 3 or len(evaluation[0].vivid) != 3:
            raise MissingFact("the channel-order test needs 3-channel data")
        if len(evaluation) < 8 or len(calib) < 3:
            raise MissingFact("too few samples for the channel-order test")
        rng = np.random.default_rng(self.seed)
        x = np.array([s.vivid for s in calib], np.float64)
        if len(x) > ORDER_TEST_SAMPLES:
            x = x[rng.choice(len(x), ORDER_TEST_SAMPLES, replace=False)]
        y = np.array([s.vivid for s in evaluation], np.float64)
        halves = rng.permutation(len(y))
        half = len(y) // 2
        return OrderTest(
            same=_energy_distance(x, y),
            reversed=_energy_distance(x[:, ::-1], y),
            noise=_energy_distance(y[halves[:half]], y[halves[half:]]),
            calibration=len(x),
            evaluation=len(y),
        )

    def _eval_arrays(self) -> Iterator[tuple[Any, np.ndarray]]:
        """(labelled file, array at input_type_train) for up to EVAL_SAMPLES evaluation images,
        chosen with the seed and read as the correct pipeline would."""
        if self.inputs is None or self.inputs.eval_set is None:
            raise MissingFact(self._why_missing("eval_set", "no evaluation data (--eval-dir)"))
        if len(self.inputs.layouts) != 1:
            raise MissingFact("evaluation statistics need a single-input model")
        from ptqtui.inputs import data as data_module

        eval_set = self.inputs.eval_set
        lay = self.inputs.layouts[0]
        mode = self.inputs.request.read_mode
        rng = np.random.default_rng(self.seed)
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

    def _compute_eval_samples(self) -> tuple[ArrayStats, ...]:
        arrays = list(self._eval_arrays())
        lay = self.layouts[0]
        stats = [
            _array_stats(k, item.file, "image", arr, lay, layout_check=False)
            for k, (item, arr) in enumerate(arrays)
        ]
        if not stats:
            raise MissingFact("no readable evaluation image")
        return tuple(stats)

    @property
    def eval_probe(self) -> EvalProbe:
        """Top-1 accuracy of the float model on labelled evaluation images through the
        config's preprocessing, as the config says and with the channels swapped."""
        return self._fact("eval_probe", self._compute_eval_probe)

    def _compute_eval_probe(self) -> EvalProbe:
        self.graph  # noqa: B018
        [pre] = self.preprocessors[:1] or [None]
        if pre is None or len(self.preprocessors) != 1:
            raise MissingFact("the evaluation probe needs a single-input model")
        spec = self.spec_of(pre.input_name)
        if spec.type_train not in COLOR_TYPES:
            raise MissingFact("the evaluation probe varies rgb/bgr inputs only")
        axis = _channel_axis(pre.layout)
        right = {AS_GIVEN: 0, SWAPPED: 0}
        count = 0
        classes = len(self.inputs.eval_set.classes) if self.inputs and self.inputs.eval_set else 0
        for item, arr in self._eval_arrays():
            check_cancel(self.cancel)
            for variant, x in ((AS_GIVEN, arr), (SWAPPED, np.flip(arr, axis=axis))):
                probs = _class_probs(self.run_float({pre.input_name: pre(x.astype(np.float32))}))
                if probs is None or probs.shape[1] != classes:
                    raise MissingFact(
                        "the model's outputs do not match the evaluation classes "
                        f"({classes} classes)"
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

    # -- raw images behind .bin files

    @property
    def raw_dir(self) -> Path:
        if self.inputs is None or self.inputs.request.raw_dir is None:
            raise MissingFact("no --raw-dir with the raw images behind the calibration files")
        raw = Path(self.inputs.request.raw_dir)
        if not raw.is_dir():
            raise MissingFact(f"--raw-dir {raw} is not a directory")
        return raw

    @property
    def resize_matches(self) -> tuple[ResizeMatch, ...]:
        return self._fact("resize_matches", self._compute_resize_matches)

    def _compute_resize_matches(self) -> tuple[ResizeMatch, ...]:
        raw_dir = self.raw_dir
        source = self.calibration
        if len(source.layouts) != 1:
            raise MissingFact("resize forensics need a single-input model")
        from ptqtui.inputs.data import IMAGE_SUFFIXES

        raws = {
            p.stem: p
            for p in raw_dir.iterdir()
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        }
        lay = source.layouts[0]
        matches = []
        for group in source.files:
            if len(matches) >= RESIZE_SAMPLES:
                break
            path = group[0]
            raw = raws.get(path.stem)
            if raw is None or path.suffix.lower() not in (".bin", ".npy", ".raw", ".rgb", ".bgr"):
                continue
            try:
                sample = source.read(source.files.index(group))
            except PtqInputError:
                continue
            match = _resize_match(sample.arrays[lay.name], raw, lay, path.name)
            if match is not None:
                matches.append(match)
        if not matches:
            raise MissingFact(f"no calibration file has a raw image of the same name in {raw_dir}")
        return tuple(matches)


# ---------------------------------------------------------------- helpers


def _other_layout_reader(
    source: SampleSource, input_name: str
) -> Callable[[np.ndarray], np.ndarray] | None:
    """For .bin/.npy data of 3-4 channels: the same bytes read in the other layout."""
    if not set(source.kinds) <= {"bin", "npy"}:
        return None
    lay = next((lay for lay in source.layouts if lay.name == input_name), None)
    if lay is None or len(lay.shape) != 4 or lay.layout not in ("NCHW", "NHWC"):
        return None
    n = lay.shape[0]
    if lay.layout == "NCHW":
        c, h, w = lay.shape[1:]
        if c not in (3, 4):
            return None
        return lambda x: x.reshape(n, h, w, c).transpose(0, 3, 1, 2)
    h, w, c = lay.shape[1:]
    if c not in (3, 4):
        return None
    return lambda x: x.reshape(n, c, h, w).transpose(0, 2, 3, 1)


@dataclass(frozen=True, slots=True)
class OrderTest:
    """Energy distances between the colours of the calibration and the evaluation samples
    (chromaticity of each sample's most saturated pixels): as they are, with the calibration
    channels reversed, and between two halves of the evaluation samples (the noise level)."""

    same: float
    reversed: float
    noise: float
    calibration: int
    evaluation: int

    @property
    def reversed_fits(self) -> bool:
        """The calibration data matches the evaluation data clearly better reversed."""
        return self.same > self.noise and self.reversed <= ORDER_TEST_GAIN * self.same

    def describe(self) -> str:
        return (
            f"distance to the evaluation images {self.same:.3f} as given, {self.reversed:.3f} "
            f"with channels reversed (noise level {self.noise:.3f}; {self.calibration} "
            f"calibration, {self.evaluation} evaluation samples)"
        )


def _energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Energy distance between two samples of points (0 for equal distributions)."""

    def mean_dist(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2).mean())

    return 2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y)


def _np_dtype(name: str) -> Any:
    try:
        return np.dtype(name)
    except TypeError:
        return np.float32


def _channel_axis(layout: str | None) -> int:
    return 3 if layout == "NHWC" else 1


def _channels_last(arr: np.ndarray, layout: str | None) -> np.ndarray:
    """(H, W, C) of the first image of a 4-D batch; None-like 2-D for other ranks."""
    if arr.ndim == 4:
        img = arr[0]
        return img if layout == "NHWC" else np.moveaxis(img, 0, -1)
    if arr.ndim == 3:
        return arr if layout == "NHWC" else np.moveaxis(arr, 0, -1)
    flat = arr.reshape(-1)
    return flat.reshape(1, -1, 1)


def _array_stats(
    index: int,
    path: Path,
    kind: str,
    arr: np.ndarray,
    lay: InputLayout,
    *,
    layout_check: bool = True,
) -> ArrayStats:
    values = np.asarray(arr)
    floats = values.astype(np.float64, copy=False)
    finite = np.isfinite(floats)
    nonfinite = int(values.size - int(finite.sum()))
    good = floats[finite] if nonfinite else floats.reshape(-1)
    if good.size == 0:
        good = np.zeros(1)
    hwc = _channels_last(np.where(finite, floats, 0.0) if nonfinite else floats, lay.layout)
    channel_means = tuple(float(v) for v in hwc.reshape(-1, hwc.shape[-1]).mean(axis=0))
    low = (float(np.mean(good <= 0.02)), float(np.mean(good <= 0.02 * 255)))
    high = (float(np.mean(good >= 0.98)), float(np.mean(good >= 0.98 * 255)))
    integral = bool(values.dtype.kind in "iu" or np.all(np.mod(good, 1.0) == 0))
    smooth = None
    if layout_check and kind in ("bin", "npy") and index < LAYOUT_SAMPLES:
        smooth = _layout_smoothness(values, lay)
    return ArrayStats(
        vivid=_vivid_chromaticity(hwc),
        sample=index,
        path=path,
        kind=kind,
        dtype=str(values.dtype),
        min=float(good.min()),
        max=float(good.max()),
        mean=float(good.mean()),
        std=float(good.std()),
        channel_means=channel_means,
        nonfinite=nonfinite,
        integral=integral,
        low_share=low,
        high_share=high,
        smoothness=smooth,
    )


VIVID_SHARE = 0.1  # the most saturated tenth of the pixels: the colourful objects of an image


def _vivid_chromaticity(hwc: np.ndarray) -> tuple[float, ...]:
    """Chromaticity of the most saturated pixels of a 3-channel image, scaled to sum to 3.

    Colourful objects (signs, fruit, sky, foliage) are what a channel swap changes most and
    channel means least; their colours are characteristic of a data set."""
    if hwc.shape[-1] != 3:
        return ()
    pixels = hwc.reshape(-1, 3)
    saturation = pixels.max(axis=1) - pixels.min(axis=1)
    count = max(1, int(len(pixels) * VIVID_SHARE))
    vivid = pixels[np.argpartition(saturation, -count)[-count:]].mean(axis=0)
    total = float(np.abs(vivid).sum())
    if total <= 1e-12:
        return (1.0, 1.0, 1.0)
    return tuple(float(3 * v / total) for v in vivid)


def _roughness(hwc: np.ndarray) -> float:
    """Mean neighbour difference over the image's spread: small for natural images."""
    spread = float(hwc.std())
    if spread <= 1e-12 or hwc.shape[0] < 2 or hwc.shape[1] < 2:
        return math.nan
    dx = np.abs(np.diff(hwc, axis=1)).mean()
    dy = np.abs(np.diff(hwc, axis=0)).mean()
    return float((dx + dy) / 2 / spread)


def _layout_smoothness(values: np.ndarray, lay: InputLayout) -> tuple[float, float] | None:
    """Roughness of the bytes read in the declared layout and in the other one."""
    shape = lay.shape
    if len(shape) != 4 or lay.layout not in ("NCHW", "NHWC"):
        return None
    if lay.layout == "NCHW":
        c, h, w = shape[1], shape[2], shape[3]
    else:
        h, w, c = shape[1], shape[2], shape[3]
    if c not in (3, 4) or h < 4 or w < 4:
        return None
    flat = np.nan_to_num(
        values.astype(np.float64).reshape(-1)[: c * h * w], nan=0.0, posinf=0.0, neginf=0.0
    )
    as_nchw = flat.reshape(c, h, w).transpose(1, 2, 0)
    as_nhwc = flat.reshape(h, w, c)
    if lay.layout == "NCHW":
        return _roughness(as_nchw), _roughness(as_nhwc)
    return _roughness(as_nhwc), _roughness(as_nchw)


def _thumbnail(arr: np.ndarray, layout: str | None) -> np.ndarray:
    import cv2  # lazy

    clean = np.nan_to_num(np.asarray(arr, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    hwc = _channels_last(clean, layout)
    if hwc.shape[0] < THUMB or hwc.shape[1] < THUMB:
        small = np.resize(hwc.reshape(-1), THUMB * THUMB * hwc.shape[-1])
        return small.astype(np.float32)
    small = cv2.resize(np.ascontiguousarray(hwc), (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    return np.asarray(small, np.float32).reshape(-1)


def _aggregate(
    name: str, stats: tuple[ArrayStats, ...], source: SampleSource | None, lay: InputLayout
) -> DataStats:
    """Set-wide statistics from per-sample ones (means of means; pooled variance)."""
    means = np.array([s.mean for s in stats])
    stds = np.array([s.std for s in stats])
    mean = float(means.mean())
    var = float(np.mean(stds**2 + (means - mean) ** 2))
    chans = np.array([s.channel_means for s in stats])
    channel_means = tuple(float(v) for v in chans.mean(axis=0))
    channel_stds = tuple(float(v) for v in chans.std(axis=0))
    return DataStats(
        input=name,
        count=len(stats),
        min=min(s.min for s in stats),
        max=max(s.max for s in stats),
        mean=mean,
        std=math.sqrt(max(var, 0.0)),
        channel_means=channel_means,
        channel_stds=channel_stds,
        nonfinite=sum(s.nonfinite for s in stats),
        integral=all(s.integral for s in stats),
        negative=min(s.min for s in stats) < 0,
    )


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _class_probs(outputs: list[np.ndarray]) -> np.ndarray | None:
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


def _verdict(
    input_name: str, outputs: dict[str, list[list[np.ndarray]]], samples: int
) -> ProbeVerdict:
    probs = {v: [_class_probs(o) for o in outs] for v, outs in outputs.items()}
    classifier = all(p is not None for plist in probs.values() for p in plist)
    flat = {
        v: np.concatenate([np.concatenate([np.ravel(o) for o in outs]) for outs in all_outs])
        for v, all_outs in outputs.items()
    }
    scores = []
    if classifier:
        stacked = {
            v: np.concatenate([p for p in plist if p is not None]) for v, plist in probs.items()
        }
        given = stacked[AS_GIVEN]
        given_top = given.max(axis=1)
        given_cls = given.argmax(axis=1)
        for v, p in stacked.items():
            top = p.max(axis=1)
            entropy = float(np.mean(-np.sum(p * np.log(np.clip(p, 1e-12, 1.0)), axis=1)))
            scores.append(
                VariantScore(
                    variant=v,
                    mean_top1=float(top.mean()),
                    mean_entropy=entropy,
                    changed=float(np.mean(p.argmax(axis=1) != given_cls)),
                    wins=float(np.mean(top > given_top + 1e-6)),
                    output_mean=float(flat[v].mean()),
                    output_std=float(flat[v].std()),
                    decisiveness=None,
                )
            )
        best = max(scores, key=lambda s: s.mean_top1 or 0.0)
        margin = (best.mean_top1 or 0.0) - (scores[0].mean_top1 or 0.0)
        strength = "none"
        if best.variant != AS_GIVEN:
            wins = best.wins or 0.0
            if margin >= STRONG_MARGIN and wins >= STRONG_WINS:
                strength = "strong"
            elif margin >= WEAK_MARGIN and wins >= WEAK_WINS:
                strength = "weak"
        preferred = best.variant if strength != "none" else AS_GIVEN
        return ProbeVerdict(
            input_name, True, samples, tuple(scores), preferred, float(margin), strength
        )
    for v, values in flat.items():
        finite = values[np.isfinite(values)]
        bounded = finite.size > 0 and finite.min() >= 0.0 and finite.max() <= 1.0
        decisive = float(np.mean(np.abs(2 * finite - 1))) if bounded else None
        scores.append(
            VariantScore(
                variant=v,
                mean_top1=None,
                mean_entropy=None,
                changed=None,
                wins=None,
                output_mean=float(finite.mean()) if finite.size else math.nan,
                output_std=float(finite.std()) if finite.size else math.nan,
                decisiveness=decisive,
            )
        )
    # Heads that are not classifiers: no generic measure says which input is right (scaled-up
    # inputs saturate a sigmoid head, which looks "decisive"), so the statistics are reported
    # and the verdict stays undetermined; the rules then rely on the data statistics.
    return ProbeVerdict(input_name, False, samples, tuple(scores), AS_GIVEN, 0.0, "none")


INTERPOLATIONS = ("nearest", "linear", "area", "cubic")


def _resize_match(
    data: np.ndarray, raw: Path, lay: InputLayout, file_name: str
) -> ResizeMatch | None:
    """Re-resize the raw image with every interpolation; fit each to the data (per-channel
    affine, so any normalisation and channel order are absorbed); smallest residual wins."""
    import cv2  # lazy

    image = cv2.imdecode(np.fromfile(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or len(lay.shape) != 4:
        return None
    target = _channels_last(np.asarray(data, np.float64), lay.layout)
    h, w, c = target.shape
    if c != 3:
        return None
    codes = {
        "nearest": cv2.INTER_NEAREST,
        "linear": cv2.INTER_LINEAR,
        "area": cv2.INTER_AREA,
        "cubic": cv2.INTER_CUBIC,
    }
    errors = []
    for name in INTERPOLATIONS:
        resized = cv2.resize(image, (w, h), interpolation=codes[name]).astype(np.float64)
        total = 0.0
        for ch in range(3):
            y = target[..., ch].reshape(-1)
            best = math.inf
            for src in range(3):  # either channel order
                x = resized[..., src].reshape(-1)
                a = np.vstack([x, np.ones_like(x)]).T
                coef, *_ = np.linalg.lstsq(a, y, rcond=None)
                resid = y - a @ coef
                best = min(best, float(np.sqrt(np.mean(resid**2))))
            spread = float(y.std()) or 1.0
            total += best / spread
        errors.append((name, total / 3))
    errors.sort(key=lambda e: e[1])
    return ResizeMatch(file_name, raw.name, tuple(errors))
