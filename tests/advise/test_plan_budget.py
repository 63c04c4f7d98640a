"""A time budget never changes a conclusion: what was not measured decides no plan step."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ptqtui.advise.results import PlanStage
from ptqtui.analysis.results import AnalysisStage
from tests.advise.test_plan import FakeWhatIf, analysis, config, make_plan

# nothing the fake can try reaches the target: the full plan ends in QAT
NO_GAIN: dict[object, float] = {}


def stages(plan) -> set[PlanStage]:
    return {s.stage for s in plan.steps}


def test_all_measured_and_short_of_the_target_ends_in_qat(tmp_path: Path) -> None:
    plan = make_plan([], analysis("large", 0.95), FakeWhatIf(0.95, NO_GAIN), config(tmp_path))
    assert PlanStage.QAT in stages(plan) and not plan.cut_short


def test_what_ifs_cut_by_the_budget_give_no_qat(tmp_path: Path) -> None:
    fake = FakeWhatIf(0.95, NO_GAIN)
    plan = make_plan([], analysis("large", 0.95), fake, config(tmp_path), time_budget=1e-9)
    assert plan.cut_short and PlanStage.QAT not in stages(plan)
    assert PlanStage.NODES not in stages(plan)


def test_analyses_cut_by_the_budget_give_no_qat_and_no_node_verdict(tmp_path: Path) -> None:
    whole = analysis("large", 0.95, sens={"b2/Conv": 0.97})
    full = make_plan([], whole, FakeWhatIf(0.95, NO_GAIN), config(tmp_path))
    assert PlanStage.NODES in stages(full)
    cut = dataclasses.replace(whole, trimmed=(AnalysisStage.SENSITIVITY,))
    plan = make_plan([], cut, FakeWhatIf(0.95, NO_GAIN), config(tmp_path))
    assert plan.cut_short
    assert not stages(plan) & {PlanStage.QAT, PlanStage.NODES}
    assert stages(plan) <= stages(full)
