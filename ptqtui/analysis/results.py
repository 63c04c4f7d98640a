"""What the analyses hand to the Diagnosis: frozen records of floats and strings.

Similarities are measured against the float model's own outputs. `cosine` is higher-better
(1.0 = identical); `sqnr_db` is higher-better; `mse`, `mre` and `chebyshev` lower-better.
NaN means "could not be measured" (e.g. an all-zero tensor) and is kept, never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ptqtui.remedy import Remedy


@dataclass(frozen=True, slots=True)
class Similarity:
    cosine: float
    mse: float
    mre: float
    sqnr_db: float
    chebyshev: float


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
    histogram: tuple[int, ...] = ()  # |x| counts in equal bins from 0 to max |x|
    topo_index: int = 0


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
    agreement: float | None = None  # top-1 agreement with float, 0..1
    noise: float | None = None  # run-to-run spread of `cosine` over sample subsets
    chosen: bool = False  # the one the config's calibration_type resolves to
    note: str | None = None  # "Select kl method." and the like
    remedy: Remedy | None = None  # the settings delta from the configured calibration


@dataclass(frozen=True, slots=True)
class Quality:
    """Headline: float vs quantized, and the loss band that routes the plan."""

    output_cosine: float
    top1_float: float | None  # with labels
    top1_quant: float | None
    top1_agreement: float | None  # without labels too
    loss_points: float | None  # accuracy points lost (labels) else 100 * (1 - agreement)
    band: str  # "large" (> 4), "medium" (1.5-4), "small" (< 1.5)
    basis: str  # "top-1 accuracy on 300 labelled images" / "output cosine and agreement"
    samples: int


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
