"""The report's content as a neutral document, built once from a Diagnosis.

Every writer (text, markdown, HTML) renders the same blocks, so every format says the same
thing; JSON is the Diagnosis itself. Nothing here formats for a medium: numbers are turned
into strings once, with the precision a reader needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptqtui.advise.results import Reference
from ptqtui.analysis.results import Analysis, AnalysisStage, NodeRow, Quality
from ptqtui.check.findings import Finding, Severity
from ptqtui.diagnosis import Diagnosis
from ptqtui.policy import (
    BACKEND_SATURATION_COSINE,
    LARGE_LOSS_POINTS,
    MEDIUM_LOSS_POINTS,
    SENSITIVE_COSINE,
    TARGET_COSINE,
)
from ptqtui.report.pictures import NODES_PER_FINDING, PictureKind, pictures

if TYPE_CHECKING:
    from ptqtui.check.commands import LintResult
    from ptqtui.check.converter import LogReport

NODE_ROWS = 20  # worst nodes shown in text/md/html; JSON has all of them
NOT_MEASURED = "not measured (time budget)"


@dataclass(frozen=True, slots=True)
class Heading:
    level: int  # 1 title, 2 section, 3 item
    text: str
    severity: Severity | None = None  # colours a finding's or step's heading


@dataclass(frozen=True, slots=True)
class Para:
    text: str
    style: str = ""  # "", "muted", "strong"


@dataclass(frozen=True, slots=True)
class KeyValues:
    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]  # right-align these columns
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Code:
    text: str
    lang: str = ""  # "yaml", "diff"


@dataclass(frozen=True, slots=True)
class Chart:
    kind: str  # "line" (a curve over an ordered axis) or "bars" (one bar a label)
    title: str
    points: tuple[tuple[str, float], ...]
    y_label: str
    reference: float | None = None  # a threshold line, e.g. the 0.999 of the converter


@dataclass(frozen=True, slots=True)
class Mark:
    """A threshold drawn on a histogram."""

    label: str  # "kl", "p99.99%"
    value: float
    chosen: bool = False


@dataclass(frozen=True, slots=True)
class Histogram:
    """|x| counts in equal bins from 0 to `top` (log scale), thresholds marked."""

    title: str
    counts: tuple[int, ...]
    top: float
    marks: tuple[Mark, ...]
    note: str = ""


@dataclass(frozen=True, slots=True)
class ChannelBars:
    """One bar per output channel (max |w|), the per-tensor max as a line."""

    title: str
    values: tuple[float, ...]
    tensor_max: float
    note: str = ""


@dataclass(frozen=True, slots=True)
class Thumbnail:
    caption: str  # "0007.bin: swap channels"
    png: str  # base64 PNG
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Thumbnails:
    title: str
    items: tuple[Thumbnail, ...]
    note: str = ""


Block = Heading | Para | KeyValues | Table | Code | Chart | Histogram | ChannelBars | Thumbnails


def fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}"


def pct(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f} %"


def severity_counts(findings: tuple[Finding, ...]) -> str:
    counts = [(s, sum(1 for f in findings if f.severity is s)) for s in Severity]
    return ", ".join(f"{n} {s.value}" for s, n in counts if n) or "none"


def build(d: Diagnosis) -> list[Block]:
    title = "ptqtui diagnosis" + (f": {d.title}" if d.title else "")
    blocks: list[Block] = [Heading(1, title)]
    blocks += _headline(d)
    blocks += _findings(d)
    blocks += _pictures(d)
    blocks += _plan(d)
    blocks += _nodes(d)
    blocks += _converter(d)
    blocks += _calibration(d)
    blocks += _backend(d.analysis)
    blocks += _inputs(d)
    blocks += _run(d)
    return blocks


def _headline(d: Diagnosis) -> list[Block]:
    out: list[Block] = [Heading(2, "Summary")]
    q = d.analysis.quality if d.analysis else None
    rows: list[tuple[str, str]] = []
    if d.budget is not None:
        rows.append(("time budget", budget_text(d)))
    if q is not None:
        loss = f"{q.loss_points:.1f} points" if q.loss_points is not None else "-"
        if q.loss_low is not None and q.loss_high is not None:
            loss += f" (95 % {q.loss_low:.1f}-{q.loss_high:.1f})"
        rows.append(("loss band", f"{q.band.value} ({q.band.span}): {loss}, from {q.basis}"))
        if q.band_uncertain:
            spans = f"{q.loss_low:.1f}-{q.loss_high:.1f} points" if q.loss_high is not None else ""
            rows.append(
                (
                    "band",
                    f"uncertain: the loss interval {spans} spans a band boundary "
                    f"({MEDIUM_LOSS_POINTS:g} or {LARGE_LOSS_POINTS:g} points); more samples "
                    "would decide it",
                )
            )
        rows.append(
            (
                "output cosine",
                f"{fmt(q.output_cosine)} (quantized vs float on the calibration samples as given)",
            )
        )
        if q.top1_float is not None:
            rows.append(
                (
                    q.label_metric or "top-1",
                    f"float {pct(q.top1_float)}, quantized {pct(q.top1_quant)} (the labelled "
                    "images read as the config says)",
                )
            )
        if q.label_cer_float is not None or q.label_cer_quant is not None:
            pair = (q.label_cer_float, q.label_cer_quant)
            cer = [f"{v:.3f}" if v is not None else "-" for v in pair]
            rows.append(("CER vs labels", f"float {cer[0]}, quantized {cer[1]}"))
        if q.top1_agreement is not None:
            rows.append((q.metric or "top-1 agreement", agreement_text(q)))
        if q.char_error_rate is not None:
            rows.append(("character error rate", f"{q.char_error_rate:.3f} vs the float strings"))
        if q.task_note:
            rows.append(("task metric", q.task_note))
        rows += _as_deployed(d)
        rows.append(("scheme", d.analysis.scheme if d.analysis else "-"))
    rows.append(("findings", severity_counts(d.findings)))
    first = d.plan.next_step if d.plan is not None else None
    if first is not None:
        rows.append(("next step", f"{first.number}. {first.title}"))
    elif q is None:
        rows.append(("simulation", "not run: " + _skip_reason(d, "analysis")))
    out.append(KeyValues(tuple(rows)))
    return out


def input_label(name: str) -> str:
    """'input images'; an input named "input" is not called "input input"."""
    return "input" if name.lower() == "input" else f"input {name}"


def budget_text(d: Diagnosis) -> str:
    """The time budget at the top: below the floor (everything but calibration and the
    headline not measured), or what it left out."""
    b = d.budget
    assert b is not None
    if b.below_floor:
        missed = f"; {NOT_MEASURED}: " + ", ".join(b.not_measured) if b.not_measured else ""
        return b.floor_text() + missed
    trimmed = [s.value for s in d.analysis.trimmed] if d.analysis is not None else []
    left_out = [*trimmed, *b.not_measured]
    if not left_out:
        return f"{b.seconds:g} s: everything measured"
    return f"{b.seconds:g} s; cut short or {NOT_MEASURED}: " + ", ".join(left_out)


def agreement_text(q: Quality) -> str:
    """'0.42 (95 % 0.33-0.52, 100 samples)': the agreement to its stated precision."""
    if q.agreement_low is None or q.agreement_high is None:
        return pct(q.top1_agreement)
    return (
        f"{q.top1_agreement:.2f} (95 % {q.agreement_low:.2f}-{q.agreement_high:.2f}, "
        f"{q.samples} samples)"
    )


def _skip_reason(d: Diagnosis, what: str) -> str:
    for s in d.skipped:
        if s.what == what:
            return s.reason
    return "no calibration data"


def _findings(d: Diagnosis) -> list[Block]:
    out: list[Block] = [Heading(2, f"Findings ({severity_counts(d.findings)})")]
    if not d.findings:
        out.append(Para("No findings.", "muted"))
    for f in sorted(d.findings, key=lambda f: (-f.severity.rank, f.code)):
        out += finding_blocks(f)
    return out


def finding_blocks(f: Finding) -> list[Block]:
    """One finding: its heading, evidence, measured effect, fix and YAML change."""
    out: list[Block] = [Heading(3, f"[{f.severity.value}] {f.code}: {f.message}", f.severity)]
    rows = [
        (e.what, e.observed + (f" (expected {e.expected})" if e.expected else "")
         + (f" at {e.where}" if e.where else ""))
        for e in f.evidence
    ]  # fmt: skip
    if f.measured:
        rows.append(("measured", f.measured))
    if f.fix:
        rows.append(("fix", f.fix))
    if f.remedy is not None and not f.remedy.is_empty():
        rows.append(("change", f.remedy.describe()))
    if f.related:
        rows.append(("related", ", ".join(f.related)))
    if rows:
        out.append(KeyValues(tuple(rows)))
    return out


def build_log(report: LogReport) -> list[Block]:
    """`ptqtui log`: the log's facts, its output and worst-node tables, the converter rules'
    findings (as in a diagnosis), and what a run with the model and data would add."""
    from ptqtui.check.converter import (
        OUTPUT_HEADER,
        WORST_HEADER,
        WOULD_ADD,
        output_rows,
        summary_lines,
        worst_rows,
    )

    log = report.log
    blocks: list[Block] = [Heading(1, f"Converter log {log.path.name}")]
    blocks += [Para(line) for line in summary_lines(log)]
    outputs = output_rows(log)
    if outputs:
        blocks.append(Heading(2, "Model outputs (the converter's measure)"))
        numeric = (False, True, True, True, True, False)
        blocks.append(Table(OUTPUT_HEADER, tuple(outputs), numeric))
    worst = worst_rows(log)
    if worst:
        blocks.append(Heading(2, f"Lowest per-node cosine ({len(worst)} of {len(log.nodes)})"))
        blocks.append(Table(WORST_HEADER, tuple(worst), (False, False, True, False)))
    blocks.append(Heading(2, f"Findings ({severity_counts(report.findings) or 'none'})"))
    for f in report.findings:
        blocks += finding_blocks(f)
    blocks += [Para(f"skipped {code}: {reason}", "muted") for code, reason in report.skipped]
    blocks.append(
        Heading(2, "With the model and data (ptqtui MODEL.onnx -c CONFIG --mapper-log LOG)")
    )
    blocks += [Para(f"- {item}") for item in WOULD_ADD]
    return blocks


def build_lint(results: Sequence[LintResult]) -> list[Block]:
    """`ptqtui lint`: per config, its findings (as in a diagnosis), notes, or why unreadable."""
    blocks: list[Block] = [Heading(1, "ptqtui lint")]
    for r in results:
        if r.error:
            blocks.append(Heading(2, f"{r.path}: error: {r.error}", Severity.CRITICAL))
            continue
        counts = severity_counts(r.findings) if r.findings else "clean"
        blocks.append(Heading(2, f"{r.path}: {counts}"))
        for f in r.findings:
            blocks += finding_blocks(f)
        blocks += [Para(f"note: {note}", "muted") for note in r.notes]
    return blocks


SMALL_LEVELS = 16  # int8 levels below which a channel is "squeezed" by a per-tensor scale


def _pictures(d: Diagnosis) -> list[Block]:
    """The pictures behind the findings: samples, histograms with thresholds, weight ranges."""
    found = pictures(d)
    if not found:
        return []
    out: list[Block] = [Heading(2, "Pictures")]
    for f, picture in found:
        if picture.kind is PictureKind.SAMPLES:
            items = tuple(
                Thumbnail(f"{t.sample}: {t.view}", t.png, t.width, t.height)
                for t in picture.thumbnails
            )
            note = (
                "each as given and as the fix would read it"
                if any(t.fix is not None for t in picture.thumbnails)
                else "as given"
            )
            out.append(Thumbnails(f"{f.code}: calibration samples", items, note))
            continue
        for n in picture.nodes[:NODES_PER_FINDING]:
            if picture.kind is PictureKind.WEIGHTS:
                out.append(weight_bars(n, f.code))
            elif picture.kind is PictureKind.HISTOGRAM:
                out.append(node_histogram(n, f.code))
            # SENSITIVITY: the Nodes section draws the ranking once for every finding
    return out


def method_label(method: str) -> str:
    """'max', 'p99.99%', 'kl'."""
    if method.startswith("max_percentile "):
        return f"p{100 * float(method.split(' ', 1)[1]):g}%"
    return method


def node_histogram(n: NodeRow, code: str = "") -> Histogram:
    top = n.histogram_top or max(abs(n.act_min or 0.0), abs(n.act_max or 0.0)) or 1.0
    marks = tuple(Mark(method_label(m.method), m.threshold, m.chosen) for m in n.thresholds)
    if not marks and n.threshold is not None:
        marks = (Mark("in use", n.threshold, True),)
    used = next((m for m in marks if m.chosen), None)
    note = ""
    amax = max(abs(n.act_min or 0.0), abs(n.act_max or 0.0))
    if used is not None and amax > used.value > 0:
        note = f"the threshold in use ({used.label} {used.value:.4g}) clips the top "
        note += f"{100 * (1 - used.value / amax):.0f} % of the range (max |x| {amax:.4g})"
    prefix = f"{code}: " if code else ""
    return Histogram(f"{prefix}|x| at the input of {n.name}", n.histogram, top, marks, note)


def weight_bars(n: NodeRow, code: str = "") -> ChannelBars:
    values = n.weight_channel_max
    tensor = n.weight_tensor_max if n.weight_tensor_max is not None else max(values)
    squeezed = sum(1 for v in values if tensor > 0 and 127 * v / tensor < SMALL_LEVELS)
    note = (
        f"per-tensor max |w| {tensor:.4g}: {squeezed} of {len(values)} channels use fewer "
        f"than {SMALL_LEVELS} of the 127 int8 levels; per_channel gives each its own scale"
    )
    if n.weight_channels > len(values):
        note += f" (first {len(values)} of {n.weight_channels} channels shown)"
    prefix = f"{code}: " if code else ""
    return ChannelBars(f"{prefix}max |w| per output channel of {n.name}", values, tensor, note)


def _as_deployed(d: Diagnosis) -> list[tuple[str, str]]:
    """The pipeline fixes' top-1 as the user would see it (the plan's, same labelled images)."""
    rows = []
    for s in d.plan.steps if d.plan is not None else ():
        if s.measured_on is not None and s.measured_on.reference is Reference.LABELS:
            effect = s.effect()
            if effect is not None:
                rows.append(("pipeline fix", f"step {s.number}: {effect}"))
    return rows


def _plan(d: Diagnosis) -> list[Block]:
    if d.plan is None:
        return [Heading(2, "Plan"), Para("No plan: " + _skip_reason(d, "plan"), "muted")]
    p = d.plan
    out: list[Block] = [Heading(2, "Plan"), Para(p.route)]
    if p.target:
        status = f"; best state: {p.target_status}" if p.target_status else ""
        out.append(Para(f"Target: {p.target}{status}"))
    if p.cut_short:
        out.append(
            Para(
                f"Parts of this run were {NOT_MEASURED}: no step, verdict or QAT advice is "
                "drawn from them; run without --time-budget for the whole plan.",
                "strong",
            )
        )
    for s in p.steps:
        out.append(Heading(3, f"{s.number}. [{s.severity.value}] {s.title}", s.severity))
        rows = [("do", s.action), ("why", s.why)]
        rows += [("evidence", e) for e in s.evidence]
        effect = s.effect()
        if effect is not None:
            rows.append(("measured", effect))
        elif p.cut_short:
            rows.append(("measured", f"{NOT_MEASURED}, or the simulator cannot try this step"))
        else:
            rows.append(("measured", "not measured (the simulator cannot try this step)"))
        out.append(KeyValues(tuple(rows)))
        if s.yaml_change:
            out.append(Code(s.yaml_change, "yaml"))
    if p.reached is not None:
        reached = f"best state reached: cosine {fmt(p.reached.cosine)}"
        if p.reached.top1 is not None:
            reached += f", {p.reached.label_metric or 'top-1'} {pct(p.reached.top1)}"
        elif p.reached.agreement is not None:
            reached += f", {p.reached.metric or 'agreement'} {pct(p.reached.agreement)}"
            if p.reached.agreement_low is not None and p.reached.agreement_high is not None:
                reached += f" ({pct(p.reached.agreement_low)}-{pct(p.reached.agreement_high)})"
        if p.target_status:
            out.append(Para(f"{reached}; target {p.target_status}", "strong"))
        else:
            out.append(Para(f"{reached} (target cosine {fmt(p.target_cosine, 3)})", "strong"))
    if p.config_diff:
        out.append(Heading(3, "Config changes"))
        out.append(Code(p.config_diff, "diff"))
    return out


def _nodes(d: Diagnosis) -> list[Block]:
    if d.analysis is None or not d.analysis.nodes:
        return []
    nodes = sorted(d.analysis.nodes, key=_node_badness)
    shown = nodes[:NODE_ROWS]
    rows = tuple(
        (
            n.name,
            n.op_type,
            fmt(n.similarity.cosine),
            fmt(n.similarity.sqnr_db, 1),
            fmt(n.similarity.mre, 3),
            fmt(n.sensitivity_cosine),
            f"{n.dtype} {n.placement}",
        )
        for n in shown
    )
    note = None
    if len(nodes) > len(shown):
        note = f"the {len(shown)} worst of {len(nodes)} nodes; the JSON report has all"
    out: list[Block] = [
        Heading(2, "Nodes (worst first)"),
        Table(
            ("node", "op", "cosine", "SQNR dB", "MRE", "alone", "runs as"),
            rows,
            (False, False, True, True, True, True, False),
            note
            or "cosine/SQNR/MRE: node output, everything quantized; alone: model output "
            "cosine with only this node quantized",
        ),
    ]
    out += _trimmed_nodes(d.analysis)
    sens = [n for n in nodes if n.sensitivity_cosine is not None]
    if sens:
        worst = sorted(sens, key=lambda n: n.sensitivity_cosine or 1.0)[:10]
        out.append(
            Chart(
                "bars",
                "Sensitivity: model output cosine with only this node quantized",
                tuple((n.name, float(n.sensitivity_cosine or 0.0)) for n in worst),
                "output cosine",
                reference=SENSITIVE_COSINE,
            )
        )
    return out


def _trimmed_nodes(a: Analysis) -> list[Block]:
    """What the time budget left out of the node table and the sensitivity, said as such."""
    out: list[Block] = []
    if AnalysisStage.NODE_TABLE in a.trimmed:
        out.append(Para(f"node table: fewer samples than asked, the rest {NOT_MEASURED}", "muted"))
    if AnalysisStage.SENSITIVITY in a.trimmed:
        bpu = [n for n in a.nodes if n.placement == "BPU"]
        missing = sum(1 for n in bpu if n.sensitivity_cosine is None)
        what = f"{missing} of {len(bpu)} nodes" if missing else "part of it (samples, int16 gains)"
        out.append(Para(f"sensitivity: {what} {NOT_MEASURED}", "strong"))
    return out


def _converter(d: Diagnosis) -> list[Block]:
    """The converter's own log: its outputs, and its node table beside the simulator's."""
    c = d.converter
    if c is None:
        return []
    out: list[Block] = [Heading(2, "The converter's log")]
    agreement = c.agreement
    if c.spearman is not None:
        agreement += (
            f" (Spearman {c.spearman:.2f} over {len(c.rows)} nodes in both tables; "
            f"{c.top_k_overlap} of the {c.top_k} worst shared)"
        )
    rows = [
        ("log", c.log),
        ("samples", str(c.samples) if c.samples is not None else "-"),
        (
            "method",
            (c.method or "-")
            + (", per_channel" if c.per_channel and "per_channel" not in (c.method or "") else ""),
        ),
        ("agreement", agreement),
    ]
    if c.cosine_converter_thresholds is not None:
        rows.append(
            (
                "its thresholds",
                f"output cosine {fmt(c.cosine_converter_thresholds)} with the converter's "
                f"{c.thresholds_used} activation thresholds, {fmt(c.cosine_own_thresholds)} "
                "with ours (same scheme and samples)",
            )
        )
    elif c.thresholds_file is not None:
        rows.append(("its thresholds", f"none of {c.thresholds_file} matched our tensors"))
    out.append(KeyValues(tuple(rows)))
    out.append(Para(c.meaning))
    if c.outputs:
        out.append(
            Table(
                ("output", "converter cosine", "reading", "L1", "L2", "Chebyshev"),
                tuple(
                    (
                        o.name,
                        fmt(o.cosine, 6),
                        o.reading,
                        f"{o.l1:.4g}",
                        f"{o.l2:.4g}",
                        f"{o.chebyshev:.4g}",
                    )
                    for o in c.outputs
                ),
                (False, True, False, True, True, True),
            )
        )
    worst = sorted(c.rows, key=lambda r: r.converter_rank)[:NODE_ROWS]
    if worst:
        note = None
        if len(c.rows) > len(worst):
            note = f"the {len(worst)} lowest of {len(c.rows)} by the converter's cosine"
        if c.converter_only or c.simulator_only:
            counts = f"{c.converter_only} converter-only, {c.simulator_only} simulator-only rows"
            note = f"{note}; {counts}" if note else counts
        out.append(
            Table(
                ("node", "op", "converter", "simulator", "rank conv/sim", "dtype", "on"),
                tuple(
                    (
                        r.node,
                        r.op_type,
                        fmt(r.converter_cosine),
                        fmt(r.simulator_cosine),
                        f"{r.converter_rank}/{r.simulator_rank if r.simulator_rank else '-'}",
                        r.converter_dtype or "-",
                        r.converter_placement,
                    )
                    for r in worst
                ),
                (False, False, True, True, True, False, False),
                note=note,
            )
        )
    return out


def _node_badness(n: NodeRow) -> tuple[float, float]:
    alone = n.sensitivity_cosine if n.sensitivity_cosine is not None else 1.0
    cos = n.similarity.cosine
    return (alone if not math.isnan(alone) else -1.0, cos if not math.isnan(cos) else -1.0)


def _calibration(d: Diagnosis) -> list[Block]:
    a = d.analysis
    cut = a is not None and (AnalysisStage.SWEEP in a.trimmed or AnalysisStage.CURVE in a.trimmed)
    if a is None or (not a.sweep and not a.curve and not cut):
        return []
    out: list[Block] = [Heading(2, "Calibration")]
    if AnalysisStage.SWEEP in a.trimmed:
        what = "the rows that fitted; the rest" if a.sweep else "all of it"
        out.append(Para(f"method sweep: {what} {NOT_MEASURED}", "strong"))
    if AnalysisStage.CURVE in a.trimmed:
        out.append(
            Para(f"accumulated error: {len(a.curve)} points; the rest {NOT_MEASURED}", "strong")
        )
    if a.sweep:
        rows = tuple(
            (
                ("* " if r.chosen else "") + r.label,
                fmt(r.cosine),
                fmt(r.noise),
                pct(r.top1),
                pct(r.agreement)
                + (
                    f" ({100 * r.agreement_low:.0f}-{100 * r.agreement_high:.0f})"
                    if r.agreement_low is not None and r.agreement_high is not None
                    else ""
                ),
                r.note or "",
            )
            for r in a.sweep
        )
        # the task's metric names the column ("string agreement"), with its 95 % interval
        metric = next((r.metric for r in a.sweep if r.metric), None) or "agreement"
        out.append(
            Table(
                ("method", "cosine", "noise", "top-1", metric, "note"),
                rows,
                (False, True, True, True, True, False),
                "* the method the config resolves to; noise: spread over sample subsets",
            )
        )
    if a.log:
        out.append(Code("\n".join(a.log)))
    if a.curve:
        out.append(
            Chart(
                "line",
                "Accumulated error: output cosine as nodes are quantized in order",
                tuple((p.node, p.cosine) for p in a.curve),
                "output cosine",
                reference=TARGET_COSINE,
            )
        )
    return out


def _backend(a: Analysis | None) -> list[Block]:
    """--check-backend: the simulator against onnxruntime's own int8 kernels."""
    b = a.backend if a is not None else None
    if b is None:
        return []
    vnni = {True: "yes", False: "no", None: "unknown"}[b.cpu_vnni]
    rows = (
        ("7-bit weights", f"output cosine {fmt(b.cosine_reduce_range)} (simulator vs onnxruntime)"),
        ("8-bit weights", f"output cosine {fmt(b.cosine_full_range)}"),
        ("lost to the kernels", f"{fmt(b.saturation_loss)} cosine; CPU with VNNI: {vnni}"),
        ("samples", str(b.samples)),
    )
    out: list[Block] = [Heading(2, "Backend check (onnxruntime int8 kernels)"), KeyValues(rows)]
    if b.saturation_loss > BACKEND_SATURATION_COSINE:
        out.append(
            Para(
                "onnxruntime's u8s8 kernels saturate int16 sums of 8-bit weights on this CPU: "
                "what you measure with onnxruntime here is worse than the model's quantization. "
                "Compare with reduce_range (7-bit) weights, or on a CPU with VNNI or on the NPU."
            )
        )
    return out


