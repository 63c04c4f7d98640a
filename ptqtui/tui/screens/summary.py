"""Summary: the loss band, float vs int8, findings by severity, the next step."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from ptqtui.check.findings import Severity
from ptqtui.report.document import agreement_text, budget_text
from ptqtui.tui.widgets.text import BAND_STYLE, SEVERITY_STYLE, num, pct, pct_interval

if TYPE_CHECKING:
    from ptqtui.diagnosis import Diagnosis


class SummaryView(VerticalScroll):
    """What the user reads first; every line points at a screen with the detail."""

    def __init__(self, diagnosis: Diagnosis, *, measuring: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.diagnosis = diagnosis
        self.measuring = measuring  # the loss is being measured (a line above says so)

    def compose(self):
        d = self.diagnosis
        yield Static(_headline(d, self.measuring), id="summary-headline")
        yield Static(_quality(d), id="summary-quality")
        yield Static(_counts(d), id="summary-counts")
        yield Static(_next_step(d), id="summary-next")
        yield Static(_inputs(d), id="summary-inputs")


def _headline(d: Diagnosis, measuring: bool = False) -> Text:
    text = Text()
    if d.title:
        text.append(d.title, style="bold").append("  ")
    text.append(d.model.name, style="" if d.title else "bold")
    text.append(f", {d.model.quantized_nodes} of {d.model.nodes} nodes quantized")
    quality = d.analysis.quality if d.analysis else None
    if d.budget is not None:  # --time-budget: said first, what it left out is not measured
        text.append("\nTime budget: ", style="bold").append(budget_text(d))
    text.append("\n")
    if quality is None and measuring:
        return text
    if quality is None:
        text.append("Loss: not measured", style="bold")
        text.append(" (no simulator results in this diagnosis)")
        return text
    text.append("Loss: ")
    band = quality.band.value.upper()
    if quality.loss_points is not None:
        band += f", {quality.loss_points:.1f} points"
    text.append(band, style=BAND_STYLE.get(quality.band, "bold"))
    text.append(f"  ({quality.basis})")
    if quality.band_uncertain:
        text.append("  band uncertain: the interval spans a band boundary")
    if quality.task_note:
        text.append(f"\n{quality.task_note}")
    return text


def _quality(d: Diagnosis) -> Table | Text:
    quality = d.analysis.quality if d.analysis else None
    if quality is None:
        return Text("")
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    table.add_column("", no_wrap=True)
    table.add_column("float", justify="right")
    table.add_column("int8", justify="right")
    if quality.top1_float is not None or quality.top1_quant is not None:
        name = quality.label_metric or "top-1"
        table.add_row(name, pct(quality.top1_float), pct(quality.top1_quant))
    if quality.top1_agreement is not None:
        table.add_row(quality.metric or "top-1 agreement", "", agreement_text(quality))
    if quality.char_error_rate is not None:
        table.add_row("character error rate", "", f"{quality.char_error_rate:.3f}")
    table.add_row("output cosine", "1.0000", num(quality.output_cosine))
    plan = d.plan
    if plan is not None and plan.reached is not None:
        reached = num(plan.reached.cosine)
        if plan.reached.top1 is not None:
            reached += f", {plan.reached.label_metric or 'top-1'} {pct(plan.reached.top1)}"
        elif plan.reached.agreement is not None:
            m = plan.reached
            reached += (
                f", {m.metric or 'agreement'} "
                f"{pct_interval(m.agreement, m.agreement_low, m.agreement_high)}"
            )
        table.add_row("after the plan", "", reached)
    return table


def _counts(d: Diagnosis) -> Group:
    text = Text("Findings: ", style="bold")
    if not d.findings:
        return Group(text.append("none"))
    parts = []
    for severity in Severity:
        n = sum(1 for f in d.findings if f.severity is severity)
        if n:
            parts.append((f"{n} {severity.value}", SEVERITY_STYLE[severity]))
    for i, (label, style) in enumerate(parts):
        if i:
            text.append(", ")
        text.append(label, style=style)
    text.append("   (2 Findings)", style="dim")
    lines = [text]
    for f in sorted(d.findings, key=lambda f: -f.severity.rank)[:3]:
        line = Text("  ", no_wrap=True, overflow="ellipsis")
        line.append(f"{f.code} ", style=SEVERITY_STYLE[f.severity])
        line.append(f.message)
        lines.append(line)
    return Group(*lines)


def _next_step(d: Diagnosis) -> Text:
    text = Text("Next step: ", style="bold")
    plan = d.plan
    step = plan.next_step if plan is not None else None
    if step is not None:
        text.append(f"{step.title}", style="bold")
        text.append(f"\n  {step.action}")
        effect = step.effect()
        if effect is not None:
            text.append(f"\n  measured: {effect}")
        text.append("   (5 Plan)", style="dim")
        return text
    worst = max(d.findings, key=lambda f: f.severity.rank, default=None)
    if worst is not None and worst.fix:
        text.append(f"{worst.code}: {worst.fix}")
    else:
        text.append("nothing to change" if not d.findings else "see the findings")
    return text


def _inputs(d: Diagnosis) -> Group:
    lines = [Text("Inputs", style="bold")]
    for f in d.files:
        line = Text(f"  {f.role:<12}", style="dim")
        line.append(f.path)
        if f.detail:
            line.append(f"  ({f.detail})", style="dim")
        lines.append(line)
    if d.analysis is not None:
        lines.append(Text(f"  {'scheme':<12}", style="dim").append(d.analysis.scheme))
    return Group(*lines)
