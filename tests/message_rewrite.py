"""Rewrite every rule's text, to show that nothing downstream decides from a message.

`rewritten_rules(rules)` returns the same rules with their `RuleInfo` text (title, why, fix,
example) and every string of every finding they return (message, fix, measured, evidence)
rewritten, by default reversed. Codes, severities, `related` and remedies are left alone:
they are what code may decide from. Pass the result wherever rules go (`run_rules`,
`diagnose(request, rules)`, `make_app`) and compare what comes out with `decisions()`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from ptqtui.check.findings import Evidence, Finding
from ptqtui.check.registry import Rule, RuleInfo

if TYPE_CHECKING:
    from ptqtui.check.context import Context
    from ptqtui.remedy import Remedy

Rewrite = Callable[[str], str]


def reverse(text: str) -> str:
    """The default rewrite: the string backwards (same length, different words)."""
    return text[::-1]


def _opt(text: str | None, rewrite: Rewrite) -> str | None:
    return None if text is None else rewrite(text)


def rewrite_evidence(e: Evidence, rewrite: Rewrite = reverse) -> Evidence:
    return Evidence(
        rewrite(e.what),
        rewrite(e.observed),
        _opt(e.expected, rewrite),
        _opt(e.where, rewrite),
    )


def rewrite_finding(f: Finding, rewrite: Rewrite = reverse) -> Finding:
    """`f` with every human-readable string rewritten; code, severity, related, remedy kept."""
    return dataclasses.replace(
        f,
        message=rewrite(f.message),
        evidence=tuple(rewrite_evidence(e, rewrite) for e in f.evidence),
        fix=_opt(f.fix, rewrite),
        measured=_opt(f.measured, rewrite),
    )


def rewrite_info(info: RuleInfo, rewrite: Rewrite = reverse) -> RuleInfo:
    return dataclasses.replace(
        info,
        title=rewrite(info.title),
        why=rewrite(info.why),
        fix=rewrite(info.fix),
        example=rewrite(info.example),
    )


def rewritten_rules(rules: Iterable[Rule], rewrite: Rewrite = reverse) -> tuple[Rule, ...]:
    """The rules with their text and every finding's text rewritten."""

    def wrap(check: Callable[[Context], list[Finding]]) -> Callable[[Context], list[Finding]]:
        def rewritten(ctx: Context) -> list[Finding]:
            result = check(ctx)
            if not isinstance(result, list):  # let the engine report a bad return as it does
                return result
            return [rewrite_finding(f, rewrite) if isinstance(f, Finding) else f for f in result]

        return rewritten

    return tuple(
        Rule(rewrite_info(r.info, rewrite), wrap(r.check), f"{r.source} (rewritten)") for r in rules
    )


Decision = tuple[str, str, tuple[str, ...], "Remedy | None"]


def decisions(findings: Sequence[Finding]) -> list[Decision]:
    """What code may act on, finding by finding: code, severity, related, remedy."""
    return [(f.code, f.severity.value, f.related, f.remedy) for f in findings]
