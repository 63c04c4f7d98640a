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
    title="The config belongs to the newer hb_compile generation, which ptqtui does not read",
    why="hb_compile (march nash-*) changed the schema (comma-separated values, quant_config, "
    "no norm_type); reading it as a makertbin config would give wrong advice, so nothing "
    "else in it is checked.",
    fix="Check hb_compile configs with the toolchain's own tools; for makertbin configs remove "
    "the hb_compile keys listed.",
    needs=("config",),
    example="[minor] PTQ206 march 'nash-e' is the newer hb_compile generation, which ptqtui does "
    "not support yet (mapper.yaml line 3)",
)


def check(ctx: Context) -> list[Finding]:
    config = ctx.config
    findings = []
    for p in config.problems_of("unsupported"):
        where = f"{config.path.name} line {p.line}" if p.line else config.path.name
        whole = config.generation == "hb_compile"
        findings.append(
            RULE.finding(
                f"{p.message} ({where})",
                Evidence(
                    "hb_compile config" if whole else "hb_compile key",
                    ctx.config_value_text(p.key) or p.key,
                    "a makertbin config (march bernoulli2, bayes, bayes-e)",
                    where,
                ),
                # a stray hb_compile key in a makertbin config is ignored by the converter:
                # the user's intent (quant_config, std_value) is lost, so it weighs more
                severity=Severity.MINOR if whole else Severity.MAJOR,
                fix=None if whole else f"Remove {p.key.rpartition('.')[2]}: makertbin ignores it.",
            )
        )
    return findings