def _inputs(d: Diagnosis) -> list[Block]:
    out: list[Block] = [Heading(2, "Inputs")]
    rows = []
    for f in d.files:
        text = f.path + (f" ({f.detail})" if f.detail else "")
        if f.sha256:
            text += f" sha256 {f.sha256[:16]}"
        rows.append((f.role, text))
    m = d.model
    rows.append(("model", f"{m.name}, opset {m.opset}, {m.nodes} nodes, "
                          f"{m.quantized_nodes} quantized"))  # fmt: skip
    rows.append(("ops", ", ".join(f"{op} {n}" for op, n in m.op_counts[:8])))
    rows.append(("outputs", ", ".join(m.outputs)))
    for i in m.inputs:
        norm = i.norm_type or "no config"
        if i.mean is not None or i.scale is not None:
            mean = " ".join(f"{v:g}" for v in i.mean or ())
            scale = " ".join(f"{v:g}" for v in i.scale or ())
            norm += f" (mean {mean or '-'}; scale {scale or '-'})"
        rows.append(
            (
                input_label(i.name),
                f"{i.shape} {i.dtype} {i.layout or '?'}; train {i.type_train or '?'}, "
                f"runtime {i.type_rt or '?'}; {norm}; calibration files {i.cal_dtype}",
            )
        )
    rows += [("in-model normalisation", n) for n in m.normalisation]
    for label, data in (("calibration", d.calibration), ("evaluation", d.evaluation)):
        if data is None:
            continue
        rows.append((label, f"{data.samples} samples ({', '.join(data.kinds)}) in "
                            f"{data.directory}"))  # fmt: skip
        rows += [(f"{label} size mismatch", s) for s in data.size_mismatches]
        rows += [(f"{label} skipped", s) for s in data.skipped]
    out.append(KeyValues(tuple(rows)))
    return out


