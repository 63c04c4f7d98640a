"""The Textual app: runs `diagnose` in a thread worker and renders the Diagnosis in six tabs.

Nothing heavy is imported at module level (the diagnosis machinery loads numpy, onnx and
onnxruntime): the first frame shows before the worker imports it.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import signal
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState, get_current_worker

from ptqtui.analysis.results import AnalysisStage
from ptqtui.atomic import write_atomically
from ptqtui.check.findings import Severity
from ptqtui.errors import ExitCode, PtqInputError
from ptqtui.remedy import Remedy
from ptqtui.tui.messages import (
    ChoicesChanged,
    DiagnosisReady,
    PartialReady,
    ProgressMade,
    Remeasured,
    ShowNodes,
)
from ptqtui.tui.screens.calibration import CalibrationView
from ptqtui.tui.screens.dialogs import (
    EXPORTS,
    ConfirmDialog,
    ErrorDialog,
    ExplainDialog,
    ExportDialog,
    SaveDialog,
)
from ptqtui.tui.screens.findings import FindingsView
from ptqtui.tui.screens.log import LogView
from ptqtui.tui.screens.nodes import COLUMNS, WIDE, NodesView
from ptqtui.tui.screens.plan import PlanView
from ptqtui.tui.screens.summary import SummaryView
from ptqtui.tui.whatif import (
    Choices,
    ConfigPatch,
    WhatIfService,
    config_patch,
    plan_data_fixes,
    relocate_paths,
    yaml_fragment,
)
from ptqtui.tui.widgets.pending import PendingLine, StageClock
from ptqtui.tui.widgets.progress import ProgressPanel
from ptqtui.tui.widgets.text import BAD, BAND_STYLE

if TYPE_CHECKING:
    from ptqtui.diagnosis import Diagnosis, DiagnosisRun, Partial
    from ptqtui.progress import Progress
    from ptqtui.request import Request

DIAGNOSIS_GROUP = "diagnosis"
REMEASURE_GROUP = "remeasure"
TABS = (
    ("summary", "Summary"),
    ("findings", "Findings"),
    ("nodes", "Nodes"),
    ("calibration", "Calibration"),
    ("plan", "Plan"),
    ("log", "Log"),
)
INTERRUPTED, USAGE = ExitCode.INTERRUPTED, ExitCode.USAGE  # the CLI's exit codes
INTERNAL = ExitCode.INTERNAL
# exit 128 + the signal, the terminal restored (a SIGINT from kill: 130, as Ctrl+C's key)
SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)

# diagnose(request, *, progress, cancel[, on_partial]): a Diagnosis, or a DiagnosisRun
Diagnose = Callable[..., "Diagnosis | DiagnosisRun"]
RULE_STAGES = ("checking rules", "model-response probe")  # the progress stages of the rules
# While a diagnosis runs, each screen says what it still waits for: (label, the progress
# stages it follows, the analysis whose result it waits for; None: the rules or the plan).
WAITING: dict[str, tuple[tuple[str, tuple[str, ...], AnalysisStage | None], ...]] = {
    "summary": (("loss", ("calibration", "evaluation", "task metric"), AnalysisStage.TASK_METRIC),),
    "findings": (("rules that need the simulation", RULE_STAGES, None),),
    "nodes": (
        ("node table", ("node table",), AnalysisStage.NODE_TABLE),
        ("sensitivity", ("sensitivity",), AnalysisStage.SENSITIVITY),
    ),
    "calibration": (
        ("accumulated error", ("accumulated error",), AnalysisStage.CURVE),
        ("method sweep", ("method sweep",), AnalysisStage.SWEEP),
    ),
    "plan": (("plan", ("planning",), None),),
    "log": (),
}


class PtqApp(App["Diagnosis | None"]):
    """Live (a Request and a diagnose function) or viewing a saved Diagnosis."""

    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "ptqtui"
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(str(i), f"show_tab('{tab}')", label, show=False)
            for i, (tab, label) in enumerate(TABS, start=1)
        ),
        Binding("x", "export", "Export"),
        Binding("question_mark", "toggle_keys", "Keys", show=False),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        request: Request | None = None,
        *,
        diagnosis: Diagnosis | None = None,
        diagnose: Diagnose | None = None,
        export_dir: Path | None = None,
        handle_signals: bool = False,
    ) -> None:
        super().__init__()
        self.request = request
        self.diagnosis = diagnosis
        self._diagnose = diagnose
        self.whatif: WhatIfService | None = None  # measures what-ifs; from DiagnosisReady
        self.config_patch: ConfigPatch | None = None  # the user's config, here and unchanged
        self.export_dir = export_dir  # None: next to the config, else the current folder
        self.handle_signals = handle_signals  # SIGNALS: exit 128+n (the CLI's app only)
        self.failure: str | None = None
        self.failure_code = USAGE  # INTERNAL when the diagnosis failed on a ptqtui bug
        self.crashed = False  # the app itself raised (Textual printed the traceback)
        self._started = time.monotonic()
        self.partial: Partial | None = None  # what the running diagnosis knows so far
        self._clocks: dict[str, StageClock] = {}  # progress stage -> its latest report
        self._shown: dict[str, tuple] = {}  # tab -> what its pane shows (to refresh on change)
        self._remeasuring: Choices | None = None
        self.patch_note: str | None = None  # why what-ifs show YAML keys instead of a diff
        if diagnosis is not None:
            self._adopt(diagnosis, None)

    def _adopt(self, diagnosis: Diagnosis, whatif: WhatIfService | None) -> None:
        """Take the Diagnosis and its what-if service; the user's config for what-if diffs
        when it is here and unchanged."""
        self.diagnosis = diagnosis
        self.whatif = whatif
        self.config_patch = config_patch(diagnosis)
        if self.config_patch is None and any(f.role == "config" for f in diagnosis.files):
            self.patch_note = "the config is not here or changed since: keys, not a diff"

    # ------------------------------------------------------------------ layout

    def compose(self):
        yield Static(self._title_text(), id="title-bar")
        if self.diagnosis is not None:
            yield self._tabs(self.diagnosis)
        else:
            name = _request_name(self.request)
            yield ProgressPanel(f"Diagnosing {name}", self._started, id="progress")
        yield Footer()

    def on_mount(self) -> None:
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for signum in SIGNALS:
                loop.add_signal_handler(signum, self._on_signal, signum)
        if self.diagnosis is None and self.request is not None:
            # after the first frame: the worker's imports (numpy, onnx) would hold the GIL
            self.call_after_refresh(self.start_diagnosis)
        elif self.diagnosis is not None:
            self._focus_tab("summary")

    def _title_text(self) -> Text:
        text = Text("ptqtui", style="bold")
        d = self.diagnosis or (self.partial.diagnosis if self.partial is not None else None)
        if d is None:
            if self.request is not None and self.request.title:
                text.append(f"  {self.request.title}")
            return text
        text.append(f"  {d.title or d.model.name}")
        quality = d.analysis.quality if d.analysis else None
        if quality is not None:
            text.append("  loss ")
            band = quality.band.value
            if quality.loss_points is not None:
                band += f" {quality.loss_points:.1f} pts"
            text.append(band, style=BAND_STYLE.get(quality.band, "bold"))
        if self.request is None:
            text.append("  (view)", style="dim")
        elif self.diagnosis is None:
            text.append("  measuring...", style="dim")
        return text

    def _tabs(self, d: Diagnosis, partial: Partial | None = None) -> _Main:
        panes = []
        for i, (tab, label) in enumerate(TABS, start=1):
            if tab == "findings":
                label = f"Findings ({len(d.findings)}{'+' if partial is not None else ''})"
            self._shown[tab] = self._what_shows(tab, d, partial)
            panes.append(TabPane(f"{i} {label}", *self._pane(tab, d, partial), id=tab))
        return _Main(panes, id="main")

    def _waiting(self, tab: str, partial: Partial | None) -> list[tuple[str, tuple[str, ...]]]:
        """The parts of `tab` a running diagnosis still waits for (none once it is done)."""
        if partial is None:
            return []
        pending = set(partial.pending)
        return [
            (label, stages)
            for label, stages, stage in WAITING[tab]
            if stage is None or stage in pending
        ]

    def _what_shows(self, tab: str, d: Diagnosis, partial: Partial | None) -> tuple:
        waiting = tuple(self._waiting(tab, partial))
        return (partial is None, waiting, self._has_view(tab, d, partial))

    def _has_view(self, tab: str, d: Diagnosis, partial: Partial | None) -> bool:
        """Whether `tab` has something to show yet (the rest of it is pending)."""
        if partial is None:
            return True
        a = d.analysis
        if tab == "plan":
            return False
        if tab == "nodes" and partial.pending:
            return a is not None and bool(a.nodes)
        if tab == "calibration" and partial.pending:
            return a is not None and bool(a.curve or a.sweep)
        return True

    def _pane(self, tab: str, d: Diagnosis, partial: Partial | None) -> list[Any]:
        """The widgets of one tab: what is pending (with its progress), then its view."""
        widgets: list[Any] = [
            PendingLine(label, stages, self._clocks)
            for label, stages in self._waiting(tab, partial)
        ]
        if self._has_view(tab, d, partial):
            widgets.append(self._view(tab, d, partial))
        return widgets

    def _view(self, tab: str, d: Diagnosis, partial: Partial | None) -> Any:
        if tab == "summary":
            measuring = partial is not None and AnalysisStage.TASK_METRIC in partial.pending
            return SummaryView(d, measuring=measuring, id="summary-view")
        if tab == "findings":
            return FindingsView(d, id="findings-view")
        if tab == "nodes":
            wide = self.size.width >= WIDE if self.is_running else False
            return NodesView(d, wide=wide, width=self.size.width, id="nodes-view")
        if tab == "calibration":
            return CalibrationView(d, id="calibration-view")
        if tab == "plan":
            return PlanView(
                d,
                can_measure=self.whatif is not None,
                unmeasured="view mode" if self.request is None else "no simulator for what-ifs",
                march=self.config_patch.march if self.config_patch else None,
                id="plan-view",
            )
        return LogView(d, id="log-view")

    async def _refresh_tabs(self, d: Diagnosis, partial: Partial | None) -> None:
        """Refill the panes whose content changed, keeping the active tab and the focus."""
        tabs = self.query(TabbedContent)
        if not tabs:
            await self.query(ProgressPanel).remove()
            await self.mount(self._tabs(d, partial), before=self.query_one(Footer))
            self._focus_tab("summary")
            return
        tabbed = tabs.first()
        for tab, _ in TABS:
            shows = self._what_shows(tab, d, partial)
            if partial is not None and self._shown.get(tab) == shows:
                continue
            self._shown[tab] = shows
            pane = self.query_one(f"#{tab}", TabPane)
            await pane.remove_children()
            await pane.mount_all(self._pane(tab, d, partial))
            if tab == "findings":
                more = "+" if partial is not None else ""
                tabbed.get_tab(tab).label = f"2 Findings ({len(d.findings)}{more})"
            if tabbed.active == tab:
                self._focus_tab(tab)

    # ------------------------------------------------------------------ the diagnosis

    @work(thread=True, exclusive=True, exit_on_error=False, group=DIAGNOSIS_GROUP)
    def start_diagnosis(self) -> None:
        cancel = get_current_worker().cancelled_event
        diagnose = self._diagnose
        if diagnose is None:
            from ptqtui.diagnosis import run_diagnosis as diagnose  # numpy, onnx: the worker's
        from ptqtui.diagnosis import Diagnosis

        extra: dict[str, Any] = {}
        if _accepts(diagnose, "on_partial"):
            extra["on_partial"] = self._post_partial
        result = diagnose(self.request, progress=self._post_progress, cancel=cancel, **extra)
        if cancel.is_set():
            return
        if isinstance(result, Diagnosis):
            self.post_message(DiagnosisReady(result))
        else:
            self.post_message(DiagnosisReady(result.diagnosis, result.whatif))

    def _post_progress(self, progress: Progress) -> None:
        self.post_message(ProgressMade(progress, time.monotonic()))

    def _post_partial(self, partial: Partial) -> None:
        self.post_message(PartialReady(partial))

    def on_progress_made(self, message: ProgressMade) -> None:
        p, at = message.progress, message.at
        previous = self._clocks.get(p.stage)
        started = at if previous is None or p.done < previous.progress.done else previous.started
        clock = self._clocks[p.stage] = StageClock(p, at, started)
        panels = self.query(ProgressPanel)
        if panels:
            panels.first().show(p, at)
        for line in self.query(PendingLine):
            line.follow(clock)

    async def on_partial_ready(self, message: PartialReady) -> None:
        """Results as they come: the screens show what is known, and what is pending."""
        if self.diagnosis is not None:  # a late one after the whole diagnosis
            return
        if self.partial is None:  # the early rules are done: their progress is not the rest's
            for stage in RULE_STAGES:
                self._clocks.pop(stage, None)
        self.partial = message.partial
        self.query_one("#title-bar", Static).update(self._title_text())
        await self._refresh_tabs(message.partial.diagnosis, message.partial)

    async def on_diagnosis_ready(self, message: DiagnosisReady) -> None:
        self._adopt(message.diagnosis, message.whatif)
        self.partial = None
        self.query_one("#title-bar", Static).update(self._title_text())
        await self._refresh_tabs(message.diagnosis, None)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state != WorkerState.ERROR:
            return
        error = worker.error
        from ptqtui.progress import Cancelled

        if isinstance(error, Cancelled):
            return
        if worker.group == REMEASURE_GROUP:
            if self._remeasuring is not None:
                self._plan_view_show(self._remeasuring, None, f"could not measure: {error}")
            return
        if worker.group == DIAGNOSIS_GROUP:
            from ptqtui.errors import PtqInputError, UsageError

            self.failure = _describe(error, self.request)
            bad_input = isinstance(error, PtqInputError | UsageError)
            self.failure_code = USAGE if bad_input else INTERNAL
            panels = self.query(ProgressPanel)
            if panels:
                panels.first().query_one("#progress-stage", Static).update(
                    Text("  failed: ", style=BAD).append(self.failure)
                )
            self.push_screen(ErrorDialog("The diagnosis failed", self.failure))

    # ------------------------------------------------------------------ what-ifs

    def on_choices_changed(self, message: ChoicesChanged) -> None:
        if self.whatif is None:
            return
        self._remeasuring = message.choices
        self.run_remeasure(self.whatif, message.choices)

    @work(thread=True, exclusive=True, exit_on_error=False, group=REMEASURE_GROUP)
    def run_remeasure(self, whatif: WhatIfService, choices: Choices) -> None:
        """Measure the choices' remedy; a superseded what-if's result is dropped."""
        cancel = get_current_worker().cancelled_event
        fixes = plan_data_fixes(self.diagnosis) if self.diagnosis is not None else ()
        base = Remedy(inputs=fixes)
        measure = whatif.measure(base.then(choices.remedy()), cancel=cancel)
        reference = whatif.measure(base, cancel=cancel) if fixes else None
        if not cancel.is_set():
            self.post_message(Remeasured(choices, measure, reference=reference))

    def on_remeasured(self, message: Remeasured) -> None:
        self._plan_view_show(message.choices, message.measure, message.note, message.reference)

    def _plan_view_show(
        self, choices: Choices, measure: Any, note: str | None, reference: Any = None
    ) -> None:
        views = self.query(PlanView)
        if views:
            views.first().show_measure(choices, measure, note, reference)

    # ------------------------------------------------------------------ navigation

    def action_show_tab(self, tab: str) -> None:
        tabs = self.query(TabbedContent)
        if not tabs:
            return
        tabs.first().active = tab
        self._focus_tab(tab)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """A click on a tab: focus its main widget (stale events, e.g. the first one, not)."""
        if not self.screen_stack:  # a late event while the app shuts down
            return
        if event.pane.id and event.pane.id == event.tabbed_content.active:
            focused = self.focused
            if focused is None or event.pane not in focused.ancestors:
                self._focus_tab(event.pane.id)

    def _focus_tab(self, tab: str) -> None:
        targets = {
            "findings": "#findings-table",
            "nodes": "#nodes-table",
            "calibration": "#sweep-table",
            "plan": "#plan-steps",
        }
        selector = targets.get(tab)
        found = self.query(selector) if selector else None
        if found:
            found.first().focus()
            return
        views = self.query(f"#{tab}-view")
        if views:
            view = views.first()
            if view.can_focus:
                view.focus()
            else:
                focusable = view.query("DataTable, Select")
                if focusable:
                    focusable.first().focus()

    def on_show_nodes(self, message: ShowNodes) -> None:
        self.action_show_tab("nodes")
        self.query_one(NodesView).show_only(message.names)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide what needs a Diagnosis (export, tabs, save) until there is one."""
        if action == "show_tab":  # the tabs open with the first results
            return self.diagnosis is not None or self.partial is not None
        needs_diagnosis = action in ("export", "save_config", "explain")
        return not (needs_diagnosis and self.diagnosis is None)

    def action_toggle_keys(self) -> None:
        """The keys of the focused screen, in a side panel (again to hide it)."""
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    # ------------------------------------------------------------------ quitting

    async def action_quit(self) -> None:
        self._cancel_workers()
        if self.diagnosis is None:
            interrupted = INTERRUPTED if self.request is not None else 0
            code = self.failure_code if self.failure else interrupted
            self.exit(None, return_code=code)
            return
        self.exit(self.diagnosis, return_code=self._findings_code())

    def _cancel_workers(self) -> None:
        for worker in [w for w in self.workers if w.is_running]:
            worker.cancel()

    def _on_signal(self, signum: int) -> None:
        """SIGTERM, SIGHUP or SIGINT: stop the workers and leave as on quit (Textual restores the
        terminal: alternate screen off, mouse tracking off, cursor shown); exit 128 + n."""
        self._cancel_workers()
        self.exit(None, return_code=128 + signum)

    def on_unmount(self) -> None:
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for signum in SIGNALS:
                loop.remove_signal_handler(signum)

    def _handle_exception(self, error: Exception) -> None:
        """An exception in the app itself: a ptqtui bug, exit 3 as the CLI's internal error."""
        self.crashed = True
        super()._handle_exception(error)
        self._return_code = INTERNAL

    def _findings_code(self) -> int:
        if self.request is None or self.diagnosis is None or self.request.fail_on == "never":
            return 0
        worst = self.diagnosis.findings_at_least(Severity.parse(self.request.fail_on))
        return 1 if worst else 0

    # ------------------------------------------------------------------ explain

    def action_explain(self, code: str) -> None:
        if self.diagnosis is None:
            return
        findings = [f for f in self.diagnosis.findings if f.code == code]
        body = Text()
        info = _rule_info(code)
        if info is not None:
            body.append(f"{info.title}\n\n", style="bold")
            body.append("Why: ", style="bold").append(f"{info.why}\n\n")
            body.append("Fix: ", style="bold").append(f"{info.fix}\n\n")
        for f in findings:
            body.append("Here: ", style="bold").append(f"{f.message}\n")
            if f.fix and (info is None or f.fix != info.fix):
                body.append("Fix here: ", style="bold").append(f"{f.fix}\n")
        if not body:
            body.append("No finding or rule with this code.")
        name = f" {info.name}" if info is not None else ""
        self.push_screen(ExplainDialog(f"{code}{name}", body))

    # ------------------------------------------------------------------ export

    def action_export(self, fmt: str = "md") -> None:
        if self.diagnosis is None:
            self.notify("Nothing to export until the diagnosis is ready", severity="warning")
            return

        def done(result: tuple[str, Path] | None) -> None:
            if result is not None:
                self.write_or_ask(*result)

        config = self._config_folder() / self._config_name()
        dialog = ExportDialog(self._folder(), "ptqtui-report", config, fmt)
        self.push_screen(dialog, done)

    def action_save_config(self) -> None:
        """Save the config for the chosen what-ifs (or the plan's): next to the user's config
        by default, anywhere the user types; asks before overwriting."""
        if self.diagnosis is None:
            return

        def done(path: Path | None) -> None:
            if path is not None:
                self.write_or_ask("config", path)

        self.push_screen(SaveDialog(self._config_folder() / self._config_name()), done)

    def _folder(self) -> Path:
        """Where reports go by default: the app's export folder, else the current folder."""
        return self.export_dir or Path.cwd()

    def _config_folder(self) -> Path:
        """Where a saved config goes by default: beside the user's, so its paths still hold."""
        if self.export_dir is None and self.config_patch is not None:
            return self.config_patch.path.parent
        return self._folder()

    def _config_name(self) -> str:
        config = (
            next((f for f in self.diagnosis.files if f.role == "config"), None)
            if (self.diagnosis)
            else None
        )
        stem = Path(config.path).stem if config else "config"
        return f"{stem}.ptqtui.yaml"

    def write_or_ask(self, fmt: str, path: Path) -> None:
        """Write at once, or after a yes when `path` exists already."""
        if not path.exists():
            self.export(fmt, path)
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.export(fmt, path)

        what = "a folder" if path.is_dir() else "a file"
        self.push_screen(ConfirmDialog(f"{path} exists ({what}). Overwrite it?"), done)

    def export(self, fmt: str, path: Path) -> Path | None:
        """Write a report or the patched config atomically; notify, or show why not."""
        if self.diagnosis is None:
            return None
        try:
            if _is_input(path, self.diagnosis, self.request):
                raise OSError(f"{path} is one of your inputs; ptqtui never overwrites them")
            if path.is_dir():
                raise OSError(f"{path} is a folder; give a file name")
            if fmt == "config":
                text = self._config_text(path.parent)
                if text is None:
                    self.notify(
                        "Nothing to save: no patched config and no changes chosen",
                        severity="warning",
                    )
                    return None
            else:
                from ptqtui.report import write_report

                buffer = io.StringIO()
                write_report(self.diagnosis, fmt, buffer, width=100)
                text = buffer.getvalue()
            write_atomically(path, text)
        except (OSError, PtqInputError) as exc:
            self.push_screen(ErrorDialog("Export failed", str(exc)))
            return None
        self.notify(f"Wrote {path}", title="Export")
        return path

    def _config_text(self, folder: Path) -> str | None:
        """The config to save in `folder`: the user's with the chosen what-ifs (else the
        plan's changes), its relative paths rewritten to hold from `folder`; without the
        user's config, the changed keys as a fragment to merge."""
        views = self.query(PlanView)
        view = views.first() if views else None
        plan = self.diagnosis.plan if self.diagnosis else None
        config = self.config_patch
        full: str | None = None
        if view is not None and not view.choices.is_empty():
            remedy = view.choices.remedy()
            result = config.patch(remedy) if config is not None else None
            if result is None:
                source = self._config_name().replace(".ptqtui", "")
                return (
                    f"# ptqtui: the changes chosen on the Plan screen, to merge into {source}\n"
                    + yaml_fragment(remedy)
                )
            full = result[1]
        elif plan is not None and plan.patched_config:
            full = plan.patched_config
        if full is None:
            return None
        import yaml

        from ptqtui.advise.patch import PatchError

        try:
            if config is not None:
                return config.relocated(full, folder)
            ref = next((f for f in self.diagnosis.files if f.role == "config"), None)
            if ref is None:  # pragma: no cover - a patched config comes from a config
                return full
            return relocate_paths(full, Path(ref.path).parent, folder)  # the config changed
        except (PatchError, ValueError, yaml.YAMLError) as exc:
            raise OSError(f"cannot rewrite the config's relative paths: {exc}") from None

    # ------------------------------------------------------------------ command palette

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for i, (tab, label) in enumerate(TABS, start=1):
            yield SystemCommand(
                f"show: {label.lower()}", f"the {label} screen (key {i})",
                lambda tab=tab: self.action_show_tab(tab),
            )  # fmt: skip
        if self.diagnosis is None:
            return
        for fmt, label, _ in EXPORTS:
            yield SystemCommand(
                f"export: {label.split(' (')[0]}", "choose where to write it",
                lambda fmt=fmt: self.action_export(fmt),
            )  # fmt: skip
        for code in sorted({f.code for f in self.diagnosis.findings}):
            yield SystemCommand(
                f"explain: {code}", "what the rule checks, why it matters, how to fix it",
                lambda code=code: self.action_explain(code),
            )  # fmt: skip
        for column in COLUMNS:
            yield SystemCommand(
                f"sort: nodes by {column.label}", "on the Nodes screen",
                lambda key=column.key: self._sort_nodes(key), discover=False,
            )  # fmt: skip
        yield SystemCommand(
            "filter: nodes below cosine 0.99", "nodes whose output drifted furthest from float",
            lambda: self._filter_below("0.99"), discover=False,
        )  # fmt: skip
        yield SystemCommand(
            "filter: clear node filters", "show every node", self._clear_node_filters, False
        )

    def _sort_nodes(self, key: str) -> None:
        self.action_show_tab("nodes")
        view = self.query_one(NodesView)
        view.sort_by(key, reverse=key in ("mse", "mre", "int16", "range"))

    def _filter_below(self, value: str) -> None:
        from textual.widgets import Input

        self.action_show_tab("nodes")
        self.query_one("#node-below", Input).value = value

    def _clear_node_filters(self) -> None:
        self.action_show_tab("nodes")
        self.query_one(NodesView).action_clear_filters()


