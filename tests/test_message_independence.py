"""Rules decide through codes, severities and typed remedies, never through their text: with
every message rewritten (reversed), every demo scenario gives the same decisions, and the plan
built from them (on a fake what-if service) the same steps and the same written config."""

from __future__ import annotations

import pytest

from ptqtui.check.context import Context
from ptqtui.check.engine import run_rules
from ptqtui.check.registry import load_rules
from ptqtui.inputs.resolve import load_inputs
from tests.check.test_demo_scenarios import FULL, NAMES, _request
from tests.message_rewrite import decisions, reverse, rewrite_finding, rewritten_rules

pytestmark = pytest.mark.skipif(not NAMES, reason="demo data not generated")

ALL = load_rules(entry_points=False)
QUICK_RULES = tuple(r for r in ALL if r.info.category != "numerics")


def _compare(ctx: Context, rules) -> None:
    plain = run_rules(ctx, rules).findings
    rewritten = run_rules(ctx, rewritten_rules(rules)).findings
    assert decisions(rewritten) == decisions(plain)
    # the rewrite took effect: every finding's text is another text
    assert [f.message for f in rewritten] == [reverse(f.message) for f in plain]
    assert [f.fix for f in rewritten] == [reverse(f.fix) if f.fix else f.fix for f in plain]
    config = ctx.maybe("config")
    if config is not None:
        assert _plan_decisions(rewritten, config) == _plan_decisions(plain, config)


def _plan_decisions(findings, config):
    """What the plan decides from the findings: its steps, what it measured on a fake
    what-if service that can emulate every data fix, and the config it writes."""
    from ptqtui.remedy import InputFix
    from tests.advise.test_plan import FakeWhatIf, make_plan

    fake = FakeWhatIf(0.8, {fix: 0.1 for fix in InputFix})
    plan = make_plan(findings, None, fake, config)
    steps = [
        (s.stage, s.codes, s.severity, s.yaml_change, s.tried, s.before, s.after)
        for s in plan.steps
    ]
    return steps, plan.config_diff, plan.patched_config


@pytest.mark.parametrize("name", NAMES)
def test_rewritten_messages_leave_the_rules_decisions_alone(name):
    ctx = Context.from_inputs(load_inputs(_request(name)))
    _compare(ctx, QUICK_RULES)


@pytest.mark.skipif(not FULL, reason="PTQTUI_QUICK=1: the simulator's analyses skipped")
@pytest.mark.parametrize("name", NAMES)
def test_rewritten_messages_leave_the_numerics_rules_alone(name):
    from tests.demo_runs import context_of

    _compare(context_of(name), ALL)


def test_the_demo_scenarios_carry_remedies():
    """Not a vacuous comparison: the pipeline scenarios' findings do carry remedies, and the
    plan emulates their data fixes (the step that answers the finding is tried)."""
    carried = set()
    for name in ("bgr_swap", "double_norm", "skimage_range", "tofile_layout", "bad_config"):
        if name not in NAMES:
            continue
        ctx = Context.from_inputs(load_inputs(_request(name)))
        findings = run_rules(ctx, QUICK_RULES).findings
        carried |= {f.code for f in findings if f.remedy is not None}
        if name != "bad_config":
            steps, _, _ = _plan_decisions(findings, ctx.config)
            assert steps[0][4], (name, steps[0])  # tried: the data fix was emulated
    assert {"PTQ001", "PTQ002", "PTQ003", "PTQ102", "PTQ203", "PTQ205"} <= carried


def test_rewritten_rule_text_is_rewritten():
    [rule] = rewritten_rules([next(r for r in ALL if r.code == "PTQ002")])
    original = next(r for r in ALL if r.code == "PTQ002")
    assert rule.info.fix == reverse(original.info.fix) and rule.code == "PTQ002"
    f = original.info.finding("input x: normalised twice", fix=None)
    assert rewrite_finding(f).message == "eciwt desilamron :x tupni"
