"""The Plan screen's what-if choices, and the YAML change they amount to.

`Remeasure` is what the front end calls (in a thread worker) to have the simulator measure a
set of choices; `PatchConfig` turns choices into a config diff and patched YAML. Both are
injected by the caller of `make_app`; without them the choices still show as YAML changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ptqtui.advise.results import Measure
    from ptqtui.diagnosis import Diagnosis


@dataclass(frozen=True)
class Choices:
    """A calibration setting plus nodes moved to int16 or to the CPU."""

    method: str | None = None  # a SweepRow label; None = as the config has it
    settings: tuple[tuple[str, str], ...] = ()  # that row's calibration_parameters
    int16: frozenset[str] = field(default_factory=frozenset)
    cpu: frozenset[str] = field(default_factory=frozenset)

    def toggled(self, node: str, what: str) -> Choices:
        """Flip `node` in or out of "int16" or "cpu"."""
        current = self.int16 if what == "int16" else self.cpu
        changed = current - {node} if node in current else current | {node}
        if what == "int16":
            return Choices(self.method, self.settings, frozenset(changed), self.cpu)
        return Choices(self.method, self.settings, self.int16, frozenset(changed))

    def with_method(self, label: str | None, settings: tuple[tuple[str, str], ...]) -> Choices:
        return Choices(label, settings, self.int16, self.cpu)

    def yaml_change(self, base: Choices | None = None) -> str:
        """The calibration_parameters lines that differ from `base` (the config as given)."""
        base = base or Choices()
        lines: list[str] = []
        if self.settings and self.settings != base.settings:
            lines += [f"  {k}: {v}" for k, v in self.settings]
        nodes = sorted(self.int16 | self.cpu | base.int16 | base.cpu)
        changed = [
            n for n in nodes if (n in self.int16, n in self.cpu) != (n in base.int16, n in base.cpu)
        ]
        if changed:
            lines.append("  node_info:")
            for n in changed:
                parts = []
                if n in self.cpu:
                    parts.append("ON: CPU")
                if n in self.int16:
                    parts += ["InputType: int16", "OutputType: int16"]
                if not parts:
                    parts.append("ON: BPU")  # back to the default int8 on the BPU
                lines.append(f"    {n}: {{{', '.join(parts)}}}")
        if not lines:
            return ""
        return "calibration_parameters:\n" + "\n".join(lines) + "\n"


def initial_choices(diagnosis: Diagnosis) -> Choices:
    """The choices the diagnosed config already makes."""
    analysis = diagnosis.analysis
    if analysis is None:
        return Choices()
    chosen = next((r for r in analysis.sweep if r.chosen), None)
    return Choices(
        method=chosen.label if chosen else None,
        settings=chosen.settings if chosen else (),
        int16=frozenset(n.name for n in analysis.nodes if n.dtype == "int16"),
        cpu=frozenset(n.name for n in analysis.nodes if n.placement == "CPU"),
    )


Remeasure = Callable[[Choices, threading.Event], "Measure"]
PatchConfig = Callable[[Choices], "tuple[str, str] | None"]  # (unified diff, patched YAML)