def _run(d: Diagnosis) -> list[Block]:
    out: list[Block] = []
    if d.skipped:
        out.append(Heading(2, "Skipped"))
        out.append(KeyValues(tuple((s.what, s.reason) for s in d.skipped)))
    notes = list(d.notes) + (list(d.analysis.notes) if d.analysis else [])
    if notes:
        out.append(Heading(2, "Notes"))
        out += [Para(n) for n in notes]
    rows = [("ptqtui", d.version), ("seed", str(d.seed))]
    if d.analysis is not None:
        rows += [
            (t.stage, f"{t.seconds:.1f} s" + (f", {t.passes} forward passes" if t.passes else ""))
            for t in d.analysis.timings
        ]
    out += [Heading(2, "Run"), KeyValues(tuple(rows))]
    return out


BAR = 30  # characters of the longest text bar
EIGHTHS = " ▁▂▃▄▅▆▇█"


def text_pictures(block: object) -> list[str] | None:
    """Histograms, channel bars and thumbnails as plain lines (markdown fences, text report)."""
    if isinstance(block, Histogram):
        return _histogram_lines(block)
    if isinstance(block, ChannelBars):
        return _channel_lines(block)
    if isinstance(block, Thumbnails):
        lines = [f"{item.caption} ({item.width}x{item.height})" for item in block.items]
        return [*lines, f"({block.note}; the pictures are in the HTML report)"]
    return None


