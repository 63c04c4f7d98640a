"""The live diagnosis with its what-if service, until the core's `run_diagnosis` hands one over.

`run_diagnosis` runs `diagnose` and keeps the simulator it measured with; `SimWhatIf`
measures a `Remedy` on it (the remedy's settings delta applied to the configured settings).
Imports stay inside the functions: the simulator pulls in numpy and onnxruntime.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ptqtui.advise.results import Measure
    from ptqtui.diagnosis import Diagnosis
    from ptqtui.remedy import Remedy
    from ptqtui.request import Request

EVAL_LIMIT = 300  # labelled images per what-if, as the planner measures them


@dataclass(frozen=True)
class LiveRun:
    """A Diagnosis and the service that measures what-ifs on its simulator (None: no sim)."""

    diagnosis: Diagnosis
    whatif: SimWhatIf | None


class SimWhatIf:
    """Measures remedies' settings deltas on the diagnosis' simulator, one at a time."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim  # analysis.context.SimContext
        self._lock = threading.Lock()

    def measure(self, remedy: Remedy) -> Measure:
        from ptqtui.advise.results import Measure

        settings = self.sim.settings
        if remedy.settings is not None:
            settings = remedy.settings.apply(settings)
        with self._lock:
            m = self.sim.measure(settings, eval_limit=EVAL_LIMIT)
        return Measure(m.similarity.cosine, m.top1, m.agreement, m.noise)


def run_diagnosis(
    request: Request,
    *,
    progress: Any = None,
    cancel: threading.Event | None = None,
) -> LiveRun:
    """diagnose(request), and the what-if service over the simulator it used."""
    from ptqtui.diagnosis import diagnose

    sims: list[Any] = []
    diagnosis = diagnose(request, progress=progress, cancel=cancel, on_sim=sims.append)
    return LiveRun(diagnosis, SimWhatIf(sims[0]) if sims else None)
