"""YAML text as both the config reader and the config patcher see it: the node tree with its
positions, null values, and the 'name:int16;name:int16' string form of node_info."""

from __future__ import annotations

from pathlib import Path

import yaml

from ptqtui.errors import PtqInputError

NULL_TAG = "tag:yaml.org,2002:null"


def compose(text: str, path: str | Path | None = None) -> yaml.Node | None:
    """The YAML node tree of `text` (None for an empty document); PtqInputError naming
    `path` (its file name) and the line for invalid YAML."""
    name = Path(path).name if path is not None else None
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or exc.context or "invalid YAML"
        raise PtqInputError(name, f"invalid YAML: {reason}", line=line) from exc
    except yaml.YAMLError as exc:
        raise PtqInputError(name, f"invalid YAML: {exc}") from exc


def is_null(node: yaml.Node) -> bool:
    """`key:` or `key: null`, as a node."""
    return isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG


def split_items(text: str) -> list[str]:
    """'a; b;c' -> ['a', 'b', 'c'] (';' separates items, surrounding spaces ignored)."""
    return [item.strip() for item in text.split(";") if item.strip()]


def node_item(item: str) -> tuple[str, str]:
    """'conv1:int16' -> ('conv1', 'int16'); the node is '' when the item has no 'name:'."""
    node, _, dtype = item.rpartition(":")
    return node.strip(), dtype.strip()


def parse_node_string(text: str) -> list[tuple[str, str]]:
    """node_info's string form 'a:int16;b:int16' -> [('a', 'int16'), ('b', 'int16')]."""
    return [node_item(item) for item in split_items(text)]
