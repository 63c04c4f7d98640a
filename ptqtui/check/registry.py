"""Rule metadata and rule discovery: built-in `ptqtui.rules`, `--rules DIR`, entry points.

A rule is a module (or any object) with two attributes:

- `RULE`: a `RuleInfo` (code, kebab-case name, category, default severity, title, why, fix,
  the facts it `needs`, an example);
- `check(ctx) -> list[Finding]`: pure; reads the `Context`, returns findings (empty: no problem).

A finding says what to change as a typed `Remedy` (`ptqtui.remedy`: config edits with their
YAML line, input fixes, a settings delta); its message, fix and evidence are for people only.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import pkgutil
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.errors import PtqInputError
from ptqtui.remedy import Remedy

if TYPE_CHECKING:
    from ptqtui.check.context import Context

ENTRY_POINT_GROUP = "ptqtui.rules"
BUILTIN_PACKAGE = "ptqtui.rules"
CATEGORIES = ("pipeline", "data", "config", "numerics")  # PTQ0xx, 1xx, 2xx, 3xx
CODE_PATTERN = re.compile(r"^[A-Z][A-Z0-9]{1,7}\d{3}$")  # PTQ201; plugins may use their prefix
BUILTIN_CODE_PATTERN = re.compile(r"^PTQ\d{3}$")
NAME_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """Everything said about a rule; the only copy of its text (explain, TUI, reports)."""

    code: str  # "PTQ002"
    name: str  # kebab-case, names the problem: "double-normalization"
    category: str  # one of CATEGORIES
    severity: Severity  # default; findings grade from the evidence
    title: str  # one line
    why: str  # the accuracy consequence
    fix: str  # imperative, names the config key
    needs: tuple[str, ...] = ()  # Context facts; missing ones mark the rule skipped
    example: str = ""  # what a finding looks like, for `ptqtui explain`

    def finding(
        self,
        message: str,
        *evidence: Evidence,
        severity: Severity | None = None,
        fix: str | None = None,
        measured: str | None = None,
        related: Iterable[str] = (),
        remedy: Remedy | None = None,
    ) -> Finding:
        """A finding of this rule; severity and fix default to the rule's."""
        return Finding(
            code=self.code,
            severity=severity or self.severity,
            message=message,
            evidence=tuple(evidence),
            fix=fix if fix is not None else self.fix,
            measured=measured,
            related=tuple(related),
            remedy=remedy,
        )


@dataclass(frozen=True, slots=True)
class Rule:
    """A loaded rule: its metadata, its check, and where it came from."""

    info: RuleInfo
    check: Callable[[Context], list[Finding]]
    source: str  # "ptqtui.rules.ptq201_invalid_config_value", "/my/rules/x.py", "ep: pkg"

    @property
    def code(self) -> str:
        return self.info.code


class RuleLoadError(PtqInputError):
    """A rule module that cannot be used; names the file and what is wrong with it."""


@dataclass
class _Loaded:
    rules: list[Rule] = field(default_factory=list)
    by_code: dict[str, Rule] = field(default_factory=dict)

    def add(self, rule: Rule) -> None:
        other = self.by_code.get(rule.code)
        if other is not None:
            raise RuleLoadError(
                rule.source,
                f"rule code {rule.code} is already used by {other.source}; codes are unique",
            )
        self.by_code[rule.code] = rule
        self.rules.append(rule)


def load_rules(
    rule_dirs: Sequence[Path] = (), *, entry_points: bool = True, builtin: bool = True
) -> tuple[Rule, ...]:
    """Every rule: built-in, then `rule_dirs`, then entry points; sorted by code."""
    loaded = _Loaded()
    if builtin:
        for module in builtin_modules():
            loaded.add(rule_from_module(module, module.__name__, builtin=True))
    for directory in rule_dirs:
        for rule in load_rule_dir(directory):
            loaded.add(rule)
    if entry_points:
        for rule in _entry_point_rules():
            loaded.add(rule)
    return tuple(sorted(loaded.rules, key=lambda r: r.code))


