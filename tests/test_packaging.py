"""The installed package must hold every subpackage (a non-editable install lists them)."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).parent.parent


def test_every_package_directory_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapped = {str(Path(d)): name for name, d in config["package-dir"].items()}
    found = set()
    for init in ROOT.glob("**/__init__.py"):
        rel = init.parent.relative_to(ROOT)
        if rel.parts[0] not in ("ptqtui", "rules", "demo_data"):
            continue
        top = str(Path(rel.parts[0]))
        name = mapped.get(top, top) + "".join(f".{p}" for p in rel.parts[1:])
        found.add(name.replace("/", "."))
    assert found - listed == set(), "add these to [tool.setuptools] packages"
