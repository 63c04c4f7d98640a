"""Findings: a table by severity and a detail pane; jump to the related nodes."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.console import Group
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from ptqtui.report.pictures import picture_of
from ptqtui.tui.messages import ShowNodes
from ptqtui.tui.screens.plots import picture_for
from ptqtui.tui.widgets.text import GOOD, clip, severity_text

if TYPE_CHECKING:
    from ptqtui.check.findings import Finding
    from ptqtui.diagnosis import Diagnosis


def sorted_findings(diagnosis: Diagnosis) -> list[Finding]:
    return sorted(diagnosis.findings, key=lambda f: (-f.severity.rank, f.code))


class FindingsView(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "related_nodes", "Related nodes"),
        Binding("e", "explain", "Explain"),
        Binding("p", "picture", "Picture"),
    ]

    def __init__(self, diagnosis: Diagnosis, **kwargs) -> None:
        super().__init__(**kwargs)
        self.diagnosis = diagnosis
        self.findings = sorted_findings(diagnosis)
        self.node_names = (
            {n.name for n in diagnosis.analysis.nodes} if diagnosis.analysis else set()
        )

    def compose(self):
        table: DataTable = DataTable(id="findings-table", cursor_type="row", zebra_stripes=True)
        table.add_column("severity", key="severity")
        table.add_column("code", key="code")
        table.add_column("finding", key="message")
        room = max(20, self.app.size.width - 24)  # severity and code columns, scrollbar
        for i, f in enumerate(self.findings):
            table.add_row(severity_text(f.severity), f.code, clip(f.message, room), key=str(i))
        yield table
        with VerticalScroll(id="finding-detail"):
            yield Static(self._detail(0) if self.findings else "No findings.", id="finding-text")

    def current(self) -> Finding | None:
        table = self.query_one(DataTable)
        if not self.findings:
            return None
        return self.findings[min(table.cursor_row, len(self.findings) - 1)]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        text = self.query("#finding-text")
        if self.findings and text:  # none once the view is being replaced (new results)
            text.first(Static).update(self._detail(event.cursor_row))
            self.query_one("#finding-detail").scroll_home(animate=False)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_related_nodes()

    def _detail(self, index: int) -> Group:
        f = self.findings[index]
        parts: list[Text] = []
        head = Text()
        head.append(f"{f.code} ", style="bold")
        head.append_text(severity_text(f.severity))
        parts.append(head)
        parts.append(Text(f.message))
        if f.evidence:
            parts.append(Text("\nEvidence", style="bold"))
            for e in f.evidence:
                line = Text(f"  {e.what}: ")
                line.append(e.observed, style="bold")
                if e.expected:
                    line.append(f" (expected {e.expected})")
                if e.where:
                    line.append(f"  [{e.where}]", style="dim")
                parts.append(line)
        if f.measured:
            parts.append(Text("\nMeasured", style="bold"))
            parts.append(Text(f"  {f.measured}"))
        if f.fix:
            parts.append(Text("\nFix", style="bold"))
            parts.append(Text(f"  {f.fix}"))
        if f.remedy is not None and not f.remedy.is_empty():
            parts.append(Text("\nChange", style="bold"))
            parts.append(Text(f"  {f.remedy.describe()}", style=GOOD))
        if self._has_picture(f):
            parts.append(Text("\nPicture", style="bold").append("  (p: show)", "dim"))
        if f.related:
            nodes = [r for r in f.related if r in self.node_names]
            files = [r for r in f.related if r not in self.node_names]
            if nodes:
                parts.append(Text("\nRelated nodes", style="bold").append("  (n: show)", "dim"))
                parts.append(Text("  " + ", ".join(nodes)))
            if files:
                parts.append(Text("\nRelated files", style="bold"))
                parts.append(Text("  " + ", ".join(files)))
        return Group(*parts)

    def _nodes_of(self, f: Finding) -> tuple[str, ...]:
        nodes = tuple(r for r in f.related if r in self.node_names)
        for e in f.evidence:
            if e.where and e.where.startswith("node ") and e.where[5:] in self.node_names:
                nodes += (e.where[5:],) if e.where[5:] not in nodes else ()
        return nodes

    def _has_picture(self, f: Finding) -> bool:
        rows = self.diagnosis.analysis.nodes if self.diagnosis.analysis else ()
        return picture_of(f, self.diagnosis.thumbnails, rows) is not None

    def action_picture(self) -> None:
        """The finding's picture: its samples' thumbnails, else its nodes' weight ranges (a
        per-channel remedy) or activation histograms."""
        f = self.current()
        if f is None:
            return
        rows = self.diagnosis.analysis.nodes if self.diagnosis.analysis else ()
        screen = picture_for(f, self.diagnosis.thumbnails, rows)
        if screen is None:
            self.notify(f"{f.code} has no picture", severity="warning")
            return
        self.app.push_screen(screen)

    def action_related_nodes(self) -> None:
        f = self.current()
        if f is None:
            return
        nodes = self._nodes_of(f)
        if not nodes:
            self.notify(f"{f.code} names no nodes", severity="warning")
            return
        self.post_message(ShowNodes(nodes))

    def action_explain(self) -> None:
        f = self.current()
        if f is not None:
            self.app.action_explain(f.code)  # type: ignore[attr-defined]
