"""Find rule modules: the built-in ptqtui.rules package and the `ptqtui.rules` entry points."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def load_rules() -> list[ModuleType]:
    """Every module of ptqtui.rules that declares a RULE, in code order."""
    package = importlib.import_module("ptqtui.rules")
    modules = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"ptqtui.rules.{info.name}")
        if hasattr(module, "RULE"):
            modules.append(module)
    return sorted(modules, key=lambda m: m.RULE.code)
