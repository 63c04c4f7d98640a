"""The simulator, calibrated and ready for what-ifs: what the analyses, the plan and the TUI
re-measure a changed scheme with.

``build_context`` reads the calibration samples once, as the converted model sees them (the
config's preprocessing applied to data at ``input_type_train``), observes them in one
streaming pass, calibrates as the config asks, and caches the float outputs of the analysis
samples and the float top-1 of the evaluation set. ``SimContext.measure`` then costs
S passes (plus one per evaluation image): no new session, no re-observation.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ptqtui.analysis.measure import Sample, is_classifier, top1
from ptqtui.analysis.results import Measure, Similarity
from ptqtui.analysis.tasks import (
    Classification,
    CtcSequence,
    Interval,
    Raw,
    Task,
    empty_note,
    infer_task,
    label_metric,
    load_task_module,
    mean_interval,
    score_label,
    score_labels,
    task_named,
)
from ptqtui.errors import PtqInputError
from ptqtui.policy import SEQUENTIAL_STEP, SEQUENTIAL_Z
from ptqtui.progress import ProgressCallback, check_cancel, report
from ptqtui.quant import metrics
from ptqtui.quant.calibrate import SEARCH_SAMPLES, Calibration, calibrate
from ptqtui.quant.observe import Observation
from ptqtui.quant.scheme import QuantSettings, Scheme
from ptqtui.quant.settings import QuantFlags, settings_from_config
from ptqtui.quant.simulate import BATCH, sample_digest

if TYPE_CHECKING:
    from ptqtui.analysis.results import BackendCheck
    from ptqtui.budget import Deadline
    from ptqtui.cache import Store
    from ptqtui.inputs.resolve import LoadedInputs
    from ptqtui.quant.faithful import BackendAgreement
    from ptqtui.quant.simulate import Simulator

# Samples the task agreement is measured on without labels: every calibration sample, at
# least AGREEMENT_SAMPLES where there are (issue 12: 32 samples were ~3 points a sample, too
# coarse to tell a 2 % loss from a 5 % one), up to AGREEMENT_MAX and AGREEMENT_BYTES of
# model-ready arrays held in memory (so memory stays bounded on a board).
AGREEMENT_SAMPLES = 100
AGREEMENT_MAX = 1000
AGREEMENT_BYTES = 512 << 20
EVAL_LIMIT = 1000  # evaluation images used (a seeded random subset beyond that)
EVAL_CACHE_BYTES = 64 << 20  # model-ready evaluation arrays kept in memory


class AnalysisUnavailable(Exception):
    """The analyses cannot run on these inputs (no calibration data, nothing readable)."""


class Measurement(NamedTuple):
    """One what-if measured at the model outputs."""

    similarity: Similarity  # averaged over outputs and analysis samples
    top1: float | None  # accuracy on the labelled evaluation set, 0..1
    agreement: float | None  # the task agreement with the float model, 0..1 (mean over samples)
    noise: float | None = None  # standard error of the mean per-sample cosine
    interval: Interval | None = None  # `agreement` with its 95 % interval and sample count
    metric: str | None = None  # what `agreement` measures: "string agreement"
    cer: float | None = None  # OCR: mean character error rate against the float strings
    label_cer: float | None = None  # OCR with text labels: mean character error rate vs them
    label_metric: str | None = None  # with task labels: what `top1` measures
    cosines: tuple[float, ...] = ()  # output cosine of each analysis sample (paired noise)
    scores: tuple[float, ...] = ()  # task agreement of each sample (paired noise of the task)
    label_scores: tuple[float, ...] = ()  # the labelled metric of each labelled image


def measure_record(m: Measurement) -> Measure:
    """A `Measurement` as the diagnosis records it."""
    iv = m.interval
    return Measure(
        m.similarity.cosine,
        m.top1,
        m.agreement,
        m.noise,
        agreement_low=iv.low if iv is not None else None,
        agreement_high=iv.high if iv is not None else None,
        samples=iv.samples if iv is not None else None,
        metric=m.metric,
        char_error_rate=m.cer,
        label_metric=m.label_metric,
    )


@dataclass(frozen=True, slots=True)
class _MeasurementRecord:
    """A `Measurement` as the cache stores it (JSON, checked against these types)."""

    similarity: Similarity
    top1: float | None
    agreement: float | None
    noise: float | None
    interval: Interval | None
    metric: str | None
    cer: float | None
    label_cer: float | None
    label_metric: str | None
    cosines: tuple[float, ...]
    scores: tuple[float, ...] = ()
    label_scores: tuple[float, ...] = ()

    @classmethod
    def of(cls, m: Measurement) -> _MeasurementRecord:
        return cls(*m)

    def measurement(self) -> Measurement:
        return Measurement(
            self.similarity,
            self.top1,
            self.agreement,
            self.noise,
            self.interval,
            self.metric,
            self.cer,
            self.label_cer,
            self.label_metric,
            self.cosines,
            self.scores,
            self.label_scores,
        )


@dataclass(eq=False)
class EvalData:
    """Labelled evaluation samples with the float model's predictions. Model-ready arrays are
    kept up to ``EVAL_CACHE_BYTES``; the rest are read again from their files when needed, so
    memory stays bounded on a board whatever the size of the evaluation set."""

    loaders: tuple[Callable[[], Sample], ...]
    labels: np.ndarray
    float_top1: np.ndarray
    cached: dict[int, Sample] = field(default_factory=dict, repr=False)
    digest: str = ""  # of the model-ready images and labels, for the measurements' cache keys

    def __len__(self) -> int:
        return len(self.loaders)

    def iter(self, n: int | None = None) -> Iterator[Sample]:
        for i in range(len(self) if n is None else min(n, len(self))):
            hit = self.cached.get(i)
            yield hit if hit is not None else self.loaders[i]()

    @property
    def float_accuracy(self) -> float:
        return float(np.mean(self.float_top1 == self.labels))


@dataclass(eq=False)
class TaskEval:
    """Labelled images of a detector, segmenter or recogniser (`--eval-dir` boxes, masks or
    text lines) with the truth at the model's scale and the float model's score on each."""

    loaders: tuple[Callable[[], Sample], ...]
    truths: tuple[object, ...]
    float_scores: tuple[float, ...]  # the float model against each label, 0..1
    metric: str  # "box F1@0.5 vs labels"
    float_cers: tuple[float, ...] = ()  # OCR: the float strings' CER against the labels
    cached: dict[int, Sample] = field(default_factory=dict, repr=False)
    digest: str = ""  # of the model-ready images and the truths, for the cache keys
    float_total: float | None = None  # the metric over the whole set (detection: mAP@0.5)

    def __len__(self) -> int:
        return len(self.loaders)

    def iter(self) -> Iterator[Sample]:
        for i in range(len(self)):
            hit = self.cached.get(i)
            yield hit if hit is not None else self.loaders[i]()

    @property
    def float_score(self) -> float:
        if self.float_total is not None:
            return self.float_total
        return float(np.mean(self.float_scores))


@dataclass(eq=False)
class _Tally:
    """A measurement's per-sample figures so far: the first `done` kept samples run."""

    done: int = 0
    sims: list[metrics.Similarity] = field(default_factory=list)
    per_sample: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    cers: list[float] = field(default_factory=list)


