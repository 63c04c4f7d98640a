"""PTQ206: hb_compile-generation configs (march nash-*, quant_config ...), said plainly."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo

if TYPE_CHECKING:
    from ptqtui.check.context import Context

RULE = RuleInfo(
    code="PTQ206",
    name="unsupported-generation",
    category="config",
    severity=Severity.MINOR,
    title="The config uses hb_compile settings ptqtui does not read, or hb_compile keys in a "
    "makertbin config",
    why="What ptqtui does not read is not simulated: its advice then describes a model without "
    "that setting. A hb_compile key in a makertbin config (march bernoulli2, bayes, bayes-e) is "
    "ignored by the converter, so the intent behind it (quant_config, std_value) is lost.",
    fix="For hb_compile configs, compare the converter's own result on the named setting; in a "
    "makertbin config remove the hb_compile keys listed.",
    needs=("config",),
    example="[minor] PTQ206 quant_config op_config.Conv.qtype: qtype 'dual-int16' is not "
    "simulated; the simulation goes on without it (config.yaml line 21)",
)


def check(ctx: Context) -> list[Finding]:
    config = ctx.config
    findings = []
    for p in config.problems_of("unsupported"):
        where = f"{config.path.name} line {p.line}" if p.line else config.path.name
        newer = config.generation == "hb_compile"
        findings.append(
            RULE.finding(
                f"{p.message} ({where})",
                Evidence(
                    "hb_compile setting not simulated" if newer else "hb_compile key",
                    ctx.config_value_text(p.key) or p.key,
                    "a setting ptqtui simulates"
                    if newer
                    else "a makertbin config (march bernoulli2, bayes, bayes-e)",
                    where,
                ),
                # a stray hb_compile key in a makertbin config is ignored by the converter:
                # the user's intent (quant_config, std_value) is lost, so it weighs more
                severity=Severity.MINOR if newer else Severity.MAJOR,
                fix=None if newer else f"Remove {p.key.rpartition('.')[2]}: makertbin ignores it.",
            )
        )
    return findings