def _histogram_lines(h: Histogram, rows: int = 16) -> list[str]:
    """`rows` merged bins of log counts, each threshold named on the row it falls in."""
    merge = max(1, -(-len(h.counts) // rows))
    merged = [sum(h.counts[i : i + merge]) for i in range(0, len(h.counts), merge)]
    width = h.top * merge / max(len(h.counts), 1)
    ymax = max(math.log10(1 + c) for c in merged) or 1.0
    lines = []
    for i, count in enumerate(merged):
        lo, hi = i * width, (i + 1) * width
        bar = "#" * round(BAR * math.log10(1 + count) / ymax)
        here = [
            m for m in h.marks if lo <= m.value < hi or (i == len(merged) - 1 and m.value >= hi)
        ]
        tags = ", ".join(m.label + (" (in use)" if m.chosen else "") for m in here)
        row = f"{lo:8.3g}..{hi:<8.3g} {bar:<{BAR}} {count:>8}"
        lines.append(f"{row}  <- {tags}" if tags else row)
    if h.note:
        lines.append(h.note)
    return lines


def _channel_lines(c: ChannelBars, per_line: int = 64) -> list[str]:
    """Each channel one character high by eighths: the odd wide channel stands out."""
    finite = [v for v in c.values if math.isfinite(v)]
    top = c.tensor_max if math.isfinite(c.tensor_max) else max(finite, default=0.0)
    high = max(top, 1e-12)
    levels = [
        EIGHTHS[min(8, max(1 if v > 0 else 0, round(8 * v / high)))] if math.isfinite(v) else "?"
        for v in c.values
    ]
    lines = []
    for start in range(0, len(levels), per_line):
        end = min(start + per_line, len(levels)) - 1
        lines.append(f"channels {start:>3}-{end:<3} {''.join(levels[start : end + 1])}")
    lines.append(f"a full block: the per-tensor max |w| {c.tensor_max:.4g}")
    if c.note:
        lines.append(c.note)
    return lines
