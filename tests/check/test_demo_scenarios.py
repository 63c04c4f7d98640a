"""Every bundled demo scenario meets its expected.json.

The fast test runs the pipeline, data and config rules on each scenario (what this package
decides); the full diagnosis, with the simulator's analyses and the numerics rules, takes
5-20 s a scenario (PTQTUI_QUICK=1 skips it while developing).
"""

from __future__ import annotations

import json
import os

import pytest

from ptqtui.check.context import Context
from ptqtui.check.engine import run_rules
from ptqtui.check.findings import Finding, Severity
from ptqtui.check.registry import load_rules
from ptqtui.demo import demo_dir, find_scenario
from ptqtui.inputs.resolve import load_inputs
from ptqtui.request import Request

SCENARIOS = demo_dir() / "scenarios"
INDEX = SCENARIOS / "index.json"
NAMES = json.loads(INDEX.read_text(encoding="utf-8"))["order"] if INDEX.exists() else []
FULL = os.environ.get("PTQTUI_QUICK") != "1"

pytestmark = pytest.mark.skipif(not NAMES, reason="demo data not generated")


def _expected(name: str) -> dict:
    return json.loads((SCENARIOS / name / "expected.json").read_text(encoding="utf-8"))


def _request(name: str) -> Request:
    scenario = find_scenario(name)
    return Request(config=scenario.config, eval_dir=scenario.eval_dir, quiet=True)


def _meets(expected: dict, findings: tuple[Finding, ...], codes: set[str] | None) -> None:
    """codes: the codes this run can produce (None: all)."""
    failed = [f.message for f in findings if " failed: " in f.message]
    assert not failed, failed
    found: dict[str, Severity] = {}
    for f in findings:
        if f.code not in found or f.severity.at_least(found[f.code]):
            found[f.code] = f.severity
    summary = [(f.code, f.severity.value, f.message[:120]) for f in findings]
    listed = set()
    for item in expected["must_fire"]:
        code, least = item["code"], Severity.parse(item["min_severity"])
        listed.add(code)
        if codes is not None and code not in codes:
            continue
        assert code in found, (code, summary)
        assert found[code].at_least(least), (code, found[code], summary)
    if expected.get("no_other_critical"):
        others = [s for s in summary if s[1] == "critical" and s[0] not in listed]
        assert not others, others
    ceiling = expected.get("max_severity_otherwise")
    if ceiling:
        limit = Severity.parse(ceiling).rank
        above = [s for s in summary if s[0] not in listed and Severity(s[1]).rank > limit]
        assert not above, above


ALL_RULES = load_rules(entry_points=False)
RULES = tuple(r for r in ALL_RULES if r.info.category != "numerics")


@pytest.mark.parametrize("name", NAMES)
def test_rules_meet_expected(name):
    run = run_rules(Context.from_inputs(load_inputs(_request(name))), RULES)
    _meets(_expected(name), run.findings, {r.code for r in RULES})


@pytest.mark.skipif(not FULL, reason="PTQTUI_QUICK=1: full diagnosis skipped")
@pytest.mark.parametrize("name", NAMES)
def test_full_diagnosis_meets_expected(name):
    """Every rule, the numerics ones on the simulator's analyses (one run per scenario, shared
    with the other modules that read it: tests/demo_runs.py)."""
    from tests.demo_runs import context_of

    _meets(_expected(name), run_rules(context_of(name), ALL_RULES).findings, None)
