"""The plan decides from remedies, never from text: with every rule's text rewritten
(reversed), a demo scenario's plan takes the same steps, measures the same figures and
writes the same config (one what-if service for both plans, so the second costs little)."""

from __future__ import annotations

import pytest

from ptqtui.advise.plan import build_plan
from ptqtui.analysis.whatif import WhatIf
from ptqtui.check.context import Context
from ptqtui.check.engine import run_rules
from ptqtui.check.registry import load_rules
from tests.check.test_demo_scenarios import FULL, NAMES
from tests.demo_runs import analysed
from tests.message_rewrite import rewritten_rules

RULES = load_rules(entry_points=False)
CATEGORIES = {r.code: r.info.category for r in RULES}
# an input fix, config edits, a numerics CPU remedy, samples to drop
SCENARIOS = [
    n for n in ("bgr_swap", "bad_config", "sensitive_tail", "abnormal_images") if n in NAMES
]


def _decisions(plan):
    keep = ("stage", "codes", "remedy", "tried", "before", "after", "yaml_change", "severity")
    return [tuple(getattr(s, k) for k in keep) for s in plan.steps], plan.patched_config


@pytest.mark.skipif(not FULL, reason="PTQTUI_QUICK=1: the simulator's analyses skipped")
@pytest.mark.parametrize("name", SCENARIOS)
def test_rewritten_messages_leave_the_plan_alone(name):
    inputs, analysis, sim = analysed(name)
    assert sim is not None
    ctx = Context.from_inputs(inputs, analysis=analysis, sim=sim)
    whatif = WhatIf(sim, inputs)
    plans = []
    for rules in (RULES, rewritten_rules(RULES)):
        findings = run_rules(ctx, rules).findings
        plans.append(build_plan(findings, analysis, whatif, inputs.config, categories=CATEGORIES))
    plain, rewritten = plans
    assert any(s.remedy is not None for s in plain.steps), [s.title for s in plain.steps]
    assert _decisions(rewritten) == _decisions(plain)
