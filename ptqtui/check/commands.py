"""The core of `ptqtui rules`, `ptqtui explain CODE` and `ptqtui lint` (its command line and
writers: `ptqtui.cli_lint`)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ptqtui.check.context import Context
from ptqtui.check.engine import RuleRun, run_rules
from ptqtui.check.findings import Finding
from ptqtui.check.registry import Rule, find_rule, load_rules
from ptqtui.errors import PtqInputError, UsageError

LINT_CATEGORY = "config"  # the rules lint runs: those that need the config alone


def list_rules(out: TextIO, rule_dirs: Sequence[Path] = (), *, width: int = 80) -> None:
    """Per rule: code, default severity and name on one line, the title wrapped below."""
    rules = load_rules(rule_dirs)
    if not rules:
        out.write("No rules are installed.\n")
        return
    for rule in rules:
        info = rule.info
        out.write(f"{info.code}  {info.severity.value:<8}  {info.name}\n")
        out.write(_wrapped(info.title, width, "    "))


def explain(code: str, out: TextIO, rule_dirs: Sequence[Path] = (), *, width: int = 80) -> None:
    """A rule's title, why, fix and example, wrapped; UsageError for an unknown code."""
    rule = find_rule(load_rules(rule_dirs), code)
    if rule is None:
        raise UsageError(f"no rule {code!r}; 'ptqtui rules' lists them")
    info = rule.info
    head = f"{info.code} {info.name} ({info.category}, default {info.severity.value})"
    out.write(_wrapped(head, width) + "\n")
    out.write(_wrapped(info.title, width) + "\n")
    out.write(_wrapped(f"Why: {info.why}", width) + "\n")
    out.write(_wrapped(f"Fix: {info.fix}", width))
    if info.needs:
        out.write("\n" + _wrapped(f"Needs: {', '.join(info.needs)}", width))
    if info.example:
        out.write("\nExample:\n")
        for line in info.example.splitlines():
            out.write(_wrapped(line, width, "  ", "      "))
    if not rule.source.startswith("ptqtui.rules."):
        out.write("\n" + _wrapped(f"From: {rule.source}", width))


def _wrapped(text: str, width: int, indent: str = "", more: str | None = None) -> str:
    """`text` wrapped to `width` columns (words longer than a line are broken), newline-ended."""
    lines = textwrap.wrap(
        text,
        width=max(width, 40),
        initial_indent=indent,
        subsequent_indent=indent if more is None else more,
        break_on_hyphens=False,
    )
    return "\n".join(lines or [indent.rstrip()]) + "\n"


# ---------------------------------------------------------------- lint


@dataclass(frozen=True, slots=True)
class LintResult:
    path: str
    findings: tuple[Finding, ...]
    skipped: tuple[tuple[str, str], ...]  # (code, reason)
    notes: tuple[str, ...]
    error: str | None = None  # the config could not be read


def lint_config(path: Path, rules: Sequence[Rule], *, model: Path | None = None) -> LintResult:
    """The config rules on one YAML file, with its model when the file exists."""
    from ptqtui.inputs.config import load_config
    from ptqtui.inputs.model import load_model

    try:
        config = load_config(path)
    except PtqInputError as exc:
        problem = f"line {exc.line}: {exc.problem}" if exc.line is not None else exc.problem
        return LintResult(str(path), (), (), (), error=problem)
    notes: list[str] = []
    missing: dict[str, str] = {}
    graph = None
    model_path = model or config.model_path
    if model_path is None:
        missing["graph"] = f"{config.path.name} names no onnx_model; node names not checked"
    elif not model_path.exists():
        missing["graph"] = f"model {model_path} not found; node names not checked"
        notes.append(missing["graph"])
    else:
        try:
            graph = load_model(model_path)
        except PtqInputError as exc:
            missing["graph"] = f"model not read ({exc.one_line()}); node names not checked"
            notes.append(missing["graph"])
    ctx = Context(config=config, graph=graph, missing=missing)
    run: RuleRun = run_rules(ctx, rules)
    return LintResult(
        str(path),
        run.findings,
        tuple((s.code, s.reason) for s in run.skipped),
        tuple(notes),
    )
