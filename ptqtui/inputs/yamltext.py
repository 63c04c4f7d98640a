"""YAML text as both the config reader and the config patcher see it: the node tree with its
positions, null values, and the 'name:int16;name:int16' string form of node_info."""

from __future__ import annotations

from pathlib import Path

import yaml

from ptqtui.errors import PtqInputError

NULL_TAG = "tag:yaml.org,2002:null"


# A mapper YAML has 3 levels (group, key, node_info entry) and some hundred values. Aliases
# make a small file expand without bound ("billion laughs"): the composed graph is measured,
# aliases expanded, before anything is built from it.
MAX_DEPTH = 32
MAX_VALUES = 100_000
# libyaml's parser where PyYAML has it: the pure-Python one takes seconds per megabyte
FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Tags yaml.safe_load builds (str, int, float, bool, null, timestamp, binary, set, omap...);
# any other (!!python/object, !custom) would fail deep inside the parse.
SAFE_TAGS = frozenset(t for t in yaml.SafeLoader.yaml_constructors if t is not None)


def compose(text: str, path: str | Path | None = None) -> yaml.Node | None:
    """The YAML node tree of `text` (None for an empty document); PtqInputError naming
    `path` (its file name) and the line for invalid YAML, for nesting deeper than a config
    has, for aliases that expand without bound and for tags that are not plain data."""
    name = Path(path).name if path is not None else None
    try:
        _check_depth(name, text)
        root = yaml.compose(text, Loader=FAST_LOADER)
    except RecursionError:
        raise PtqInputError(name, "invalid YAML: nested far too deeply") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or exc.context or "invalid YAML"
        raise PtqInputError(name, f"invalid YAML: {reason}", line=line) from exc
    except yaml.YAMLError as exc:
        raise PtqInputError(name, f"invalid YAML: {exc}") from exc
    if root is not None:
        _check_expansion(name, root)
    return root


def _check_depth(name: str | None, text: str) -> None:
    """Refuse deep nesting from the parser's events, before the (recursive) composer sees it."""
    depth = 0
    for event in yaml.parse(text, Loader=FAST_LOADER):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise PtqInputError(
                    name,
                    f"invalid YAML: nested more than {MAX_DEPTH} levels deep; "
                    "a hb_mapper config has 3",
                    line=event.start_mark.line + 1,
                )
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def _check_expansion(name: str | None, root: yaml.Node) -> None:
    """Refuse YAML whose aliases expand without bound, that nests too deeply or refers to
    itself, or that carries a tag plain YAML data does not have."""
    sizes: dict[int, int] = {}

    def expanded(node: yaml.Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise PtqInputError(
                name,
                f"invalid YAML: nested more than {MAX_DEPTH} levels deep "
                "(or an alias refers to itself); a hb_mapper config has 3",
                line=node.start_mark.line + 1,
            )
        known = sizes.get(id(node))
        if known is not None:
            return known
        if node.tag not in SAFE_TAGS:
            raise PtqInputError(
                name,
                f"invalid YAML: the tag {node.tag} is not plain YAML data; a hb_mapper config "
                "has no tags",
                line=node.start_mark.line + 1,
            )
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(expanded(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(expanded(k, depth + 1) + expanded(v, depth + 1) for k, v in node.value)
        if total > MAX_VALUES:
            raise PtqInputError(
                name,
                f"invalid YAML: its aliases expand to more than {MAX_VALUES} values "
                "(an alias bomb?); a hb_mapper config has a few hundred",
                line=node.start_mark.line + 1,
            )
        sizes[id(node)] = total
        return total

    expanded(root, 0)


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
