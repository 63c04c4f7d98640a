"""Messages that cross from the workers to the UI (the only thing that does).

Dataclasses: Textual's Message.__init__ is the dataclass __post_init__ hook."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from ptqtui.analysis.results import Measure
    from ptqtui.diagnosis import Diagnosis, Partial
    from ptqtui.progress import Progress
    from ptqtui.tui.whatif import Choices, WhatIfService


@dataclass
class ProgressMade(Message):
    """A stage reported progress; a newer report of the same stage replaces one still queued
    (a fast loop cannot flood the queue, and no stage drops out of the list of stages done)."""

    progress: Progress
    at: float  # time.monotonic() when it was reported

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ProgressMade) and message.progress.stage == self.progress.stage


@dataclass
class PartialReady(Message):
    """What the running diagnosis knows so far; a newer one replaces one still queued (each
    holds everything known)."""

    partial: Partial

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PartialReady)


@dataclass
class DiagnosisReady(Message):
    """The diagnosis is done; `whatif` measures what-ifs on its simulator (None: not here)."""

    diagnosis: Diagnosis
    whatif: WhatIfService | None = None


@dataclass
class ChoicesChanged(Message):
    """The Plan screen's what-if choices changed: re-measure them."""

    choices: Choices


@dataclass
class Remeasured(Message):
    """The service measured `choices` (None when it could not, and `note` says why)."""

    choices: Choices
    measure: Measure | None
    note: str | None = None
    reference: Measure | None = None  # the config as given on the data the plan fixes


@dataclass
class ShowNodes(Message):
    """Jump to the Nodes screen showing only these nodes."""

    names: tuple[str, ...]
