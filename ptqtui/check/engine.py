"""Run rules over a Context: skipped rules say why, a failing rule becomes an info finding."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from ptqtui.budget import Deadline, OutOfTime
from ptqtui.check.context import Context, MissingFact
from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import Rule
from ptqtui.progress import Cancelled, ProgressCallback, check_cancel, report

log = logging.getLogger(__name__)
STAGE = "checking rules"


@dataclass(frozen=True, slots=True)
class SkippedRule:
    """A rule that did not run: the fact it needs is missing, for this reason."""

    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class RuleRun:
    """What running the rules gave: findings, the rules skipped, the rules that ran."""

    findings: tuple[Finding, ...]  # sorted: severity (critical first), then code
    skipped: tuple[SkippedRule, ...]
    ran: tuple[str, ...]  # codes of the rules that ran to the end


def sort_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=lambda f: (-f.severity.rank, f.code)))


def run_rules(
    ctx: Context,
    rules: Iterable[Rule],
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    deadline: Deadline | None = None,
) -> RuleRun:
    """Every rule's check(ctx), in code order; Cancelled propagates, everything else is kept.
    A rule whose measurement the `deadline` has no room for is skipped, "not measured (time
    budget)"."""
    ordered = sorted(rules, key=lambda r: r.code)
    ctx.progress = progress if ctx.progress is None else ctx.progress
    ctx.cancel = cancel if ctx.cancel is None else ctx.cancel
    ctx.deadline = deadline if ctx.deadline is None else ctx.deadline
    findings: list[Finding] = []
    skipped: list[SkippedRule] = []
    ran: list[str] = []
    for done, rule in enumerate(ordered):
        check_cancel(cancel)
        report(progress, STAGE, done, len(ordered), rule.code)
        try:
            for fact in rule.info.needs:
                ctx.require(fact)
            result = rule.check(ctx)
        except MissingFact as missing:
            skipped.append(SkippedRule(rule.code, missing.reason))
            continue
        except OutOfTime as out:  # a what-if of its own did not fit: it concludes nothing
            skipped.append(SkippedRule(rule.code, str(out)))
            if ctx.deadline is not None:
                ctx.deadline.missed(f"{rule.code}'s {out.what}")
            continue
        except (Cancelled, KeyboardInterrupt):
            raise
        except (Exception, SystemExit) as exc:  # a rule bug must not stop the others
            # one line; the traceback only when debugging (ptqtui --debug)
            log.warning("rule %s failed: %s: %s", rule.code, type(exc).__name__, exc,
                        exc_info=log.isEnabledFor(logging.DEBUG))  # fmt: skip
            findings.append(failure_finding(rule, exc))
            continue
        bad = [f for f in result if not isinstance(f, Finding)]
        if bad or not isinstance(result, (list, tuple)):
            what = type(bad[0] if bad else result).__name__
            findings.append(failure_finding(rule, TypeError(f"check returned a {what}")))
            continue
        findings.extend(result)
        ran.append(rule.code)
    report(progress, STAGE, len(ordered), len(ordered))
    return RuleRun(sort_findings(findings), tuple(skipped), tuple(ran))


def failure_finding(rule: Rule, exc: BaseException) -> Finding:
    text = f"{type(exc).__name__}: {exc}"
    return Finding(
        code=rule.code,
        severity=Severity.INFO,
        message=f"rule {rule.code} failed: {text}",
        evidence=(Evidence("rule module", rule.source),),
        fix="This is a bug in the rule; run with --debug for the traceback and report it.",
    )
