"""What the analyses hand to the Diagnosis: frozen records of floats and strings.

Similarities are measured against the float model's own outputs. `cosine` is higher-better
(1.0 = identical); `sqnr_db` is higher-better; `mse`, `mre` and `chebyshev` lower-better.
NaN means "could not be measured" (e.g. an all-zero tensor) and is kept, never hidden.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ptqtui.policy import LossBand
from ptqtui.quant.similarity import Similarity
from ptqtui.remedy import InputFix, Remedy


class AnalysisStage(enum.Enum):
    """The analyses in the order they run (the value is the progress stage's name)."""

    CALIBRATION = "calibration"
    TASK_METRIC = "task metric"
    NODE_TABLE = "node table"
    SENSITIVITY = "sensitivity"
    CURVE = "accumulated error"
    SWEEP = "method sweep"


@dataclass(frozen=True, slots=True)
class MethodThreshold:
    """One calibration method's |x| threshold for a node's activation input."""

    method: str  # "max", "max_percentile 0.99995", "kl"
    threshold: float
    chosen: bool = False  # equals the threshold the configured calibration used


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One quantized node: its output under the full scheme vs float, and how it runs."""

    name: str
    op_type: str
    output: str  # the output tensor measured
    dtype: str  # "int8", "int16" or "float" (its activation inputs)
    placement: str  # "BPU" or "CPU"
    similarity: Similarity  # cumulative: everything upstream quantized too
    sensitivity_cosine: float | None = None  # model output cosine, only this node quantized
    sensitivity_weights: float | None = None  # ... only its weights
    sensitivity_activations: float | None = None  # ... only its activation inputs
    int16_gain: float | None = None  # output cosine gained when this node goes int16
    act_min: float | None = None  # range of its (first) activation input over calibration
    act_max: float | None = None
    act_p9999: float | None = None  # 99.99th percentile of |x|
    threshold: float | None = None  # the calibrated |x| threshold used
    weight_range_ratio: float | None = None  # widest / median per-channel |w| max
    histogram: tuple[int, ...] = ()  # |x| counts in equal bins from 0 to `histogram_top`
    topo_index: int = 0
    histogram_top: float | None = None  # upper edge of the last bin (at or above max |x|)
    thresholds: tuple[MethodThreshold, ...] = ()  # every method's threshold, for the plots
    weight_channel_max: tuple[float, ...] = ()  # per output channel |w| max (first 512)
    weight_channels: int = 0  # output channels of the weight (may exceed what is stored)
    weight_tensor_max: float | None = None  # the per-tensor |w| max, for contrast


@dataclass(frozen=True, slots=True)
class SampleThumbnail:
    """A small RGB picture of a calibration sample a finding points at, as given or as the
    finding's input fix would read it (PNG, base64)."""

    code: str  # the finding's rule code
    input: str  # the model input
    sample: str  # the file, as the finding names it
    view: str  # "as given", or the fix as people read it: "swap channels"
    png: str  # base64 PNG, RGB, at most THUMB_SIZE pixels a side
    width: int
    height: int
    fix: InputFix | None = None  # None: as given


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """Model output similarity once the first `index + 1` nodes (topological order) are
    quantized."""

    index: int
    node: str
    cosine: float


@dataclass(frozen=True, slots=True)
class SweepRow:
    """One calibration setting of the method sweep, measured at the model outputs."""

    label: str  # "max, max_percentile 0.99995", "kl + per_channel"
    settings: tuple[tuple[str, str], ...]  # calibration_parameters keys -> YAML values
    cosine: float
    top1: float | None = None  # accuracy with labels, 0..1
    agreement: float | None = None  # task agreement with float (`metric`), 0..1
    noise: float | None = None  # run-to-run spread of `cosine` over sample subsets
    chosen: bool = False  # the one the config's calibration_type resolves to
    note: str | None = None  # "Select kl method." and the like
    remedy: Remedy | None = None  # the settings delta from the configured calibration
    agreement_low: float | None = None  # 95 % interval of `agreement`
    agreement_high: float | None = None
    samples: int | None = None  # samples `agreement` is measured on
    metric: str | None = None  # what `agreement` measures: "box F1@0.5 agreement"
    char_error_rate: float | None = None  # OCR: mean character error rate vs float strings

    @property
    def measure(self) -> Measure:
        """The row as a what-if's result (the plan's before and after)."""
        return Measure(
            self.cosine,
            self.top1,
            self.agreement,
            self.noise,
            agreement_low=self.agreement_low,
            agreement_high=self.agreement_high,
            samples=self.samples,
            metric=self.metric,
            char_error_rate=self.char_error_rate,
        )


@dataclass(frozen=True, slots=True)
class Measure:
    """The model's quality in one state (a what-if's result): output cosine, and top-1 when
    labels exist."""

    cosine: float
    top1: float | None = None  # 0..1
    agreement: float | None = None  # task agreement with the float model, 0..1 (`metric`)
    noise: float | None = None  # run-to-run spread of `cosine` (standard error over samples)
    agreement_low: float | None = None  # 95 % interval of `agreement`
    agreement_high: float | None = None
    samples: int | None = None  # samples `agreement` is measured on
    metric: str | None = None  # what `agreement` measures: "string agreement"
    char_error_rate: float | None = None  # OCR: mean character error rate vs float strings
    label_metric: str | None = None  # with task labels: what `top1` measures ("mask IoU vs ...")
    # a sequential measurement stopped short: the agreement is on the first `samples` of this
    # many (worse than the state it would replace beyond the noise, so not measured further)
    partial_of: int | None = None


@dataclass(frozen=True, slots=True)
class Quality:
    """Headline: float vs quantized, and the loss band that routes the plan."""

    output_cosine: float
    top1_float: float | None  # with labels
    top1_quant: float | None
    top1_agreement: float | None  # agreement with the float model in task terms (`metric`), 0..1
    loss_points: float | None  # accuracy points lost (labels) else 100 * (1 - agreement)
    band: LossBand  # a plain "large" | "medium" | "small" is accepted and converted
    basis: str  # "top-1 accuracy on 300 labelled images" / "output cosine and agreement"
    samples: int
    metric: str | None = None  # what `top1_agreement` measures: "string agreement" (the task's)
    agreement_low: float | None = None  # 95 % interval of the agreement (or top-1 with labels)
    agreement_high: float | None = None
    char_error_rate: float | None = None  # OCR: mean character error rate vs float strings
    band_uncertain: bool = False  # the loss interval straddles a band boundary
    loss_low: float | None = None  # the loss interval in points (from the agreement's)
    loss_high: float | None = None
    task: str | None = None  # the task adapter used ("ocr", "detection"; None: output cosine)
    task_note: str | None = None  # why there is no task metric ("output cosine only: ...")
    # with task labels (--eval-dir boxes, masks, text): top1_float / top1_quant hold this
    # metric against the labels ("box F1@0.5 vs labels"), and for OCR the CER against them
    label_metric: str | None = None
    label_cer_float: float | None = None
    label_cer_quant: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "band", LossBand(self.band))


