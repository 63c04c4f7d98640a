"""One simulator run per demo scenario, shared by every test module that needs it.

A demo scenario's analyses (calibration, node table, sensitivity, sweep) take 5-20 s; the
scenario tests, the message-rewrite tests and the plan tests all read the same ones, so the
suite builds each once per session (the what-if caches inside are shared too: they only ever
add measurements).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ptqtui.analysis.context import SimContext
    from ptqtui.analysis.results import Analysis
    from ptqtui.inputs.resolve import LoadedInputs


@functools.cache
def analysed(name: str) -> tuple[LoadedInputs, Analysis | None, SimContext | None]:
    """The scenario's loaded inputs, its analysis and the calibrated simulator."""
    from ptqtui.diagnosis import _analyse
    from ptqtui.inputs.resolve import load_inputs
    from tests.check.test_demo_scenarios import _request

    inputs = load_inputs(_request(name))
    analysis, sim, _ = _analyse(inputs, None, None)
    return inputs, analysis, sim


def context_of(name: str) -> Any:
    """A fresh rule Context over the shared run (facts are cached per Context)."""
    from ptqtui.check.context import Context

    inputs, analysis, sim = analysed(name)
    return Context.from_inputs(inputs, analysis=analysis, sim=sim)


@functools.cache
def diagnosed(name: str) -> Any:
    """The scenario's whole Diagnosis (rules, plan, summary) over the shared run."""
    from ptqtui.check.registry import load_rules
    from ptqtui.diagnosis import conclude

    inputs, analysis, sim = analysed(name)
    missing = {} if sim is not None else {"analysis": "the simulator did not run"}
    rules = load_rules(entry_points=False)
    return conclude(inputs, analysis, sim, rules, missing).diagnosis
