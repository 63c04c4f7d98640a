"""A time budget never changes a conclusion: one deadline, a floor said up front, every
measurement after it checks the deadline and is "not measured (time budget)" when out of time."""

from __future__ import annotations

import dataclasses
import io

import pytest

from ptqtui.advise.results import PlanStage
from ptqtui.advise.steps.common import Meter
from ptqtui.budget import NOT_MEASURED, Deadline, OutOfTime
from ptqtui.check.context import Context
from ptqtui.check.engine import run_rules
from ptqtui.check.registry import load_rules
from ptqtui.diagnosis import Diagnosis, run_diagnosis
from ptqtui.inputs.resolve import load_inputs
from ptqtui.remedy import Remedy
from ptqtui.report.text import write_text
from tests.check.test_demo_scenarios import _request
from tests.demo_runs import analysed

RULES = load_rules(entry_points=False)
TUNING = {PlanStage.CALIBRATION, PlanStage.PRECISION, PlanStage.NODES, PlanStage.QAT}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def expired() -> Deadline:
    clock = Clock()
    deadline = Deadline(10.0, clock=clock)
    clock.now += 11.0
    return deadline


def test_the_deadline_estimates_a_pass_from_the_passes_timed() -> None:
    clock = Clock()
    deadline = Deadline(10.0, clock=clock)
    deadline.first_pass(0.1)
    assert deadline.pass_seconds == pytest.approx(0.1)
    deadline.timed(10, 3.0)  # under load, batches ran slower than the first pass said
    assert deadline.pass_seconds == pytest.approx(0.3)
    assert deadline.affords(deadline.passes_cost(30))
    assert not deadline.affords(deadline.passes_cost(40))
    clock.now += 4.0
    record = deadline.set_floor(100, 100)  # 4 s spent + 100 passes at 0.3 s
    assert record.floor_seconds == pytest.approx(34.0) and record.below_floor
    assert "below the 34 s" in record.floor_text() and NOT_MEASURED in record.floor_text()
    with pytest.raises(OutOfTime):
        deadline.require(7.0, "what-if")


def test_a_budget_above_the_floor_is_not_below_it() -> None:
    deadline = Deadline(60.0, clock=Clock())
    deadline.first_pass(0.1)
    assert not deadline.set_floor(100, 100).below_floor


def test_rules_what_ifs_stop_at_the_deadline() -> None:
    inputs, analysis, sim = analysed("sensitive_tail")
    assert sim is not None
    fresh = dataclasses.replace(sim, _measured={})  # nothing measured yet: every what-if costs
    deadline = expired()
    fresh.deadline = deadline
    ctx = Context.from_inputs(inputs, analysis=analysis, sim=fresh)
    run = run_rules(ctx, RULES, deadline=deadline)
    skipped = {s.code: s.reason for s in run.skipped}
    assert "PTQ304" in skipped and NOT_MEASURED in skipped["PTQ304"]
    assert "PTQ304" not in {f.code for f in run.findings}
    assert "PTQ304's what-if" in deadline.not_measured
    assert "PTQ104" in run.ran  # a rule that measures nothing still runs


def test_rules_what_ifs_run_while_there_is_time() -> None:
    inputs, analysis, sim = analysed("sensitive_tail")
    assert sim is not None
    fresh = dataclasses.replace(sim, _measured={})
    deadline = Deadline(1e6)
    fresh.deadline = deadline
    ctx = Context.from_inputs(inputs, analysis=analysis, sim=fresh)
    run = run_rules(ctx, RULES, deadline=deadline)
    assert "PTQ304" in {f.code for f in run.findings}
    assert not deadline.not_measured