@dataclass(frozen=True, slots=True)
class Timing:
    stage: str
    seconds: float
    passes: int | None = None  # forward passes, where counted


@dataclass(frozen=True, slots=True)
class BackendCheck:
    """The configured scheme on onnxruntime's own int8 kernels (a QDQ export with the
    simulator's scales) against the simulator: with 7-bit weights no kernel can saturate, with
    8-bit weights the u8s8 kernels of x86 CPUs without VNNI can (``--check-backend``)."""

    cosine_reduce_range: float  # output cosine, simulator vs onnxruntime, 7-bit weights
    cosine_full_range: float  # the same with 8-bit weights
    samples: int
    cpu_vnni: bool | None  # this CPU has VNNI (None: unknown)

    @property
    def saturation_loss(self) -> float:
        """Output cosine lost to the backend's kernels alone, never to the model."""
        return self.cosine_reduce_range - self.cosine_full_range


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything the simulator measured for one Diagnosis."""

    scheme: str  # "int8 per-tensor, kl; 2 nodes int16; 1 node on CPU"
    quality: Quality | None = None
    nodes: tuple[NodeRow, ...] = ()
    curve: tuple[CurvePoint, ...] = ()
    sweep: tuple[SweepRow, ...] = ()
    log: tuple[str, ...] = ()  # converter-style lines: "Select kl method."
    timings: tuple[Timing, ...] = ()
    notes: tuple[str, ...] = field(default=())
    backend: BackendCheck | None = None  # --check-backend: onnxruntime's int8 kernels
    trimmed: tuple[AnalysisStage, ...] = ()  # cut short by --time-budget (the notes say how)
    pending: tuple[AnalysisStage, ...] = ()  # not run yet (a partial result, while it runs)

    def complete(self, *stages: AnalysisStage) -> bool:
        """Whether these analyses ran in full: neither cut short by the budget nor pending."""
        return not any(s in self.trimmed or s in self.pending for s in stages)
