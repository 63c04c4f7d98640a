"""Properties of the plan of every demo scenario: one meaning for every number shown.

Each scenario is diagnosed once per session (tests/demo_runs.py; PTQTUI_QUICK=1 skips them);
the tests read the typed plan, never its messages:
- every measured step says what it was measured on;
- the plan starts at the summary's figures, and step N+1 starts where step N ended;
- a pipeline fix is compared on the same reference (top-1 against the labels), never as a
  cosine across different inputs;
- no step that asks for a change loses beyond the noise;
- the headline next step changes something;
- no node's int16 gain is below minus the measurement noise.
The checks are ptqtui/advise/properties.py, shared with benchmarks/bench_plan.py (corpus).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ptqtui.advise.properties import Property, check
from ptqtui.diagnosis import Diagnosis

DEMO = Path(__file__).resolve().parents[2] / "demo_data"
SCENARIOS = DEMO / "scenarios"
NAMES = (
    json.loads((SCENARIOS / "index.json").read_text())["order"]
    if (SCENARIOS / "index.json").exists()
    else []
)

pytestmark = [
    pytest.mark.skipif(not NAMES, reason="demo data not generated"),
    pytest.mark.skipif(
        os.environ.get("PTQTUI_QUICK") == "1", reason="PTQTUI_QUICK=1: about 20 s a scenario"
    ),
]


@pytest.fixture(scope="module", params=NAMES)
def diagnosis(request: pytest.FixtureRequest) -> Diagnosis:
    """The scenario diagnosed once per session (tests/demo_runs.py: the simulator run is
    shared with the scenario and message tests)."""
    from tests.demo_runs import diagnosed

    return diagnosed(request.param)


def _plan(d: Diagnosis):
    if d.plan is None:
        pytest.skip("no plan (the scenario's inputs stop the diagnosis)")
    return d.plan


def _holds(d: Diagnosis, prop: Property) -> None:
    _plan(d)
    assert check(d, (prop,)) == []


def test_every_measured_step_says_what_it_was_measured_on(diagnosis: Diagnosis) -> None:
    _holds(diagnosis, Property.MEASURED_ON)


def test_the_plan_starts_at_the_summary_and_each_step_where_the_last_ended(
    diagnosis: Diagnosis,
) -> None:
    _holds(diagnosis, Property.CONTINUOUS)


def test_a_pipeline_fix_is_compared_on_the_same_reference(diagnosis: Diagnosis) -> None:
    _holds(diagnosis, Property.SAME_REFERENCE)


def test_no_step_that_asks_for_a_change_loses_beyond_the_noise(diagnosis: Diagnosis) -> None:
    _holds(diagnosis, Property.NO_LOSS)


def test_the_headline_step_changes_something(diagnosis: Diagnosis) -> None:
    _holds(diagnosis, Property.HEADLINE)


def test_no_int16_gain_below_the_noise(diagnosis: Diagnosis) -> None:
    assert check(diagnosis, (Property.INT16,)) == []
