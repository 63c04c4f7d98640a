"""What-ifs measured live: Choices turned into the simulator's QuantSettings.

`diagnose(..., on_sim=callback)` hands over the SimContext it measured with; the app wraps
it with `remeasure_with` and runs that in a thread worker. Imports stay inside the
functions: the simulator pulls in numpy and onnxruntime.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ptqtui.advise.results import Measure
    from ptqtui.tui.whatif import Choices, Remeasure

EVAL_LIMIT = 300  # labelled images per what-if, as the planner measures them
_FLAGS = ("per_channel", "asymmetric", "bias_correction")


def settings_for(base_settings: Any, base: Choices, choices: Choices) -> Any:
    """The QuantSettings of `choices`, from the configured ones (`base_settings`, `base`)."""
    import dataclasses

    import yaml

    from ptqtui.quant.scheme import NodeOverride

    changes: dict[str, Any] = {}
    if choices.settings != base.settings and choices.settings:
        values = dict(choices.settings)
        changes["calibration_type"] = str(values.get("calibration_type", "default"))
        p = values.get("max_percentile")
        changes["max_percentile"] = float(yaml.safe_load(p)) if p is not None else None
        for flag in _FLAGS:
            changes[flag] = yaml.safe_load(values.get(flag, "false")) is True
    overrides = {o.node: o for o in base_settings.node_overrides}
    run_on_cpu = list(base_settings.run_on_cpu)
    for node in choices.changed_nodes(base):
        on, dtype = choices.node_change(node, base)
        prev = overrides.get(node)
        if on == "BPU" and node in run_on_cpu:
            run_on_cpu.remove(node)
        overrides[node] = NodeOverride(
            node,
            on=on if on is not None else (prev.on if prev else None),
            input_dtype=dtype if dtype is not None else (prev.input_dtype if prev else None),
            output_dtype=prev.output_dtype if prev else None,
        )
    changes["node_overrides"] = tuple(overrides.values())
    changes["run_on_cpu"] = tuple(run_on_cpu)
    return dataclasses.replace(base_settings, **changes)


def remeasure_with(sim: Any, base: Choices) -> Remeasure:
    """A Remeasure over `sim` (analysis.context.SimContext); one measurement at a time."""
    lock = threading.Lock()

    def remeasure(choices: Choices, cancel: threading.Event) -> Measure:
        from ptqtui.advise.results import Measure

        settings = settings_for(sim.settings, base, choices)
        with lock:  # a superseded what-if stops at its next cancel check
            m = sim.measure(settings, eval_limit=EVAL_LIMIT, cancel=cancel)
        return Measure(m.similarity.cosine, m.top1)

    return remeasure
