"""Plan: ordered steps with measured effects, what-if toggles and the config they amount to."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.console import Group
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Select, Static

from ptqtui.tui.messages import ChoicesChanged
from ptqtui.tui.whatif import (
    Choices,
    Toggle,
    int16_allowed,
    plan_data_fixes,
    row_calibration,
    yaml_fragment,
)
from ptqtui.tui.widgets.text import (
    GOOD,
    REMOVED,
    WARN,
    clip,
    num,
    pct,
    pct_interval,
    severity_text,
    signed,
)

if TYPE_CHECKING:
    from ptqtui.advise.results import PlanStep
    from ptqtui.analysis.results import Measure, NodeRow
    from ptqtui.diagnosis import Diagnosis


def _measure(m: Measure | None, *, named: bool = True) -> str:
    """ "0.9956 / string agreement 47 (38-57) %": the cosine, then top-1 (or the labelled
    metric) or the task agreement with its 95 % interval; `named` False leaves the names out."""
    if m is None:
        return "-"
    if m.top1 is not None:
        name = f"{m.label_metric or 'top-1'} " if named else ""
        return f"{num(m.cosine)} / {name}{pct(m.top1)}"
    if m.agreement is not None:
        name = f"{m.metric or 'agreement'} " if named else ""
        agree = pct_interval(m.agreement, m.agreement_low, m.agreement_high)
        return f"{num(m.cosine)} / {name}{agree}"
    return num(m.cosine)


def diff_text(diff: str) -> Text:
    text = Text()
    for line in diff.splitlines():
        style = ""
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = GOOD
        elif line.startswith("-"):
            style = REMOVED
        elif line.startswith("@@"):
            style = "cyan"
        text.append(line + "\n", style=style)
    return text


class PlanView(VerticalScroll):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("i", "toggle('int16')", "Toggle int16"),
        Binding("c", "toggle('cpu')", "Toggle CPU"),
        Binding("w", "app.save_config", "Save config"),
        Binding("d", "show_diff", "Config diff"),
    ]

    def __init__(
        self,
        diagnosis: Diagnosis,
        can_measure: bool,
        unmeasured: str = "view mode",
        *,
        march: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.unmeasured = unmeasured  # why what-ifs are not measured, when they are not
        self.diagnosis = diagnosis
        self.plan = diagnosis.plan
        self.can_measure = can_measure
        self.march = march
        self.int16 = int16_allowed(march)  # X3 (bernoulli2) has no int16 node types
        self.base = Choices()  # the config as given
        self.choices = self.base
        analysis = diagnosis.analysis
        self.sweep = analysis.sweep if analysis else ()
        self.configured = next((i for i, r in enumerate(self.sweep) if r.chosen), None)
        nodes = analysis.nodes if analysis else ()
        # most sensitive first: those are the ones worth a toggle
        self.nodes: list[NodeRow] = sorted(
            nodes, key=lambda n: n.sensitivity_cosine if n.sensitivity_cosine is not None else 1.0
        )
        self.measured: Measure | None = None
        self.reference: Measure | None = None  # the config as given, on the plan's fixed data

    def compose(self):
        plan = self.plan
        yield Static(self._route(), id="plan-route")
        if plan is not None and plan.steps:
            table: DataTable = DataTable(id="plan-steps", cursor_type="row")
            table.add_column("#", key="number")
            table.add_column("severity", key="severity")
            table.add_column("step", key="title")
            table.add_column("cosine / task after", key="after")
            room = max(30, self.app.size.width - 50)
            for s in plan.steps:
                table.add_row(
                    str(s.number), severity_text(s.severity), clip(s.title, room),
                    _measure(s.after, named=False) if s.tried else "not tried",
                    key=str(s.number),
                )  # fmt: skip
            yield table
            yield Static(self._step(plan.steps[0]), id="step-detail")
        yield Static(self._whatif_title(), id="whatif-title")
        options = [(r.label, i) for i, r in enumerate(self.sweep) if r.remedy is not None]
        if options:
            chosen = self.configured if self.configured is not None else Select.NULL
            yield Select(options, value=chosen, prompt="calibration as configured",
                         id="whatif-method")  # fmt: skip
        elif self.sweep:
            yield Static(
                Text("  (no calibration what-ifs: the sweep rows carry no typed change)",
                     style="dim"),
                id="whatif-no-rows",
            )  # fmt: skip
        if self.nodes:
            table = DataTable(id="whatif-nodes", cursor_type="row")
            table.add_column("node (most sensitive first)", key="name")
            table.add_column("op", key="op")
            table.add_column("sens.", key="sens")
            table.add_column("int16 +", key="gain")
            table.add_column("runs as", key="choice")
            for n in self.nodes:
                table.add_row(
                    clip(n.name, 30), clip(n.op_type, 10), num(n.sensitivity_cosine),
                    signed(n.int16_gain), self._runs_as(n.name), key=n.name,
                )  # fmt: skip
            yield table
        yield Static(self._result(), id="whatif-result")
        yield Static(self._diff(), id="config-diff")

    # ------------------------------------------------------------------ rendering

    def _route(self) -> Text:
        plan = self.plan
        if plan is None:
            return Text("No plan in this diagnosis (the advisor did not run).", style="bold")
        text = Text("Route: ", style="bold").append(plan.route)
        if plan.target:
            text.append("\nTarget: ", style="bold").append(plan.target)
            if plan.target_status:
                text.append(f"\nBest state: {plan.target_status}")
            return text
        text.append(f"\nTarget cosine {num(plan.target_cosine)}; ")
        text.append(f"reached {_measure(plan.reached)}" if plan.reached else "not reached")
        return text

    def _step(self, s: PlanStep) -> Group:
        parts = [
            Text(f"{s.number}. {s.title}", style="bold"),
            Text(s.action),
            Text("why: ", style="dim").append(s.why),
        ]
        effect = s.effect()
        if effect is not None:
            parts.append(Text("measured: ", style="dim").append(effect))
        elif not s.tried:
            parts.append(Text("not tried by the simulator", style="dim"))
        for e in s.evidence:
            parts.append(Text("evidence: ", style="dim").append(e))
        if s.yaml_change:
            parts.append(Text("YAML:", style="dim"))
            parts.extend(Text(f"  {line}", style=GOOD) for line in s.yaml_change.splitlines())
        if s.codes:
            parts.append(Text("answers: ", style="dim").append(", ".join(s.codes)))
        return Group(*parts)

    def _whatif_title(self) -> Text:
        pick = "pick a calibration;  " if any(r.remedy is not None for r in self.sweep) else ""
        keys = "i node to int16,  " if self.int16 else ""
        text = Text("What if", style="bold").append(
            f"   {pick}{keys}c node to CPU,  w save config", style="dim"
        )
        if not self.int16:
            text.append(f"\n  no int16 on {self.march}: CPU only", style="dim")
        return text

    def _runs_as(self, name: str) -> Text:
        row = next(n for n in self.nodes if n.name == name)
        state = self.choices.state(row)
        changed = not state.same(self.base.state(row))
        return Text(
            state.label() + (" *" if changed else ""), style=f"bold {GOOD}" if changed else ""
        )

    def _result(self, note: str | None = None) -> Text:
        text = Text("Measured: ", style="bold")
        analysis = self.diagnosis.analysis
        quality = analysis.quality if analysis else None
        if self.choices.is_empty():
            if quality is None:
                return text.append("nothing (no simulator results)")
            text.append(f"cosine {num(quality.output_cosine)}")
            if quality.top1_quant is not None:
                text.append(f", top-1 {pct(quality.top1_quant)}")
            return text.append("  (the config as given)", style="dim")
        if note is not None:
            return text.append(note, style=WARN)
        if self.measured is not None:
            m = self.measured
            ref = self.reference
            text.append(f"cosine {num(m.cosine)}", style=f"bold {GOOD}")
            if ref is not None:
                text.append(f" ({signed(m.cosine - ref.cosine)})")
            elif quality is not None:
                text.append(f" ({signed(m.cosine - quality.output_cosine)})")
            if m.top1 is not None:
                text.append(f", top-1 {pct(m.top1)}")
            if ref is not None:
                fixes = ", ".join(c.describe() for c in plan_data_fixes(self.diagnosis))
                text.append(f"  (vs {num(ref.cosine)}: on the data the plan fixes: {fixes})", "dim")
            return text
        if not self.can_measure:
            text.append(f"not measured ({self.unmeasured})", style=WARN)
            row = self._sweep_only()
            if row is not None:
                text.append(f"; the sweep measured cosine {num(row.cosine)} for this calibration")
            return text
        return text.append("measuring...", style=WARN)

    def _sweep_only(self):
        if self.choices.nodes or self.choices.row is None:
            return None
        return self.sweep[self.choices.row]

    def _diff(self) -> Group:
        remedy = self.choices.remedy()
        change = yaml_fragment(remedy)
        config = getattr(self.app, "config_patch", None)
        parts: list = [Text("Config changes for these choices", style="bold")]
        if not change:
            parts.append(Text("  none: the config as given", style="dim"))
        elif config is not None and (result := config.patch(remedy)) is not None:
            parts.append(diff_text(result[0]))
        else:
            note = getattr(self.app, "patch_note", None)
            if note:
                parts.append(Text(f"  ({note})", style="dim"))
            parts.append(diff_text("".join(f"+{line}\n" for line in change.splitlines())))
        if self.plan is not None and self.plan.config_diff:
            parts.append(Text("\nThe plan's config diff (every step)", style="bold"))
            parts.append(diff_text(self.plan.config_diff))
        return Group(*parts)

    # ------------------------------------------------------------------ events

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "plan-steps" and self.plan is not None:
            event.stop()
            step = self.plan.steps[event.cursor_row]
            self.query_one("#step-detail", Static).update(self._step(step))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "whatif-nodes":
            event.stop()
            from ptqtui.tui.screens.nodes import NodeDetailScreen

            name = str(event.row_key.value)
            node = next((n for n in self.nodes if n.name == name), None)
            if node is not None:
                self.app.push_screen(NodeDetailScreen(node))

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.choose_row(None if event.value == Select.NULL else int(event.value))  # type: ignore[arg-type]

    def choose_row(self, index: int | None) -> None:
        """The calibration of sweep row `index` (None or the configured row: as configured)."""
        if index is None or index == self.configured:
            self.set_choices(self.choices.with_row(None, None))
            return
        row = self.sweep[index]
        self.set_choices(self.choices.with_row(index, row_calibration(row)))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """No int16 key where the march has no int16 node types."""
        return not (action == "toggle" and parameters == ("int16",) and not self.int16)

    def action_toggle(self, what: str) -> None:
        toggle = Toggle(what)
        if toggle is Toggle.INT16 and not self.int16:
            return
        tables = self.query("#whatif-nodes")
        if not tables:
            return
        table = tables.first(DataTable)
        if table.row_count == 0:
            return
        name = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        row = next(n for n in self.nodes if n.name == name)
        self.set_choices(self.choices.toggled(row, toggle))
        table.update_cell(name, "choice", self._runs_as(name))

    def action_show_diff(self) -> None:
        self.query_one("#config-diff").scroll_visible(animate=False, top=True)

    def set_choices(self, choices: Choices) -> None:
        if choices == self.choices:
            return
        self.choices = choices
        self.measured = None
        self.reference = None
        self.query_one("#whatif-result", Static).update(self._result())
        self.query_one("#config-diff", Static).update(self._diff())
        self.query_one("#whatif-result").scroll_visible(animate=False)
        if self.can_measure and not choices.is_empty():
            self.post_message(ChoicesChanged(choices))

    def show_measure(
        self,
        choices: Choices,
        measure: Measure | None,
        note: str | None,
        reference: Measure | None = None,
    ) -> None:
        """A re-measurement finished; stale ones (older choices) are dropped. `reference` is
        the config as given on the data the plan's pipeline steps fix (None: data as given)."""
        if choices != self.choices:
            return
        self.measured = measure
        self.reference = reference
        self.query_one("#whatif-result", Static).update(
            self._result(note if measure is None else None)
        )