class _Main(Vertical):
    """The six tabs, composed once the Diagnosis exists."""

    def __init__(self, panes: list[TabPane], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.panes = panes

    def compose(self):
        with TabbedContent(id="tabs"):
            yield from self.panes


def _accepts(function: Callable[..., Any], keyword: str) -> bool:
    """Whether `function` takes the keyword argument (a test's diagnose may not)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == keyword or p.kind is p.VAR_KEYWORD for p in parameters)


def _request_name(request: Request | None) -> str:
    if request is None:
        return "the model"
    if request.title:
        return request.title
    for path in (request.model, request.config):
        if path is not None:
            return path.name
    return "the model"


def _describe(error: BaseException | None, request: Request | None) -> str:
    one_line = getattr(error, "one_line", None)
    if callable(one_line):
        return str(one_line())
    text = f"{type(error).__name__}: {error}"
    if request is not None and request.debug and error is not None:
        text += "\n\n" + "".join(traceback.format_exception(error))
    return text


def _rule_info(code: str) -> Any:
    """The rule's own text (title, why, fix) when it is installed; loaded on first use."""
    from ptqtui.errors import PtqInputError

    try:
        from ptqtui.check.registry import load_rules

        rules = load_rules()
    except (ImportError, PtqInputError):
        return None
    return next((r.info for r in rules if r.info.code == code), None)


def _is_input(path: Path, diagnosis: Diagnosis, request: Request | None) -> bool:
    target = path.expanduser().resolve()
    inputs = [Path(f.path) for f in diagnosis.files if f.role in ("model", "config")]
    if request is not None:
        inputs += [p for p in (request.model, request.config) if p is not None]
    return any(p.expanduser().resolve() == target for p in inputs)


def make_app(
    request: Request,
    diagnose: Diagnose | None = None,
    *,
    export_dir: Path | None = None,
    handle_signals: bool = False,
) -> PtqApp:
    """The live app: `diagnose` (default: the diagnosis with its what-if service) runs in a
    worker and returns a Diagnosis or a DiagnosisRun (the Diagnosis and its what-ifs)."""
    return PtqApp(request, diagnose=diagnose, export_dir=export_dir, handle_signals=handle_signals)


def make_viewer(
    diagnosis: Diagnosis, *, export_dir: Path | None = None, handle_signals: bool = False
) -> PtqApp:
    """A saved Diagnosis (ptqtui view): the same screens, what-ifs not measured."""
    return PtqApp(diagnosis=diagnosis, export_dir=export_dir, handle_signals=handle_signals)


__all__ = ["DIAGNOSIS_GROUP", "REMEASURE_GROUP", "PtqApp", "make_app", "make_viewer"]