def builtin_modules() -> list[ModuleType]:
    """Every public module of `ptqtui.rules`, in name (= code) order."""
    package = importlib.import_module(BUILTIN_PACKAGE)
    names = sorted(i.name for i in pkgutil.iter_modules(package.__path__))
    return [
        importlib.import_module(f"{BUILTIN_PACKAGE}.{name}")
        for name in names
        if not name.startswith("_")
    ]


def load_rule_dir(directory: Path) -> list[Rule]:
    """Rules from every `*.py` file of `directory` (files starting with '_' are helpers)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise RuleLoadError(directory, "--rules needs a directory of rule modules (.py files)")
    tag = hashlib.sha1(str(directory.resolve()).encode()).hexdigest()[:8]
    rules = []
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = _import_file(path, f"ptqtui_user_rules_{tag}.{path.stem}")
        rules.append(rule_from_module(module, str(path)))
    return rules


def _import_file(path: Path, module_name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RuleLoadError(path, "cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        raise RuleLoadError(path, f"syntax error: {exc.msg}", line=exc.lineno) from exc
    except Exception as exc:  # a user module may raise anything while importing
        sys.modules.pop(module_name, None)
        raise RuleLoadError(path, f"fails to import: {type(exc).__name__}: {exc}") from exc
    return module


def _entry_point_rules() -> list[Rule]:
    rules = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        source = f"entry point {ep.name} ({ep.value})"
        try:
            target = ep.load()
        except Exception as exc:  # a third-party package may raise anything while importing
            raise RuleLoadError(source, f"fails to load: {type(exc).__name__}: {exc}") from exc
        targets = target if isinstance(target, (list, tuple)) else [target]
        for item in targets:
            rules.append(rule_from_module(item, source))
    return rules


def rule_from_module(module: Any, source: str, *, builtin: bool = False) -> Rule:
    """Validate a rule module (RULE + check) and wrap it; RuleLoadError names what is wrong."""
    info = getattr(module, "RULE", None)
    check = getattr(module, "check", None)
    if info is None:
        raise RuleLoadError(source, "defines no RULE = RuleInfo(...)")
    if not isinstance(info, RuleInfo):
        raise RuleLoadError(
            source, f"RULE is a {type(info).__name__}, not ptqtui.check.registry.RuleInfo"
        )
    if not callable(check):
        raise RuleLoadError(source, "defines no check(ctx) function")
    problems = validate_info(info, builtin=builtin)
    if problems:
        raise RuleLoadError(source, f"rule {info.code}: " + "; ".join(problems))
    return Rule(info, check, source)


def validate_info(info: RuleInfo, *, builtin: bool = False) -> list[str]:
    """What is wrong with a rule's metadata (empty: nothing)."""
    problems = []
    pattern = BUILTIN_CODE_PATTERN if builtin else CODE_PATTERN
    if not isinstance(info.code, str) or not pattern.match(info.code):
        problems.append(f"code {info.code!r} is not like PTQ123")
    if not isinstance(info.name, str) or not NAME_PATTERN.match(info.name):
        problems.append(f"name {info.name!r} is not kebab-case")
    if info.category not in CATEGORIES:
        problems.append(f"category {info.category!r} is not one of {', '.join(CATEGORIES)}")
    if not isinstance(info.severity, Severity):
        problems.append(f"severity {info.severity!r} is not a Severity")
    for attr in ("title", "why", "fix"):
        value = getattr(info, attr)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{attr} is empty")
    if not isinstance(info.needs, tuple) or not all(isinstance(n, str) for n in info.needs):
        problems.append("needs must be a tuple of fact names")
    return problems


def find_rule(rules: Iterable[Rule], code_or_name: str) -> Rule | None:
    wanted = code_or_name.strip()
    for rule in rules:
        if rule.code == wanted.upper() or rule.info.name == wanted.lower():
            return rule
    return None
