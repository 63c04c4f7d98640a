"""PTQ201: config values the converter rejects or misreads, each with its YAML line."""

from __future__ import annotations

from ptqtui.check.context import Context
from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.remedy import ConfigEdit, Remedy

RULE = RuleInfo(
    code="PTQ201",
    name="invalid-config-value",
    category="config",
    severity=Severity.CRITICAL,
    title="Config keys with wrong types, illegal values, unknown or missing keys",
    why="hb_mapper refuses such a config, or silently ignores a misspelt option, so the model "
    "is converted with settings other than the ones you meant.",
    fix="Correct each key on the line shown (the closest legal value or key is suggested).",
    needs=("config",),
    example="[critical] PTQ201 calibration_type 'klx' is not one of default, mix, kl, max, load, "
    "skip (mapper.yaml line 31)\n  change: calibration_parameters.calibration_type: klx -> kl",
)

# Problem kinds of the config parser, and how much each costs. The converter's schema check
# refuses a wrong type, an illegal value, a missing required key and contradicting keys: no
# model comes out at all, worse than any accuracy band (critical). A misspelt key is ignored,
# so an option silently does not apply (major); deprecated keys still work (minor).
# "unsupported" is PTQ206's.
SEVERITY_OF_KIND = {
    "type": Severity.CRITICAL,
    "value": Severity.CRITICAL,
    "missing-key": Severity.CRITICAL,
    "inconsistent": Severity.CRITICAL,
    "unknown-key": Severity.MAJOR,
    "deprecated": Severity.MINOR,
}
WHAT_OF_KIND = {
    "type": "wrong type",
    "value": "illegal value",
    "missing-key": "missing key",
    "inconsistent": "inconsistent keys",
    "unknown-key": "unknown key",
    "deprecated": "deprecated key",
}


def check(ctx: Context) -> list[Finding]:
    config = ctx.config
    findings = []
    for p in config.problems:
        severity = SEVERITY_OF_KIND.get(p.kind)
        if severity is None:
            continue
        where = f"{config.path.name} line {p.line}" if p.line else config.path.name
        remedy = None
        fix = None
        if p.suggestion and p.kind in ("value", "type"):
            old = ctx.config_value_text(p.key) or None
            # the suggestion is the legal spelling, written as text: the old value as written
            remedy = Remedy(config=(ConfigEdit(p.key, new=p.suggestion, old=old, line=p.line),))
            fix = f"Write {p.suggestion!r} on {where}."
        elif p.suggestion and p.kind == "unknown-key":
            group, _, name = p.key.partition(".")
            fix = f"Did you mean {p.suggestion!r}? Rename {name or group} on {where}."
        elif p.kind == "missing-key":
            fix = f"Add {p.key.rpartition('.')[2]} (see {where})."
        elif p.kind == "deprecated":
            fix = f"Remove {p.key.rpartition('.')[2]} or move its setting to its replacement."
        findings.append(
            RULE.finding(
                f"{p.message} ({where})",
                Evidence(
                    f"{WHAT_OF_KIND[p.kind]} of {p.key}",
                    ctx.config_value_text(p.key) or p.key,
                    p.suggestion,
                    where,
                ),
                severity=severity,
                fix=fix,
                remedy=remedy,
            )
        )
    return findings
