from __future__ import annotations

import pkgutil
import re
import textwrap
from pathlib import Path

import ptqtui.rules
import pytest

from ptqtui.check.findings import Severity
from ptqtui.check.registry import (
    RuleInfo,
    RuleLoadError,
    builtin_modules,
    find_rule,
    load_rule_dir,
    load_rules,
    rule_from_module,
)
from ptqtui.remedy import ConfigEdit, Remedy

TESTS = Path(__file__).resolve().parents[1] / "rules"


def test_builtin_rules_are_well_formed():
    rules = load_rules(entry_points=False)
    codes = [r.code for r in rules]
    assert codes, "no built-in rule"
    assert all(re.fullmatch(r"PTQ\d{3}", c) for c in codes)
    assert codes == sorted(set(codes)), "codes must be unique and ascending"
    for rule in rules:
        info = rule.info
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", info.name), info.name
        assert info.title.strip() and info.why.strip() and info.fix.strip(), info.code
        assert info.example.strip(), f"{info.code} has no example for 'ptqtui explain'"
        assert isinstance(info.severity, Severity)
        categories = {"0": "pipeline", "1": "data", "2": "config", "3": "numerics"}
        assert info.category == categories[info.code[3]]


def test_every_rule_has_a_test_module():
    for module in builtin_modules():
        stem = module.__name__.rpartition(".")[2]
        assert (TESTS / f"test_{stem}.py").exists(), f"no tests/rules/test_{stem}.py"


def test_builtin_modules_are_discovered_in_code_order():
    names = [m.__name__.rpartition(".")[2] for m in builtin_modules()]
    on_disk = {i.name for i in pkgutil.iter_modules(ptqtui.rules.__path__)}
    assert set(names) == {n for n in on_disk if not n.startswith("_")}
    assert names == sorted(names)


def test_find_rule_by_code_or_name():
    rules = load_rules(entry_points=False)
    assert find_rule(rules, "ptq201").code == "PTQ201"
    assert find_rule(rules, "invalid-config-value").code == "PTQ201"
    assert find_rule(rules, "PTQ999") is None


def _write(directory: Path, name: str, text: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(textwrap.dedent(text))


GOOD = """
from ptqtui.check.findings import Severity
from ptqtui.check.registry import RuleInfo

RULE = RuleInfo(code="ACME001", name="custom-thing", category="config",
                severity=Severity.MINOR, title="t", why="w", fix="f")

def check(ctx):
    return [RULE.finding("custom finding")]
"""


def test_rules_dir_adds_rules(tmp_path):
    _write(tmp_path, "acme.py", GOOD)
    _write(tmp_path, "_helper.py", "raise RuntimeError('helpers are not loaded')")
    [rule] = load_rule_dir(tmp_path)
    assert rule.code == "ACME001" and rule.source.endswith("acme.py")
    codes = [r.code for r in load_rules([tmp_path], entry_points=False)]
    assert "ACME001" in codes and "PTQ201" in codes


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("def check(ctx):\n    return []\n", "defines no RULE"),
        ("RULE = 1\ndef check(ctx):\n    return []\n", "not ptqtui.check.registry.RuleInfo"),
        ("def broken(:\n", "syntax error"),
        ("import no_such_module_here\n", "fails to import"),
        (GOOD.replace('name="custom-thing"', 'name="Custom Thing"'), "not kebab-case"),
        (GOOD.replace("def check(ctx):", "def other(ctx):"), "no check(ctx)"),
        (GOOD.replace('title="t"', 'title=""'), "title is empty"),
    ],
)
def test_malformed_rule_module_names_the_file(tmp_path, text, problem):
    _write(tmp_path, "bad.py", text)
    with pytest.raises(RuleLoadError) as err:
        load_rule_dir(tmp_path)
    assert "bad.py" in str(err.value) and problem in str(err.value)


def test_duplicate_code_is_refused(tmp_path):
    _write(tmp_path, "dup.py", GOOD.replace("ACME001", "PTQ201"))
    with pytest.raises(RuleLoadError, match="already used"):
        load_rules([tmp_path], entry_points=False)


def test_rules_dir_must_exist(tmp_path):
    with pytest.raises(RuleLoadError):
        load_rule_dir(tmp_path / "missing")


def test_finding_helper_carries_the_remedy():
    info = RuleInfo("PTQ999", "x-y", "config", Severity.MAJOR, "t", "w", "fix it")
    remedy = Remedy(config=(ConfigEdit("a.b", old=1.5, remove=True), ConfigEdit("a.c", "rgb")))
    f = info.finding("msg", severity=Severity.MINOR, remedy=remedy)
    assert f.code == "PTQ999" and f.severity is Severity.MINOR and f.fix == "fix it"
    assert f.remedy is remedy
    assert remedy.describe() == "a.b: 1.5 -> (remove); a.c: (unset) -> rgb"
    assert info.finding("msg").remedy is None


def test_rule_from_module_accepts_objects():
    class Plugin:
        RULE = RuleInfo("ACME002", "plug-in", "data", Severity.INFO, "t", "w", "f")

        @staticmethod
        def check(ctx):
            return []

    assert rule_from_module(Plugin, "entry point acme").code == "ACME002"


def test_entry_point_rules_are_loaded(monkeypatch):
    import importlib.metadata
    import types

    module = types.ModuleType("acme_rules")
    exec(textwrap.dedent(GOOD), module.__dict__)

    class EntryPoint:
        name = "acme"
        value = "acme_rules"

        def load(self):
            return module

    def entry_points(group):
        assert group == "ptqtui.rules"
        return [EntryPoint()]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    rules = load_rules()
    [acme] = [r for r in rules if r.code == "ACME001"]
    assert acme.source == "entry point acme (acme_rules)"


def test_broken_entry_point_names_itself(monkeypatch):
    import importlib.metadata

    class EntryPoint:
        name = "broken"
        value = "broken_pkg:rules"

        def load(self):
            raise ImportError("no module named broken_pkg")

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [EntryPoint()])
    with pytest.raises(RuleLoadError, match="entry point broken"):
        load_rules()