@dataclass(eq=False)
class SimContext:
    sim: Simulator
    observation: Observation
    settings: QuantSettings
    calibration: Calibration
    scheme: Scheme
    samples: tuple[Sample, ...]  # model-ready analysis samples (the first S of calibration)
    refs: tuple[Mapping[str, np.ndarray], ...]  # their float outputs
    kept: Sequence[Sample] = ()  # the samples the task agreement is measured on (a Shelf)
    eval: EvalData | None = None
    task_eval: TaskEval | None = None  # labels for a non-classifier task (boxes, masks, text)
    classifier: bool = False  # first output looks like class scores (top-1 is meaningful)
    task: Task = field(default_factory=Raw)  # decodes outputs into the user's predictions
    task_note: str | None = None  # why there is no task metric (Raw), for the report
    pass_seconds: float = 0.0
    workers: int = 1  # processes for independent what-ifs (sensitivity)
    notes: list[str] = field(default_factory=list)
    store: Store | None = None  # --cache: measurements kept between runs
    deadline: Deadline | None = None  # --time-budget: a what-if that does not fit raises OutOfTime
    digest: str = ""  # what the measurements' cache keys start from (model, data, task)
    _cals: dict[object, Calibration] = field(default_factory=dict, repr=False)
    _measured: dict[object, Measurement] = field(default_factory=dict, repr=False)
    _tallies: dict[object, _Tally] = field(default_factory=dict, repr=False)  # `upto` so far
    _float_preds: list[object] | None = field(default=None, repr=False)

    @property
    def has_task_metric(self) -> bool:
        """Whether the agreement is measured in task terms (not Raw)."""
        return not isinstance(self.task, Raw)

    def float_predictions(self) -> list[object]:
        """The float model's decoded predictions of the kept samples (decoded once)."""
        if self._float_preds is None:
            seen = self.observation.outputs  # the observation pass's outputs, when it kept them
            self._float_preds = [
                self.task.decode(seen[i] if i < len(seen) else self.sim.run_float(s))[0]
                for i, s in enumerate(self.kept)
            ]
        return self._float_preds

    # ------------------------------------------------------------------ what-ifs
    def scheme_for(self, settings: QuantSettings) -> Scheme:
        return self.sim.scheme(settings)

    def calibration_for(
        self,
        settings: QuantSettings,
        *,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> Calibration:
        """The calibration ``settings`` ask for (cached; the observation is reused)."""
        scheme = self.scheme_for(settings)
        key = _settings_key(self, settings)
        hit = self._cals.get(key)
        if hit is None:
            hit = calibrate(
                self.sim,
                self.observation,
                settings,
                scheme=scheme,
                progress=progress,
                cancel=cancel,
            )
            self._cals[key] = hit
        return hit

    def measure(
        self,
        what: QuantSettings | Scheme | None = None,
        *,
        calibration: Calibration | None = None,
        eval_limit: int | None = None,
        cancel: threading.Event | None = None,
        similarity_only: bool = False,
        upto: int | None = None,
    ) -> Measurement:
        """Output similarity, top-1 (with labels) and top-1 agreement of a what-if.

        ``what``: settings (re-calibrated as they ask, cached), a scheme (with this context's
        calibration unless ``calibration`` is given), or None for the configured scheme.
        ``similarity_only``: the output similarity on the analysis samples alone (S passes,
        no task agreement, no labels): what ranks candidates before the few that can win are
        measured whole.
        ``upto``: the task agreement on the first ``upto`` kept samples only (at least the
        analysis samples; settings only): a sequential measurement's step. The samples run
        are remembered, so a later call with more (or none: whole) runs only the rest.
        """
        memo = None
        stored = None
        if isinstance(what, QuantSettings):
            scheme = self.scheme_for(what)
            cached = self._cals.get(_settings_key(self, what))
            if calibration is None or calibration is cached:
                # what-ifs repeat (the sweep's rows, the plan, the TUI): measured once, and
                # with --cache once for every run on the same model and data
                # keyed by what decides the outcome (the calibration and the scheme's dtypes),
                # not the settings that lead there: a node moved to the CPU that was float
                # anyway, or a flag no point reads, is the measure already taken
                memo = (
                    _settings_key(self, what),
                    scheme.key(),
                    self._eval_count(eval_limit),
                    similarity_only,
                )
                hit = self._measured.get(memo)
                if hit is not None:
                    return hit
                stored = self._stored_key(what, memo[2], similarity_only)
                hit = self._stored(stored)
                if hit is not None:
                    self._measured[memo] = hit
                    return hit
            self._require_time(similarity_only, eval_limit, upto, memo)
            cal = calibration or self.calibration_for(what, cancel=cancel)
        else:
            self._require_time(similarity_only, eval_limit)
            scheme = what if what is not None else self.scheme
            cal = calibration or self.calibration
        check_cancel(cancel)
        passes, started = self.sim.forward_passes, time.perf_counter()
        labelled = self.classifier and self.eval is not None and not similarity_only
        agreeing = self.has_task_metric and not labelled and not similarity_only
        n_all = len(self.kept) if agreeing else len(self.samples)
        n_run = n_all if upto is None or memo is None else min(n_all, upto)
        n_run = max(n_run, min(n_all, len(self.samples)))
        tally = self._tallies.pop(memo, None) if memo is not None else None
        if tally is None:
            tally = _Tally()
        sims, per_sample, scores, cers = tally.sims, tally.per_sample, tally.scores, tally.cers
        refs = self.float_predictions() if agreeing else []
        ctc = self.task if isinstance(self.task, CtcSequence) else None
        for start in range(tally.done, n_run, BATCH):
            check_cancel(cancel)
            chunk = self.kept[start : min(n_run, start + BATCH)]
            outs = self.sim.run_batch(chunk, scheme, calibration=cal)
            for j, out in enumerate(outs):
                i = start + j
                if i < len(self.samples):
                    ref = self.sim.reference(self.kept[i], key=("analysis", i))
                    these = [metrics.compare(ref[n], out[n]) for n in self.sim.outputs]
                    sims += these
                    per_sample.append(metrics.nanmean(x.cosine for x in these))
                if agreeing:
                    pred = self.task.decode(out)[0]
                    scores.append(self.task.agreement(refs[i], pred))
                    if ctc is not None:
                        cers.append(ctc.char_error_rate(refs[i], pred))
            tally.done = start + len(outs)
        if n_run < n_all:  # a sequential step: the rest may be asked for later
            assert memo is not None
            self._tallies[memo] = tally
        sim_ = metrics.average(sims)
        noise = _standard_error(per_sample)
        acc = agree = None
        interval = None
        label_scores: tuple[float, ...] = ()
        if labelled:
            assert self.eval is not None
            preds: list[int] = []
            for chunk_ in _chunks(self.eval.iter(eval_limit), BATCH):
                check_cancel(cancel)
                outs = self.sim.run_batch(chunk_, scheme, calibration=cal)
                preds += [int(top1(o[self.out])[0]) for o in outs]
            if preds:
                p = np.array(preds)
                right = p == self.eval.labels[: len(p)]
                acc = float(np.mean(right))
                label_scores = tuple(float(x) for x in right)
                agree = float(np.mean(p == self.eval.float_top1[: len(p)]))
                same = p == self.eval.float_top1[: len(p)]
                interval = mean_interval([float(x) for x in same], binary=True)
        elif scores:
            interval = mean_interval(scores, binary=self.task.binary)
            agree = None if math.isnan(interval.value) else interval.value
        label_cer = None
        if self.task_eval is not None and not similarity_only:  # the task metric vs labels
            acc, label_cer, label_scores = self._score_labels(scheme, cal, cancel)
        cer = float(np.mean(cers)) if cers else None
        metric = self.task.metric if self.has_task_metric else None
        label_metric = self.task_eval.metric if self.task_eval is not None else None
        result = Measurement(
            sim_,
            acc,
            agree,
            noise,
            interval,
            metric,
            cer,
            label_cer,
            label_metric,
            tuple(per_sample),
            tuple(scores),
            label_scores,
        )
        if self.deadline is not None:
            self.deadline.timed(self.sim.forward_passes - passes, time.perf_counter() - started)
        if n_run < n_all:
            return result  # part of the samples: neither remembered nor stored as whole
        if memo is not None:
            self._measured[memo] = result
        if stored is not None and self.store is not None:
            self.store.put("measure", stored, _MeasurementRecord.of(result))
        return result

    def measure_against(
        self,
        settings: QuantSettings,
        reference: Sequence[float],
        *,
        eval_limit: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Measurement:
        """`settings` measured as a candidate to replace the state whose per-sample task
        agreement is `reference` (every kept sample): SEQUENTIAL_STEP samples at a time, and
        stopped once its agreement is below the reference's on the same samples beyond
        SEQUENTIAL_Z standard errors of the paired difference (the Measurement then has fewer
        `scores` than the reference). Whole where the agreement does not decide."""
        return self.race([settings], reference, eval_limit=eval_limit, cancel=cancel)[0]

    def race(
        self,
        candidates: Sequence[QuantSettings],
        reference: Sequence[float],
        *,
        protected: Callable[[Measurement], bool] | None = None,
        margin: float = 0.0,
        eval_limit: int | None = None,
        cancel: threading.Event | None = None,
    ) -> list[Measurement]:
        """Candidates to replace the state whose per-sample task agreement is `reference`,
        measured side by side SEQUENTIAL_STEP samples at a time. One stops (fewer `scores`
        than the reference) once its gain over the reference is below `margin`, or its
        agreement below the best candidate's so far, beyond SEQUENTIAL_Z standard errors of
        the paired difference on the same samples. A `protected` candidate (its output cosine
        gains, which alone may recommend it) stops only when below the reference itself.
        Whole where the agreement does not decide."""
        n = self.agreement_count()
        ref = np.asarray(reference, np.float64)
        got: dict[int, Measurement] = {}
        alive = list(range(len(candidates)))
        if n and ref.size == n:
            for upto in range(SEQUENTIAL_STEP, n, SEQUENTIAL_STEP):
                for i in alive:
                    got[i] = self.measure(
                        candidates[i], eval_limit=eval_limit, cancel=cancel, upto=upto
                    )
                scores = {i: np.asarray(got[i].scores[:upto], np.float64) for i in alive}
                alive = [i for i in alive if scores[i].size == upto]  # else known whole
                if not alive:
                    break
                best = max(alive, key=lambda i: float(np.nanmean(scores[i])))
                safe = {i for i in alive if protected is not None and protected(got[i])}
                alive = [
                    i
                    for i in alive
                    if not worse_beyond_noise(ref[:upto], scores[i], 0.0 if i in safe else margin)
                    and (i == best or i in safe or not worse_beyond_noise(scores[best], scores[i]))
                ]
        else:
            alive = list(range(len(candidates)))
        for i in alive:
            got[i] = self.measure(candidates[i], eval_limit=eval_limit, cancel=cancel)
        return [got[i] for i in range(len(candidates))]

    def agreement_count(self) -> int:
        """The samples a whole measure's task agreement runs on (0: no task agreement, the
        labels or the output cosine alone decide)."""
        labelled = self.classifier and self.eval is not None
        if labelled or self.task_eval is not None or not self.has_task_metric:
            return 0
        return len(self.kept)

    def _require_time(
        self,
        similarity_only: bool,
        eval_limit: int | None,
        upto: int | None = None,
        memo: object = None,
    ) -> None:
        """OutOfTime unless a measurement's passes fit before the deadline (--time-budget)."""
        if self.deadline is None:
            return
        labelled = self.classifier and self.eval is not None and not similarity_only
        agreeing = self.has_task_metric and not labelled and not similarity_only
        passes = len(self.kept) if agreeing else len(self.samples)
        if upto is not None:
            passes = min(passes, max(upto, len(self.samples)))
        tally = self._tallies.get(memo) if memo is not None else None
        if tally is not None:
            passes -= min(passes, tally.done)
        if labelled:
            passes += self._eval_count(eval_limit)
        if self.task_eval is not None and not similarity_only:
            passes += len(self.task_eval)
        self.deadline.require(self.deadline.passes_cost(passes), "what-if")

    def stage_key(self, stage: str, *params: object) -> str | None:
        """The cache key of an analysis stage run under the configured settings with
        ``params`` (None without a cache)."""
        if self.store is None or not self.digest:
            return None
        from ptqtui.cache import digest

        return digest(
            self.digest,
            stage,
            params,
            _settings_key(self, self.settings),
            self.scheme.key(),
            len(self.kept),
        )

    def _stored_key(
        self, settings: QuantSettings, eval_count: int, similarity_only: bool = False
    ) -> str | None:
        """The cache key of a measurement under ``settings`` (None without a cache)."""
        if self.store is None or not self.digest:
            return None
        from ptqtui.cache import digest

        return digest(
            self.digest,
            _settings_key(self, settings),
            self.scheme_for(settings).key(),
            eval_count,
            len(self.kept),
            len(self.samples),
            similarity_only,
        )

    def _stored(self, key: str | None) -> Measurement | None:
        if key is None or self.store is None:
            return None
        rec = self.store.get("measure", key, _MeasurementRecord, label="what-if measurements")
        return rec.measurement() if rec is not None else None

    def _score_labels(
        self, scheme: Scheme, cal: Calibration, cancel: threading.Event | None
    ) -> tuple[float | None, float | None, tuple[float, ...]]:
        """The quantized model's score against the task labels (and CER for OCR), and each
        image's."""
        te = self.task_eval
        assert te is not None
        scores: list[float] = []
        cers: list[float] = []
        preds: list[object] = []
        ctc = self.task if isinstance(self.task, CtcSequence) else None
        k = 0
        for chunk in _chunks(te.iter(), BATCH):
            check_cancel(cancel)
            for out in self.sim.run_batch(chunk, scheme, calibration=cal):
                pred = self.task.decode(out)[0]
                preds.append(pred)
                scores.append(score_label(self.task, te.truths[k], pred))
                if ctc is not None:
                    cers.append(ctc.char_error_rate(str(te.truths[k]), pred))
                k += 1
        if not scores:
            return None, None, ()
        total = score_labels(self.task, te.truths[: len(preds)], preds)
        return total, (float(np.mean(cers)) if cers else None), tuple(scores)

    def _eval_count(self, eval_limit: int | None) -> int:
        """How many labelled images a measurement with `eval_limit` evaluates."""
        if not self.classifier or self.eval is None:
            return 0
        n = len(self.eval)
        return n if eval_limit is None else min(n, eval_limit)

    def backend_check(self) -> BackendAgreement:
        """The configured scheme on onnxruntime's own int8 kernels vs the simulator, with 7-bit
        and 8-bit weights: ``saturation_loss`` is what the backend alone costs (u8s8 int16
        saturation on x86 without VNNI), to report as a backend hazard, never as the model's."""
        from ptqtui.quant.faithful import backend_agreement

        return backend_agreement(self.sim, self.calibration, self.scheme, self.samples)

    def backend_record(self) -> BackendCheck:
        """``backend_check`` as the diagnosis records it (with this CPU's VNNI flag)."""
        from ptqtui.analysis.results import BackendCheck
        from ptqtui.quant.faithful import cpu_has_vnni

        b = self.backend_check()
        return BackendCheck(b.cosine_reduce_range, b.cosine_full_range, b.samples, cpu_has_vnni())

    @property
    def out(self) -> str:
        return self.sim.outputs[0]


def worse_beyond_noise(before: np.ndarray, after: np.ndarray, margin: float = 0.0) -> bool:
    """Whether `after` gains less than `margin` over `before` (per-sample figures in 0..1 on
    the same samples) beyond SEQUENTIAL_Z standard errors of their paired difference (margin
    0: is below it beyond the noise). The standard error is at least one sample's change
    (1/k): k identical figures are not proof that none of the samples not yet run differs."""
    diff = after - before
    diff = diff[np.isfinite(diff)]
    if diff.size < 2:
        return False
    mean = float(np.mean(diff))
    spread = max(float(np.std(diff, ddof=1)) / math.sqrt(diff.size), 1.0 / diff.size)
    return mean + SEQUENTIAL_Z * spread < margin


def _chunks(items: Iterator[Sample], size: int) -> Iterator[list[Sample]]:
    """Lists of up to ``size`` items, reading ``items`` lazily."""
    chunk: list[Sample] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _standard_error(values: Sequence[float]) -> float | None:
    v = [x for x in values if not math.isnan(x)]
    if len(v) < 2:
        return None
    return float(np.std(v, ddof=1) / math.sqrt(len(v)))


# ---------------------------------------------------------------------- building
def model_ready(
    inputs: LoadedInputs,
) -> Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]:
    """Turn one sample's arrays (at input_type_train) into the float model's inputs."""
    names = [lay.name for lay in inputs.layouts]
    model_names = [t.name for t in inputs.graph.inputs]
    pre = inputs.preprocessors

    def convert(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for k, (name, model_name) in enumerate(zip(names, model_names, strict=True)):
            x = arrays[name]
            x = pre[k](x) if pre is not None else np.asarray(x, np.float32)
            out[model_name] = np.ascontiguousarray(x, dtype=np.float32)
        return out

    return convert


def build_context(
    inputs: LoadedInputs,
    *,
    sensitivity_samples: int = 8,
    flags: QuantFlags | None = None,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    cache_dir: Path | None = None,
    cache_limit: int | None = None,
) -> SimContext:
    """Observe (or read the observation from ``cache_dir``), calibrate and cache the
    references (see the module docstring)."""
    from ptqtui.analysis.pool import default_workers
    from ptqtui.cache import DEFAULT_LIMIT_BYTES, Store, cached_observe, digest
    from ptqtui.memory import release
    from ptqtui.quant.simulate import Simulator

    source = inputs.calibration
    if source is None or len(source) == 0:
        raise AnalysisUnavailable(
            inputs.missing.get("calibration", "no calibration samples to calibrate with")
        )
    notes: list[str] = []
    if inputs.preprocessors is None:
        why = inputs.missing.get("preprocessing", "no preprocessing")
        notes.append(f"calibration samples fed to the float model as read ({why})")
    try:
        sim = Simulator(inputs.graph.model)
    except PtqInputError:
        raise
    except Exception as exc:  # onnxruntime's load errors share no base class but Exception
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise AnalysisUnavailable(f"onnxruntime cannot run the model: {first}") from exc
    convert = model_ready(inputs)

    non_finite: list[str] = []

    def samples() -> Iterator[dict[str, np.ndarray]]:
        for s in source.iter_samples():
            # NaN/Inf samples (PTQ106 names them) are left out of calibration and measurement
            if any(a.dtype.kind == "f" and not np.isfinite(a).all() for a in s.arrays.values()):
                non_finite.append(s.files[0].name)
                continue
            yield convert(s.arrays)

    first = next(samples(), None)
    size = sum(a.nbytes for a in first.values()) if first is not None else 1
    keep = max(
        sensitivity_samples,
        SEARCH_SAMPLES,
        min(AGREEMENT_MAX, max(AGREEMENT_SAMPLES, AGREEMENT_BYTES // max(1, size))),
    )
    limit = DEFAULT_LIMIT_BYTES if cache_limit is None else cache_limit
    obs, cached, obs_key = cached_observe(
        cache_dir,
        sim,
        samples,
        keep=keep,
        total=len(source),
        progress=progress,
        cancel=cancel,
        limit=limit,
    )
    release()  # the observation pass allocated and dropped every tensor of every sample
    if cached is not None:
        notes.append(cached)
    if obs.n_samples == 0:
        raise AnalysisUnavailable("no calibration sample could be read")
    if source.unreadable:
        notes.append(f"{len(source.unreadable)} calibration file(s) unreadable and skipped")
    if non_finite:
        notes.append(
            f"{len(non_finite)} calibration sample(s) with NaN/Inf left out of calibration and "
            "measurement (PTQ106)"
        )
    settings = settings_from_config(inputs.config, flags, graph=inputs.graph)
    scheme = sim.scheme(settings)
    if scheme.unmatched:
        notes.append(
            "nodes named in the config but absent from the model: " + ", ".join(scheme.unmatched)
        )
    report(progress, "calibration", 0, None, f"calibrating ({settings.describe()})")
    cal = calibrate(sim, obs, settings, scheme=scheme, progress=progress, cancel=cancel)
    analysis = tuple(obs.kept[:sensitivity_samples])
    seen = obs.outputs  # float outputs from the observation pass (none when it was cached)
    refs = tuple(
        sim.reference(s, key=("analysis", i), known=seen[i] if i < len(seen) else None)
        for i, s in enumerate(analysis)
    )
    ctx = SimContext(sim, obs, settings, cal, scheme, analysis, refs, obs.kept, notes=notes)
    ctx._cals[_settings_key(ctx, settings)] = cal
    ctx.workers = inputs.request.workers or default_workers()
    ctx.task, ctx.task_note = choose_task(
        inputs, sim, refs[0] if refs else None, analysis[0] if analysis else None
    )
    ctx.classifier = isinstance(ctx.task, Classification) or (
        bool(refs) and is_classifier(sim, refs[0]) and isinstance(ctx.task, Raw)
    )
    try:  # a decoder that cannot read these outputs: said, and output cosine only
        note = empty_note(ctx.task, ctx.float_predictions())
        if note is not None:
            notes.append(note)
    except (ValueError, IndexError, TypeError, ArithmeticError) as exc:
        if inputs.request.task_module is not None:
            raise PtqInputError(inputs.request.task_module, f"decode failed: {exc}") from exc
        ctx.task_note = f"output cosine only: the {ctx.task.name} decoder failed ({exc})"
        ctx.task = Raw()
        ctx._float_preds = None
    if inputs.task_labels is not None:
        ctx.task_eval = _read_task_eval(inputs, ctx, convert, notes, progress, cancel)
    if inputs.eval_set is not None and ctx.classifier:
        ctx.eval = _read_eval(inputs, sim, convert, seed, notes, progress, cancel)
    elif inputs.eval_set is not None:
        notes.append("evaluation labels ignored: the first model output is not class scores")
    if cache_dir is not None and obs_key is not None:
        ctx.store = Store(Path(cache_dir), limit)
        ctx.digest = digest(
            obs_key,
            repr(ctx.task) if dataclasses.is_dataclass(ctx.task) else ctx.task.name,
            _module_digest(inputs.request.task_module),
            ctx.eval.digest if ctx.eval is not None else None,
            ctx.task_eval.digest if ctx.task_eval is not None else None,
            len(ctx.kept),
            len(ctx.samples),
            seed,
        )
    return ctx


def _module_digest(path: Path | None) -> str | None:
    """SHA-256 of a --task-module file (its decoder decides the agreement)."""
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return str(path)


def choose_task(
    inputs: LoadedInputs,
    sim: Simulator,
    sample: Mapping[str, np.ndarray] | None,
    model_input: Mapping[str, np.ndarray] | None = None,
) -> tuple[Task, str | None]:
    """The task adapter (`--task-module`, `--task NAME`, else inferred from the outputs) and,
    when there is none, why (the report says it)."""
    request = inputs.request
    if request.task_module is not None:
        return load_task_module(request.task_module), None
    shapes = {
        n: tuple(int(d) for d in np.shape(sample[n])) if sample is not None else ()
        for n in sim.outputs
    }
    hw = _input_hw(model_input)
    if request.task is not None:
        task = task_named(request.task, shapes, hw)
        return task, None if not isinstance(task, Raw) else "output cosine only (--task raw)"
    task = infer_task(shapes, hw, sample=sample, charset=_charset(inputs, shapes))
    if isinstance(task, Raw):
        outs = ", ".join(f"{n} {'x'.join(map(str, d))}" for n, d in shapes.items())
        return task, (
            f"output cosine only: no task decoder for outputs {outs}; --task or --task-module"
        )
    return task, None


def _input_hw(model_input: Mapping[str, np.ndarray] | None) -> tuple[int, int]:
    """Height and width of the first 4-D model input of a sample (NCHW, or NHWC when the
    last dimension is the channels')."""
    for a in (model_input or {}).values():
        if a.ndim == 4:
            nchw = a.shape[1] in (1, 3, 4) or a.shape[3] not in (1, 3, 4)
            h, w = (a.shape[2], a.shape[3]) if nchw else (a.shape[1], a.shape[2])
            return (int(h), int(w))
    return (0, 0)


def _charset(inputs: LoadedInputs, shapes: Mapping[str, tuple[int, ...]]) -> tuple[str, ...]:
    """A CTC head's characters from the model metadata (PaddleOCR's `character`: one a line,
    the blank first and a space last), when their count fits the class dimension."""
    props = {p.key: p.value for p in inputs.graph.model.metadata_props}
    text = props.get("character")
    if not text or len(shapes) != 1:
        return ()
    chars = text.split("\n")
    classes = next(iter(shapes.values()))[-1:] or (0,)
    for charset in (("", *chars), ("", *chars, " ")):
        if len(charset) == classes[0]:
            return charset
    return ()


def _settings_key(ctx: SimContext, settings: QuantSettings) -> tuple[object, ...]:
    key: tuple[object, ...] = (
        settings.calibration_type,
        settings.max_percentile,
        settings.per_channel,
        settings.asymmetric,
        settings.bias_correction,
    )
    if settings.calibration_type in ("default", "mix") or settings.bias_correction:
        key += (ctx.scheme_for(settings).key(),)  # the searches measure under the scheme
    return key


def _read_eval(
    inputs: LoadedInputs,
    sim: Simulator,
    convert: Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]],
    seed: int,
    notes: list[str],
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> EvalData | None:
    from ptqtui.inputs.data import IMAGE_SUFFIXES, UnreadableFile, read_file, read_image

    ev = inputs.eval_set
    assert ev is not None
    if len(inputs.layouts) != 1:
        notes.append("top-1 accuracy needs a single-input model; evaluation set ignored")
        return None
    layout = inputs.layouts[0]
    # a seeded shuffle: evaluation sets come class by class, and what-ifs measured on the
    # first N images (eval_limit) must see every class
    rng = np.random.default_rng(seed)
    items = [ev.items[i] for i in rng.permutation(len(ev.items))]
    if len(items) > EVAL_LIMIT:
        items = items[:EVAL_LIMIT]
        notes.append(f"top-1 on {EVAL_LIMIT} of {len(ev.items)} evaluation images (seed {seed})")
    loaders, labels, preds = [], [], []
    cached: dict[int, Sample] = {}
    h = hashlib.sha256()
    held = 0
    bad = 0
    read_mode = inputs.request.read_mode

    def read(path: Path) -> dict[str, np.ndarray]:
        if path.suffix.lower() in IMAGE_SUFFIXES:
            x = read_image(path, layout, read_mode, to_color=True)
        else:
            x = read_file(path, layout, read_mode)
        return convert({layout.name: x})

    for k, item in enumerate(items):
        check_cancel(cancel)
        try:
            s = read(item.file)
        except (PtqInputError, UnreadableFile):  # recorded as a count, the run goes on
            bad += 1
            continue
        size = sum(a.nbytes for a in s.values())
        if held + size <= EVAL_CACHE_BYTES:
            cached[len(loaders)] = s
            held += size
        loaders.append(functools.partial(read, item.file))
        labels.append(item.label)
        h.update(f"{sample_digest(s)}|{item.label}|".encode())
        preds.append(int(top1(sim.run_float(s)[sim.outputs[0]])[0]))
        report(progress, "evaluation", k + 1, len(items), "float predictions")
    if bad:
        notes.append(f"{bad} evaluation file(s) unreadable and skipped")
    if not loaders:
        return None
    return EvalData(tuple(loaders), np.array(labels), np.array(preds), cached, h.hexdigest())


def _read_task_eval(
    inputs: LoadedInputs,
    ctx: SimContext,
    convert: Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]],
    notes: list[str],
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> TaskEval | None:
    """The labelled images of `--eval-dir` (boxes, masks, text) read for the task's metric."""
    from ptqtui.analysis.tasks import Boxes, CtcSequence, DenseMap, YoloDetection
    from ptqtui.inputs.data import UnreadableFile, read_image
    from ptqtui.inputs.task_labels import BoxTruth, LabelKind, read_mask

    labels = inputs.task_labels
    assert labels is not None
    wants = {
        LabelKind.BOXES: YoloDetection,
        LabelKind.MASKS: DenseMap,
        LabelKind.TEXT: CtcSequence,
    }[labels.kind]
    metric = label_metric(ctx.task)
    if not isinstance(ctx.task, wants) or metric is None:
        why = (
            "the recogniser has no character set in its metadata (indices only)"
            if isinstance(ctx.task, CtcSequence)
            else f"the model's task is {ctx.task.name}"
        )
        notes.append(f"evaluation labels ({labels.kind.value}) ignored: {why}")
        return None
    if len(inputs.layouts) != 1:
        notes.append("task labels need a single-input model; evaluation set ignored")
        return None
    layout = inputs.layouts[0]
    in_h, in_w = _input_hw(ctx.samples[0]) if ctx.samples else (0, 0)
    loaders, truths, scores, cers = [], [], [], []
    float_preds: list[object] = []
    cached: dict[int, Sample] = {}
    held = bad = 0
    h = hashlib.sha256()

    def read(path: Path) -> dict[str, np.ndarray]:
        x = read_image(path, layout, inputs.request.read_mode, to_color=True)
        return convert({layout.name: x})

    for k, item in enumerate(labels.items[:EVAL_LIMIT]):
        check_cancel(cancel)
        try:
            s = read(item.file)
        except (PtqInputError, UnreadableFile):
            bad += 1
            continue
        pred = ctx.task.decode(ctx.sim.run_float(s))[0]
        truth: object = item.truth
        if isinstance(truth, BoxTruth):  # image pixels -> model input pixels (a plain resize)
            sx, sy = in_w / truth.width, in_h / truth.height
            xyxy = truth.xyxy * np.array([sx, sy, sx, sy], np.float32)
            truth = Boxes(xyxy, np.ones(len(xyxy), np.float32), truth.classes)
        elif isinstance(truth, Path):
            truth = read_mask(truth, pred.shape[-2:])
        size = sum(a.nbytes for a in s.values())
        if held + size <= EVAL_CACHE_BYTES:
            cached[len(loaders)] = s
            held += size
        loaders.append(functools.partial(read, item.file))
        truths.append(truth)
        h.update(f"{sample_digest(s)}|{_truth_digest(truth)}|".encode())
        scores.append(score_label(ctx.task, truth, pred))
        float_preds.append(pred)
        if isinstance(ctx.task, CtcSequence):
            cers.append(ctx.task.char_error_rate(str(truth), pred))
        report(progress, "evaluation", k + 1, len(labels), "float predictions vs labels")
    if bad:
        notes.append(f"{bad} evaluation file(s) unreadable and skipped")
    if len(labels) > EVAL_LIMIT:
        notes.append(f"{metric} on the first {EVAL_LIMIT} of {len(labels)} labelled images")
    if not loaders:
        return None
    total = score_labels(ctx.task, truths, float_preds)
    return TaskEval(
        tuple(loaders),
        tuple(truths),
        tuple(scores),
        metric,
        tuple(cers),
        cached,
        h.hexdigest(),
        float_total=total,
    )


def _truth_digest(truth: object) -> str:
    """A label's content as text for a digest: arrays by their bytes, the rest by repr."""
    h = hashlib.sha256()
    for v in dataclasses.astuple(truth) if dataclasses.is_dataclass(truth) else (truth,):
        if isinstance(v, np.ndarray):
            h.update(f"{v.dtype.str}{v.shape}".encode() + np.ascontiguousarray(v).tobytes())
        else:
            h.update(repr(v).encode())
    return h.hexdigest()
