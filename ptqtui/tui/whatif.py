"""The Plan screen's what-if choices, and the YAML change they amount to.

`Remeasure` is what the front end calls (in a thread worker) to have the simulator measure a
set of choices; `PatchConfig` turns choices into a config diff and patched YAML. Both are
injected by the caller of `make_app`; without them the choices still show as YAML changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
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

    def changed_nodes(self, base: Choices) -> list[str]:
        names = sorted(self.int16 | self.cpu | base.int16 | base.cpu)
        return [
            n for n in names if (n in self.int16, n in self.cpu) != (n in base.int16, n in base.cpu)
        ]

    def node_change(self, node: str, base: Choices) -> tuple[str | None, str | None]:
        """(placement, input dtype) of `node` where they differ from `base`, else None."""
        on = None
        if (node in self.cpu) != (node in base.cpu):
            on = "CPU" if node in self.cpu else "BPU"
        dtype = None
        if (node in self.int16) != (node in base.int16):
            dtype = "int16" if node in self.int16 else "int8"
        return on, dtype

    def changed_settings(self, base: Choices) -> list[tuple[str, str]]:
        old = dict(base.settings)
        return [(k, v) for k, v in self.settings if old.get(k) != v]

    def yaml_change(self, base: Choices | None = None) -> str:
        """The YAML keys that differ from `base` (the config as given), as a fragment."""
        base = base or Choices()
        lines: list[str] = []
        settings = self.changed_settings(base)
        if settings:
            lines.append("calibration_parameters:")
            lines += [f"  {k}: {v}" for k, v in settings]
        nodes = self.changed_nodes(base)
        if nodes:
            lines += ["model_parameters:", "  node_info:"]
            for n in nodes:
                on, dtype = self.node_change(n, base)
                parts = [f"ON: {on}"] if on else []
                parts += [f"InputType: {dtype}"] if dtype else []
                lines.append(f"    {n}: {{{', '.join(parts)}}}")
        return "".join(line + "\n" for line in lines)


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


def patch_from_file(path: Path, base: Choices) -> PatchConfig:
    """Choices as edits of the user's YAML through the advisor's own patcher (comments and
    order kept; run_on_cpu where the march has no node_info), with the diff.

    The patch returns None for choices it cannot apply safely; the screen then shows the
    plain YAML fragment instead.
    """
    text = path.read_text(encoding="utf-8")
    state: dict[str, object] = {}

    def apply(choices: Choices) -> tuple[str, str] | None:
        # loaded on the first what-if; numpy is in by then (the diagnosis or view loaded it)
        from ptqtui.advise.patch import PatchError
        from ptqtui.advise.plan import patch_settings
        from ptqtui.errors import PtqInputError
        from ptqtui.inputs.config import load_config
        from ptqtui.quant.settings import settings_from_config
        from ptqtui.tui.live import settings_for

        try:
            if not state:
                state["config"] = load_config(path)
                state["old"] = settings_from_config(state["config"])  # type: ignore[arg-type]
            old = state["old"]
            new = settings_for(old, base, choices)
            result = patch_settings(text, old, new, state["config"], name=path.name)  # type: ignore[arg-type]
        except (PatchError, PtqInputError, ValueError):
            return None
        return result.diff, result.text

    return apply


def config_file(diagnosis: Diagnosis) -> Path | None:
    """The diagnosed config, when it is still here and unchanged (same sha256)."""
    import hashlib

    ref = next((f for f in diagnosis.files if f.role == "config"), None)
    if ref is None or ref.sha256 is None:
        return None
    path = Path(ref.path)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
    return path if digest == ref.sha256 else None
