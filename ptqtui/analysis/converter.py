"""The converter's own evidence beside the simulator's: its per-node table next to ours.

Both per-node cosines are cumulative (every upstream node quantized too), measured on each
node's output against the float model, so they can be ranked against each other. Rows are
matched by name: the converter's name is the ONNX node name, or the output tensor's name for
an unnamed node; long names are cut to '...' + their tail. Rows the converter adds itself
(HZ_PREPROCESS_FOR_*, *_calibrated_Requantize) and nodes it fuses (a Relu into its Conv)
have no partner and are only counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptqtui.policy import COLLAPSED_COSINE, OBVIOUS_LOSS_COSINE, TARGET_COSINE

if TYPE_CHECKING:
    from pathlib import Path

    from ptqtui.analysis.results import Analysis, NodeRow
    from ptqtui.inputs.mapper_log import LogNode, MapperLog
    from ptqtui.inputs.workdir import ConverterThreshold
    from ptqtui.quant.calibrate import Calibration

TOP_K = 5  # the worst nodes compared: where a user looks first
AGREE_SPEARMAN = 0.7  # rank correlation above this: the two tables tell the same story
DISAGREE_SPEARMAN = 0.3  # below this: they point at different nodes


@dataclass(frozen=True, slots=True)
class ConverterRow:
    """One node in both tables (or, without a simulation, in the converter's only)."""

    node: str  # the node's name in the model (the converter's convention)
    op_type: str
    converter_cosine: float
    simulator_cosine: float | None  # None: the simulator did not run or measure this node
    converter_dtype: str | None  # "int8", "int16", "float", "int8/int32"
    converter_placement: str  # "BPU" | "CPU"
    converter_rank: int  # 1 = the worst of the matched rows in the converter's table
    simulator_rank: int | None


@dataclass(frozen=True, slots=True)
class ConverterOutput:
    """One model output as the converter measured it."""

    name: str
    cosine: float
    l1: float
    l2: float
    chebyshev: float
    reading: str  # "normal" | "below normal" | "obvious loss" | "collapsed"


@dataclass(frozen=True, slots=True)
class ConverterEvidence:
    """What the converter's log says, and how its node table agrees with the simulator's."""

    log: str  # the log's path
    samples: int | None
    method: str | None  # the method the converter chose (or ran)
    per_channel: bool
    asymmetric: bool
    outputs: tuple[ConverterOutput, ...]
    rows: tuple[ConverterRow, ...]  # in the converter's table order
    converter_only: int  # converter rows with no node of ours (its own rows, cut names)
    simulator_only: int  # our quantized nodes missing from its table (fused, renamed)
    spearman: float | None  # rank correlation of the two cosines over matched rows
    top_k: int
    top_k_overlap: int | None  # of the converter's top_k worst, how many are among ours
    agreement: str  # "agree" | "partly" | "disagree" | "not compared"
    meaning: str  # what the agreement (or its absence) means, in a sentence
    thresholds_file: str | None = None  # the converter's *_calibrated_model.onnx, when read
    thresholds_used: int = 0  # its activation thresholds put in place of ours
    thresholds_total: int = 0  # activation points of our simulator
    cosine_converter_thresholds: float | None = None  # output cosine with its thresholds
    cosine_own_thresholds: float | None = None  # ... with ours, same scheme and samples


def reading(cosine: float) -> str:
    """The reference's plain reading of an output cosine."""
    if math.isnan(cosine):
        return "not a number"
    if cosine < COLLAPSED_COSINE:
        return "collapsed"
    if cosine < OBVIOUS_LOSS_COSINE:
        return "obvious loss"
    if cosine < TARGET_COSINE:
        return "below normal"
    return "normal"


def compare(log: MapperLog, analysis: Analysis | None) -> ConverterEvidence:
    """The converter's table beside the simulator's node rows (when the simulator ran)."""
    ours = list(analysis.nodes) if analysis is not None else []
    pairs: list[tuple[LogNode, NodeRow | None]] = []
    used: set[str] = set()
    converter_only = 0
    for row in log.nodes:
        if row.cosine is None or math.isnan(row.cosine):
            continue
        match = _match(row, ours)
        if match is None and ours:
            converter_only += 1
            continue
        if match is not None:
            if match.name in used:
                continue
            used.add(match.name)
        pairs.append((row, match))
    conv_ranks = _ranks([r.cosine for r, _ in pairs])  # type: ignore[misc]
    sim_values = [
        m.similarity.cosine if m is not None and not math.isnan(m.similarity.cosine) else None
        for _, m in pairs
    ]
    measured = [i for i, v in enumerate(sim_values) if v is not None]
    sim_ranks_part = _ranks([sim_values[i] for i in measured])  # type: ignore[misc]
    sim_ranks: list[float | None] = [None] * len(pairs)
    for i, rank in zip(measured, sim_ranks_part, strict=True):
        sim_ranks[i] = rank
    rows = tuple(
        ConverterRow(
            node=m.name if m is not None else r.name,
            op_type=m.op_type if m is not None else r.type,
            converter_cosine=r.cosine,  # type: ignore[arg-type]
            simulator_cosine=sim_values[i],
            converter_dtype=r.dtype,
            converter_placement=r.on,
            converter_rank=round(conv_ranks[i]),
            simulator_rank=round(sim_ranks[i]) if sim_ranks[i] is not None else None,  # type: ignore[arg-type]
        )
        for i, (r, m) in enumerate(pairs)
    )
    spearman = None
    overlap = None
    k = min(TOP_K, len(measured))
    if len(measured) >= 3:
        spearman = _pearson([conv_ranks[i] for i in measured], list(sim_ranks_part))
        worst_conv = {i for i in sorted(measured, key=lambda i: conv_ranks[i])[:k]}
        worst_sim = {i for i in sorted(measured, key=lambda i: sim_ranks[i])[:k]}  # type: ignore[arg-type, return-value]
        overlap = len(worst_conv & worst_sim)
    agreement, meaning = _meaning(log, analysis, spearman, overlap, k, len(measured))
    return ConverterEvidence(
        log=str(log.path),
        samples=log.samples,
        method=log.chosen or log.method_run,
        per_channel=log.per_channel,
        asymmetric=log.asymmetric,
        outputs=tuple(
            ConverterOutput(o.name, o.cosine, o.l1, o.l2, o.chebyshev, reading(o.cosine))
            for o in log.outputs
        ),
        rows=rows,
        converter_only=converter_only,
        simulator_only=sum(1 for n in ours if n.name not in used),
        spearman=spearman,
        top_k=k,
        top_k_overlap=overlap,
        agreement=agreement,
        meaning=meaning,
    )


def _match(row: LogNode, ours: Sequence[NodeRow]) -> NodeRow | None:
    for n in ours:
        if row.names(n.name) or row.names(n.output):
            return n
    return None


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ascending (1 = lowest cosine = worst); ties share their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _pearson(a: Sequence[float], b: Sequence[float]) -> float | None:
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    if va == 0 or vb == 0:
        return None
    return cov / math.sqrt(va * vb)


def _meaning(
    log: MapperLog,
    analysis: Analysis | None,
    spearman: float | None,
    overlap: int | None,
    k: int,
    matched: int,
) -> tuple[str, str]:
    if analysis is None or not analysis.nodes:
        return (
            "not compared",
            "Only the converter's table: run with the model and calibration data to put the "
            "simulator's per-node cosine beside it.",
        )
    if spearman is None or overlap is None:
        return (
            "not compared",
            f"Only {matched} node(s) are in both tables: too few to compare (names differ, or "
            "the converter fused them).",
        )
    method = log.chosen or log.method_run or "its own method"
    if spearman >= AGREE_SPEARMAN and overlap * 2 >= k:
        return (
            "agree",
            f"Both tables point at the same nodes ({overlap} of the {k} worst shared): the "
            "simulator reproduces the converter's loss, so its measured what-ifs apply to the "
            "converted model.",
        )
    if spearman < DISAGREE_SPEARMAN:
        return (
            "disagree",
            f"The two tables lose precision in different places ({overlap} of the {k} worst "
            "shared): the converter calibrated differently (it used "
            f"{method} on {log.samples if log.samples is not None else 'its'} samples) or read "
            "other data; align the method and data first, and trust the converter's table "
            "for the deployed model.",
        )
    return (
        "partly",
        f"The tables partly agree ({overlap} of the {k} worst shared): the worst nodes they "
        "share are the safest targets for int16 or a calibration change.",
    )


def with_converter_thresholds(
    calibration: Calibration, thresholds: Sequence[ConverterThreshold]
) -> tuple[Calibration, int]:
    """`calibration` with the converter's activation thresholds where a point matches
    (by tensor name); returns it and how many points took the converter's value."""
    from ptqtui.quant.qparams import ActRange

    ranges = dict(calibration.activations)
    used = 0
    for t in thresholds:
        if t.weight or not t.on or not t.thresholds or t.qtype not in ("int8", "int16"):
            continue
        for key in (f"act:{t.tensor}", f"out:{t.tensor}"):
            if key not in ranges:
                continue
            if len(t.thresholds) == 2 and not ranges[key].symmetric:
                ranges[key] = ActRange(t.thresholds[0], t.thresholds[1], symmetric=False)
            else:
                hi = max(abs(v) for v in t.thresholds)
                ranges[key] = ActRange(-hi, hi)
            used += 1
    return calibration.replace(activations=ranges, method="converter thresholds"), used


def measure_converter_thresholds(
    evidence: ConverterEvidence, sim: object, calibrated_model: Path
) -> ConverterEvidence:
    """The simulator's configured scheme with the converter's own activation thresholds,
    beside the same scheme with ours (same samples): does our calibration explain the gap?"""
    import dataclasses

    from ptqtui.inputs.workdir import read_calibrated_thresholds

    thresholds = read_calibrated_thresholds(calibrated_model)
    own = sim.calibration  # type: ignore[attr-defined]
    theirs, used = with_converter_thresholds(own, thresholds)
    total = len(own.activations)
    if used == 0:
        return dataclasses.replace(
            evidence, thresholds_file=str(calibrated_model), thresholds_total=total
        )
    with_theirs = sim.measure(calibration=theirs)  # type: ignore[attr-defined]
    with_ours = sim.measure()  # type: ignore[attr-defined]
    return dataclasses.replace(
        evidence,
        thresholds_file=str(calibrated_model),
        thresholds_used=used,
        thresholds_total=total,
        cosine_converter_thresholds=with_theirs.similarity.cosine,
        cosine_own_thresholds=with_ours.similarity.cosine,
    )