def test_the_probe_out_of_time_skips_its_rules_and_is_not_tried_again() -> None:
    inputs = load_inputs(_request("bgr_no_eval"))
    deadline = expired()
    early = Context.from_inputs(inputs)
    run = run_rules(early, RULES, deadline=deadline)
    skipped = {s.code: s.reason for s in run.skipped}
    assert skipped["PTQ001"] == f"model-response probe {NOT_MEASURED}"
    assert "PTQ001" not in {f.code for f in run.findings}
    assert deadline.not_measured == ("model-response probe",)
    later = Context.from_inputs(inputs)  # the final run of the rules adopts the early facts
    later.adopt_facts(early)
    again = run_rules(later, RULES, deadline=Deadline(1e6))
    assert "PTQ001" in {s.code for s in again.skipped}


def test_the_probe_runs_within_the_budget() -> None:
    inputs = load_inputs(_request("bgr_no_eval"))
    run = run_rules(Context.from_inputs(inputs), RULES, deadline=Deadline(1e6))
    assert "PTQ001" in {f.code for f in run.findings}


class OutOfTimeService:
    """A what-if service whose measurement never fits (the SimContext's own check)."""

    def measure_against(self, remedy: Remedy, against: Remedy):
        return self.measure(remedy)

    def measure_race(self, remedies, against: Remedy):
        return [self.measure(r) for r in remedies]

    def measure(self, remedy: Remedy) -> None:
        raise OutOfTime("what-if")


def test_the_meter_stops_when_a_what_if_does_not_fit() -> None:
    meter = Meter(OutOfTimeService())  # type: ignore[arg-type]
    assert meter.measure(Remedy(), "configured") is None
    assert meter.out_of_time and meter.count == 0
    assert meter.measure(Remedy(), "again") is None  # later ones are not tried


def test_a_budget_below_the_floor_says_so_first_and_draws_no_tuning_step() -> None:
    request = dataclasses.replace(_request("bgr_swap"), time_budget=0.01)
    d = run_diagnosis(request, RULES).diagnosis
    assert d.budget is not None and d.budget.below_floor
    assert d.analysis is not None and d.analysis.quality is not None  # the headline ran
    assert d.analysis.nodes == ()  # the node table did not
    assert d.plan is not None and d.plan.cut_short
    assert not {s.stage for s in d.plan.steps} & TUNING
    assert all(s.after is None for s in d.plan.steps)  # nothing measured after the floor
    out = io.StringIO()
    write_text(d, out)
    summary = out.getvalue().split("findings")[0]
    assert "--time-budget 0.01 s is below the" in summary
    again = Diagnosis.from_json(d.to_json())
    assert again.budget == d.budget
    from ptqtui.tui.screens.summary import _headline

    assert "Time budget: --time-budget 0.01 s is below the" in _headline(d).plain


def test_the_sweep_measures_no_row_whole_that_does_not_fit() -> None:
    from ptqtui.analysis.sweep import method_sweep

    _, _, sim = analysed("bgr_no_eval")
    assert sim is not None and sim.has_task_metric
    fresh = dataclasses.replace(sim, _measured={})
    out = method_sweep(fresh, budget_seconds=1e-6)
    assert not out.complete
    assert len(out.records) == 1  # the first row runs (run.py checks it fits), no other
    assert out.records[0].agreement is None  # its whole measurement did not fit
    assert any("not measured whole (time budget)" in n for n in out.notes)
    whole = method_sweep(dataclasses.replace(sim, _measured={}))
    assert whole.complete and any(r.agreement is not None for r in whole.records)


def test_the_cli_budget_counts_from_the_process_start():
    import time

    from ptqtui.budget import Deadline, process_start

    now = [100.0]
    d = Deadline(10.0, clock=lambda: now[0], since=96.0)  # the process started 4 s ago
    assert d.elapsed() == 4.0 and d.left() == 6.0
    assert Deadline(10.0, clock=lambda: now[0]).left() == 10.0  # a library call: from now
    started = process_start()
    if started is not None:  # Linux: this test process started before this line
        assert 0.0 < time.perf_counter() - started < 3600.0
