"""Properties of the plan of every demo scenario: one meaning for every number shown.

Each scenario is diagnosed once per session (tests/demo_runs.py; PTQTUI_QUICK=1 skips them);
the tests read the typed plan, never its messages:
- every measured step says what it was measured on;
- the plan starts at the summary's figures, and step N+1 starts where step N ended;
- a pipeline fix is compared on the same reference (top-1 against the labels), never as a
  cosine across different inputs;
- no step that asks for a change loses beyond the noise;
- the headline next step changes something.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from ptqtui.advise.results import Pipeline, Reference
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


def test_every_measured_step_says_what_it_was_measured_on(diagnosis: Diagnosis) -> None:
    plan = _plan(diagnosis)
    for s in plan.steps:
        if s.before is not None or s.after is not None:
            assert s.measured_on is not None, s.title
            assert s.effect() is not None, s.title
        if s.measured_on is not None and s.measured_on.pipeline is Pipeline.FIXED:
            assert s.measured_on.fixes, s.title  # which fixes


def test_the_plan_starts_at_the_summary_and_each_step_where_the_last_ended(
    diagnosis: Diagnosis,
) -> None:
    plan = _plan(diagnosis)
    quality = diagnosis.analysis.quality if diagnosis.analysis is not None else None
    if quality is not None and plan.start is not None:
        assert plan.start.cosine == pytest.approx(quality.output_cosine, abs=1e-9)
        if quality.top1_quant is not None:
            assert plan.start.top1 == pytest.approx(quality.top1_quant, abs=1e-9)
    last = plan.start
    for s in plan.steps:
        if s.after is None:
            continue
        on = s.measured_on
        if on is not None and on.reference is Reference.FLOAT and s.before is not None:
            assert s.before == last, (s.number, s.title)
        last = s.after
    if plan.reached is not None and last is not None:
        assert plan.reached == last  # the best state is where the last step ended


def test_a_pipeline_fix_is_compared_on_the_same_reference(diagnosis: Diagnosis) -> None:
    plan = _plan(diagnosis)
    for s in plan.steps:
        on = s.measured_on
        if on is None or on.pipeline is not Pipeline.WRITTEN_THEN_FIXED:
            continue
        assert on.reference is Reference.LABELS  # the float model's input differs
        assert s.before is not None and s.after is not None
        assert s.before.top1 is not None and s.after.top1 is not None
        # a right fix is never shown as a drop (one the simulator already applies, such as
        # leaving NaN samples out, is shown as no change)
        assert s.after.top1 >= s.before.top1, s.title


def test_no_step_that_asks_for_a_change_loses_beyond_the_noise(diagnosis: Diagnosis) -> None:
    plan = _plan(diagnosis)
    for s in plan.steps:
        on = s.measured_on
        if not s.actionable or s.before is None or s.after is None:
            continue
        if on is None or on.reference is not Reference.FLOAT:
            continue
        noise = max(
            v for v in (s.before.noise, s.after.noise, 0.0) if v is not None and not math.isnan(v)
        )
        assert s.after.cosine >= s.before.cosine - noise, (s.number, s.title)
        if s.before.top1 is not None and s.after.top1 is not None:
            assert s.after.top1 >= s.before.top1, (s.number, s.title)


def test_the_headline_step_changes_something(diagnosis: Diagnosis) -> None:
    plan = _plan(diagnosis)
    if any(s.actionable for s in plan.steps):
        step = plan.next_step
        assert step is not None and step.actionable, step
