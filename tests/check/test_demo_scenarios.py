"""The full diagnosis on every bundled demo scenario meets its expected.json: the listed
codes fire at their severity, no other critical, and on `good` nothing above its maximum."""

from __future__ import annotations

import json

import pytest

from ptqtui.check.findings import Severity
from ptqtui.demo import demo_dir, find_scenario
from ptqtui.diagnosis import diagnose
from ptqtui.request import Request

SCENARIOS = demo_dir() / "scenarios"
INDEX = SCENARIOS / "index.json"
NAMES = json.loads(INDEX.read_text(encoding="utf-8"))["order"] if INDEX.exists() else []

pytestmark = pytest.mark.skipif(not NAMES, reason="demo data not generated")


@pytest.mark.parametrize("name", NAMES)
def test_scenario_meets_expected(name):
    scenario = find_scenario(name)
    expected = json.loads((SCENARIOS / name / "expected.json").read_text(encoding="utf-8"))
    request = Request(config=scenario.config, eval_dir=scenario.eval_dir, quiet=True)
    diagnosis = diagnose(request)
    failed = [f.message for f in diagnosis.findings if " failed: " in f.message]
    assert not failed, failed
    found: dict[str, Severity] = {}
    for f in diagnosis.findings:
        if f.code not in found or f.severity.at_least(found[f.code]):
            found[f.code] = f.severity
    summary = [(f.code, f.severity.value, f.message[:100]) for f in diagnosis.findings]
    for item in expected["must_fire"]:
        code, least = item["code"], Severity.parse(item["min_severity"])
        assert code in found, (code, summary)
        assert found[code].at_least(least), (code, found[code], summary)
    listed = {item["code"] for item in expected["must_fire"]}
    if expected.get("no_other_critical"):
        others = [s for s in summary if s[1] == "critical" and s[0] not in listed]
        assert not others, others
    ceiling = expected.get("max_severity_otherwise")
    if ceiling:
        above = [
            s
            for s in summary
            if s[0] not in listed and Severity(s[1]).rank > Severity.parse(ceiling).rank
        ]
        assert not above, above
