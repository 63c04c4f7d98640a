"""Modal dialogs: an error, a rule's explanation, export."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from ptqtui.tui.widgets.text import BAD

EXPORTS = (
    ("md", "markdown report", ".md"),
    ("text", "text report", ".txt"),
    ("html", "HTML report", ".html"),
    ("json", "JSON report (ptqtui view reads it)", ".json"),
    ("config", "patched config (YAML)", ".yaml"),
)


class ErrorDialog(ModalScreen[None]):
    """A failure of the diagnosis or of an export, in one readable paragraph."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter", "dismiss", "Close"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self):
        with Vertical(id="error-dialog", classes="dialog"):
            yield Static(Text(self.title_text, style=BAD))
            with VerticalScroll():
                yield Static(self.message, id="error-message")
            yield Static(Text("esc close   q quit", style="dim"))


class ExplainDialog(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "dismiss", "Close")]

    def __init__(self, title: str, body: Text) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self):
        with Vertical(id="explain-dialog", classes="dialog"):
            yield Static(Text(self.title_text, style="bold"))
            with VerticalScroll():
                yield Static(self.body, id="explain-body")
            yield Static(Text("esc close", style="dim"))


class ExportDialog(ModalScreen["tuple[str, Path] | None"]):
    """Pick a format, edit the path, press enter: returns (format, path) or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, directory: Path, stem: str, config_path: Path, fmt: str = "md") -> None:
        super().__init__()
        self.directory = directory
        self.stem = stem
        self.config_path = config_path  # ".../config.ptqtui.yaml": beside the user's config
        self.fmt = fmt

    def _path_for(self, fmt: str) -> str:
        if fmt == "config":
            return str(self.config_path)
        suffix = next(s for f, _, s in EXPORTS if f == fmt)
        return str(self.directory / f"{self.stem}{suffix}")

    def compose(self):
        with Vertical(id="export-dialog", classes="dialog"):
            yield Static(Text("Export", style="bold"))
            yield OptionList(*(Option(label, id=f) for f, label, _ in EXPORTS), id="export-formats")
            yield Input(self._path_for(self.fmt), id="export-path")
            yield Static(
                Text("up/down format, tab path, enter write, esc cancel", style="dim"),
            )

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = [f for f, _, _ in EXPORTS].index(self.fmt)
        options.focus()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        fmt = event.option.id or "md"
        path = self.query_one("#export-path", Input)
        old = self._path_for(self.fmt)
        if path.value == old:  # the user did not edit it: follow the format
            path.value = self._path_for(fmt)
        self.fmt = fmt

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self._done()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._done()

    def _done(self) -> None:
        value = self.query_one("#export-path", Input).value.strip()
        if value:
            self.dismiss((self.fmt, Path(value).expanduser()))


class SaveDialog(ModalScreen["Path | None"]):
    """Where to save the config: the path to edit, enter to save; returns the path or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def compose(self):
        with Vertical(id="save-dialog", classes="dialog"):
            yield Static(Text("Save the config", style="bold"))
            yield Input(str(self.path), id="save-path")
            yield Static(
                Text("relative paths are rewritten to hold from there", style="dim"),
            )
            yield Static(Text("enter save, esc cancel", style="dim"))

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        if value:
            self.dismiss(Path(value).expanduser())


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question (overwrite a file?): y yes, n or esc no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "dismiss(True)", "Yes"),
        Binding("n,escape", "dismiss(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self):
        with Vertical(id="confirm-dialog", classes="dialog"):
            yield Static(Text(self.question, style="bold"), id="confirm-question")
            yield Static(Text("y yes, n no", style="dim"))
