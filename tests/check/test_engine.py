from __future__ import annotations

import threading

import pytest

from ptqtui.check.context import Context, MissingFact
from ptqtui.check.engine import run_rules
from ptqtui.check.findings import Severity
from ptqtui.check.registry import Rule, RuleInfo
from ptqtui.progress import Cancelled


def _rule(code, check, needs=(), severity=Severity.MINOR):
    info = RuleInfo(code, "some-rule", "config", severity, "t", "w", "f", needs=needs)
    return Rule(info, check, f"test {code}")


def test_failing_rule_becomes_info_finding_and_run_goes_on():
    def boom(ctx):
        raise ZeroDivisionError("division by zero")

    ok = _rule("PTQ902", lambda ctx: [ok.info.finding("fine", severity=Severity.MAJOR)])
    run = run_rules(Context(), [_rule("PTQ901", boom), ok])
    assert [f.code for f in run.findings] == ["PTQ902", "PTQ901"]
    failed = run.findings[1]
    assert failed.severity is Severity.INFO
    assert failed.message.startswith("rule PTQ901 failed: ZeroDivisionError")
    assert run.ran == ("PTQ902",)


def test_missing_fact_marks_rule_skipped_with_reason():
    run = run_rules(Context(), [_rule("PTQ903", lambda ctx: [], needs=("calibration",))])
    assert run.findings == ()
    [skipped] = run.skipped
    assert skipped.code == "PTQ903" and "calibration" in skipped.reason


def test_missing_fact_raised_inside_check_skips():
    def check(ctx):
        raise MissingFact("not a classifier")

    run = run_rules(Context(), [_rule("PTQ904", check)])
    assert run.skipped[0].reason == "not a classifier"


def test_unknown_fact_skips():
    run = run_rules(Context(), [_rule("PTQ905", lambda ctx: [], needs=("no_such_fact",))])
    assert "unknown fact" in run.skipped[0].reason


def test_findings_sorted_by_severity_then_code():
    def make(code, sev):
        r = _rule(code, None)
        return Rule(r.info, lambda ctx: [r.info.finding(code, severity=sev)], r.source)

    run = run_rules(
        Context(),
        [
            make("PTQ001", Severity.MINOR),
            make("PTQ003", Severity.CRITICAL),
            make("PTQ002", Severity.CRITICAL),
        ],
    )
    assert [f.code for f in run.findings] == ["PTQ002", "PTQ003", "PTQ001"]


def test_non_finding_result_is_reported():
    run = run_rules(Context(), [_rule("PTQ906", lambda ctx: ["text"])])
    assert "failed" in run.findings[0].message


def test_progress_and_cancel():
    seen = []
    run_rules(Context(), [_rule("PTQ907", lambda ctx: [])], progress=seen.append)
    assert seen[-1].done == seen[-1].total == 1
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        run_rules(Context(), [_rule("PTQ908", lambda ctx: [])], cancel=cancel)


def test_cancel_reaches_long_facts(tmp_path):
    from tests.check.factories import make_context

    ctx = make_context(tmp_path)
    cancel = threading.Event()
    seen = []

    def stop_in_probe(p):
        seen.append(p.stage)
        if p.stage == "model-response probe":
            cancel.set()

    rule = _rule("PTQ909", lambda c: [], needs=("probe",))
    with pytest.raises(Cancelled):
        run_rules(ctx, [rule], progress=stop_in_probe, cancel=cancel)
    assert "model-response probe" in seen
