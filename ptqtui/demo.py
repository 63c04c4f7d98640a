"""The bundled demo: scenarios under demo_data/scenarios, installed as ptqtui.demo_data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ptqtui.errors import PtqInputError, UsageError


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    config: Path
    eval_dir: Path | None


def demo_dir() -> Path:
    return Path(str(resources.files("ptqtui.demo_data")))


def _index() -> dict:
    path = demo_dir() / "scenarios" / "index.json"
    if not path.exists():
        raise PtqInputError(
            path,
            "the demo data is not installed (no scenarios); regenerate it with "
            "demo_data/make_demo.py or reinstall ptqtui",
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PtqInputError(path, f"unreadable demo index: {exc}") from None


def list_scenarios() -> list[tuple[str, str]]:
    index = _index()
    out = []
    for name in index.get("order", []):
        expected = demo_dir() / "scenarios" / name / "expected.json"
        title = ""
        if expected.exists():
            title = json.loads(expected.read_text(encoding="utf-8")).get("title", "")
        marker = " (default)" if name == index.get("default") else ""
        out.append((name, title + marker))
    return out


def find_scenario(name: str | None) -> Scenario:
    index = _index()
    chosen = name or index.get("default")
    names = index.get("order", [])
    if chosen not in names:
        raise UsageError(f"no demo scenario {chosen!r}; one of: {', '.join(names)}")
    folder = demo_dir() / "scenarios" / chosen
    expected = folder / "expected.json"
    title = ""
    with_eval = True  # a scenario's expected.json may say "eval": false (no evaluation set)
    if expected.exists():
        doc = json.loads(expected.read_text(encoding="utf-8"))
        title, with_eval = doc.get("title", ""), bool(doc.get("eval", True))
    eval_dir = demo_dir() / "eval"
    if (folder / "eval").is_dir():  # a scenario's own labelled images (text_map: masks)
        eval_dir = folder / "eval"
    usable = with_eval and eval_dir.is_dir()
    return Scenario(chosen, title, folder / "config.yaml", eval_dir if usable else None)
