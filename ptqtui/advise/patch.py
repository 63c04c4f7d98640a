"""Apply recommended changes to the user's hb_mapper YAML *text*, keeping everything else.

The file is edited in place as text, guided by the positions PyYAML's composer records:
a changed value replaces only its own characters (in the quoting style it had), a new key is
inserted as one line at the end of its group with the group's indentation, and every other
byte (comments, key order, blank lines, quoting) stays as it was. After the edits the result
is parsed again and must read back as the original plus exactly the requested changes;
anything else raises `PatchError` (a bug here, never a silently wrong config).

`node_info` is handled in both of its forms: a mapping (flow `{...}` over one or several
lines, or block) and the data-type-only string `'node_a:int16;node_b:int16'`, which is kept
a string while the changes are data types only and becomes a flow mapping when a node must
also move (`ON: CPU`).

Changes come as `remedy.ConfigEdit`s (`change_of`) or as a settings change
(`settings_changes(old, new)`, the YAML that takes the config from one `QuantSettings` to
another); `patch_remedy` applies a whole `Remedy`.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ptqtui.analysis.whatif import OPTIMIZATION_ITEMS
from ptqtui.atomic import write_atomically
from ptqtui.errors import PtqInputError, UsageError
from ptqtui.inputs.yamltext import compose, is_null, parse_node_string
from ptqtui.policy import NO_INT16_MARCH
from ptqtui.remedy import ConfigEdit, Placement, Remedy, settings_delta

if TYPE_CHECKING:
    from ptqtui.advise.results import Plan
    from ptqtui.inputs.config import MapperConfig
    from ptqtui.quant.scheme import QuantSettings

log = logging.getLogger(__name__)

NODE_INFO = "model_parameters.node_info"
LIST_SEPARATORS = {  # keys holding a list in one string, and how items are separated
    "calibration_parameters.optimization": ",",
    "calibration_parameters.run_on_cpu": ";",
    "calibration_parameters.run_on_bpu": ";",
}
NODE_FIELDS = ("ON", "InputType", "OutputType")
KEY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_INDENT = 2


class PatchError(Exception):
    """The config text cannot be patched as asked (its shape is not one we can edit safely)."""


class _Remove:
    def __repr__(self) -> str:
        return "REMOVE"


REMOVE: Any = _Remove()  # the value of a ConfigChange that deletes its key


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """One change to the config: set (or remove) a key, add a list item, or set a node's
    `node_info` fields."""

    key: str  # dotted: "calibration_parameters.per_channel"; NODE_INFO for node entries
    value: Any = None  # the new value, REMOVE, or the item to add when `append`
    node: str | None = None  # node_info entry
    fields: tuple[tuple[str, str], ...] = ()  # node_info fields: (("ON", "CPU"),)
    append: bool = False  # add `value` to a list-valued key (optimization, run_on_cpu)
    rename: bool = False  # rename node `node` to `value` (node_info key, run_on_cpu item)

    def __post_init__(self) -> None:
        group, dot, name = self.key.partition(".")
        if not dot or not KEY_NAME.match(group) or not KEY_NAME.match(name):
            raise ValueError(f"config key {self.key!r} is not 'group.key'")
        if self.rename:
            if self.key != NODE_INFO and self.key not in LIST_SEPARATORS:
                raise ValueError(f"{self.key} names no nodes to rename")
            if not self.node or not isinstance(self.value, str) or not self.value:
                raise ValueError("a rename needs the old and the new node name")
        elif self.node is not None:
            if self.key != NODE_INFO:
                raise ValueError("node settings go to model_parameters.node_info")
            for f, v in self.fields:
                if f not in NODE_FIELDS and not re.fullmatch(r"InputType\d+", f):
                    raise ValueError(f"node_info field {f!r} is not one of {NODE_FIELDS}")
                if not isinstance(v, str):
                    raise ValueError(f"node_info {f} must be a string")
        if self.append and self.key not in LIST_SEPARATORS:
            raise ValueError(f"{self.key} does not hold a list of items")

    def describe(self) -> str:
        """One line: 'calibration_parameters.per_channel: true'."""
        if self.rename:
            return f"{self.key}: rename {self.node} -> {self.value}"
        if self.node is not None:
            inner = ", ".join(f"{f}: {v}" for f, v in self.fields)
            return f"{self.key}: {self.node}: {{{inner}}}"
        if self.append:
            return f"{self.key}: add {self.value}"
        if self.value is REMOVE:
            return f"{self.key}: (remove)"
        return f"{self.key}: {_plain(self.value)}"


def rename_node(key: str, old: str, new: str) -> ConfigChange:
    """Rename a node in node_info (its key) or in a run_on_cpu/run_on_bpu list."""
    return ConfigChange(key, new, node=old, rename=True)


def set_key(key: str, value: Any) -> ConfigChange:
    return ConfigChange(key, value)


def add_item(key: str, item: str) -> ConfigChange:
    return ConfigChange(key, item, append=True)


def node_setting(
    node: str,
    *,
    on: str | None = None,
    input_type: str | None = None,
    output_type: str | None = None,
) -> ConfigChange:
    fields = tuple(
        (f, v)
        for f, v in (("ON", on), ("InputType", input_type), ("OutputType", output_type))
        if v is not None
    )
    if not fields:
        raise ValueError(f"node_info change for {node} sets nothing")
    return ConfigChange(NODE_INFO, node=node, fields=fields)


def change_of(edit: ConfigEdit) -> ConfigChange:
    """The patch change for a remedy's config edit (ValueError for a key no patch edits)."""
    if edit.rename:
        return rename_node(edit.key, str(edit.node), str(edit.new))
    if edit.fields:
        return ConfigChange(NODE_INFO, node=edit.node, fields=edit.fields)
    if edit.remove:
        return set_key(edit.key, REMOVE)
    value = edit.new
    if isinstance(value, tuple):  # mean_value 123.675 116.28 103.53; optimization a,b
        sep = LIST_SEPARATORS.get(edit.key, " ")
        value = sep.join(_plain(v) if not isinstance(v, float) else f"{v:g}" for v in value)
    if edit.append:
        return add_item(edit.key, str(value))
    return set_key(edit.key, value)


def cpu_key_for(config: MapperConfig | None) -> str:
    """Where a node goes to the CPU: run_on_cpu on X3 (bernoulli2, no node_info there) or
    where the config already uses it, else node_info ON: CPU."""
    if config is None:
        return "node_info"
    if config.march in NO_INT16_MARCH or config.run_on_cpu:
        return "run_on_cpu"
    return "node_info"


def settings_changes(
    old: QuantSettings,
    new: QuantSettings,
    *,
    cpu_key: str,
    optimization: Sequence[str] | None = None,
) -> list[ConfigChange]:
    """The YAML changes that take the config from `old` to `new` settings; `optimization` is
    the config's list of optimization items (needed to turn one off, keeping the others)."""
    out: list[ConfigChange] = []
    cp = "calibration_parameters"
    if new.calibration_type != old.calibration_type:
        out.append(set_key(f"{cp}.calibration_type", new.calibration_type))
    old_p = old.max_percentile if old.max_percentile not in (None, 1.0) else None
    new_p = new.max_percentile if new.max_percentile not in (None, 1.0) else None
    if new_p != old_p:
        if new_p is not None:
            out.append(set_key(f"{cp}.max_percentile", new_p))
        elif new.calibration_type == "max":
            out.append(set_key(f"{cp}.max_percentile", REMOVE))
    if new.per_channel != old.per_channel:
        out.append(set_key(f"{cp}.per_channel", new.per_channel))
    out += _optimization_changes(old, new, optimization)
    cpu = [n.node for n in settings_delta(old, new).nodes if n.placement is Placement.CPU]
    old_over = {o.node: o for o in old.node_overrides}
    for o in new.node_overrides:
        if old_over.get(o.node) == o:
            continue
        prev = old_over.get(o.node)
        if cpu_key == "run_on_cpu" and o.on == "CPU" and o.node in cpu:
            continue  # written to run_on_cpu below
        out.append(
            node_setting(
                o.node,
                on=o.on if (prev is None or prev.on != o.on) else None,
                input_type=o.input_dtype
                if (prev is None or prev.input_dtype != o.input_dtype)
                else None,
                output_type=o.output_dtype
                if (prev is None or prev.output_dtype != o.output_dtype)
                else None,
            )
        )
    for node in new.run_on_cpu:
        if node not in old.run_on_cpu:
            out.append(add_item(f"{cp}.{cpu_key}", node))
    if cpu_key == "run_on_cpu":
        for o in new.node_overrides:
            if o.on == "CPU" and o.node in cpu and o.node not in new.run_on_cpu:
                out.append(add_item(f"{cp}.run_on_cpu", o.node))
    return out


def _optimization_changes(
    old: QuantSettings, new: QuantSettings, items: Sequence[str] | None
) -> list[ConfigChange]:
    """Items turned on are added; when one is turned off (and the config's list is known)
    the list is written whole: the items as they stand, less those off, plus those on."""
    key = "calibration_parameters.optimization"
    on = [i for i, f in OPTIMIZATION_ITEMS.items() if getattr(new, f) and not getattr(old, f)]
    off = [i for i, f in OPTIMIZATION_ITEMS.items() if getattr(old, f) and not getattr(new, f)]
    if not off or items is None:
        return [add_item(key, i) for i in on]
    current = [
        i for i in items if i not in OPTIMIZATION_ITEMS or getattr(old, OPTIMIZATION_ITEMS[i])
    ]
    current += [i for i, f in OPTIMIZATION_ITEMS.items() if getattr(old, f) and i not in current]
    kept = [i for i in current if i not in off] + on
    return [set_key(key, ",".join(kept) if kept else REMOVE)]


def remedy_changes(
    remedy: Remedy,
    base: QuantSettings,
    *,
    cpu_key: str = "node_info",
    optimization: Sequence[str] | None = None,
) -> list[ConfigChange]:
    """The YAML changes of `remedy` from the configured `base` settings: its config edits,
    then the settings change its settings delta makes."""
    out = [change_of(e) for e in remedy.config]
    if remedy.settings is not None and not remedy.settings.is_empty():
        after = remedy.settings.apply(base)
        out += settings_changes(base, after, cpu_key=cpu_key, optimization=optimization)
    return out


def patch_remedy(
    text: str,
    remedy: Remedy,
    base: QuantSettings,
    config: MapperConfig | None = None,
    *,
    name: str = "config.yaml",
) -> PatchResult:
    """The config text with `remedy` applied (the TUI's what-if choices, a plan step)."""
    items = config.optimization if config is not None else None
    changes = remedy_changes(remedy, base, cpu_key=cpu_key_for(config), optimization=items)
    return apply_changes(text, changes, name=name)


@dataclass(frozen=True, slots=True)
class PatchResult:
    text: str  # the patched YAML
    diff: str  # unified diff, original -> patched ("" when nothing changed)
    changes: tuple[ConfigChange, ...]


def apply_changes(
    text: str, changes: Iterable[ConfigChange], *, name: str = "config.yaml"
) -> PatchResult:
    """The YAML `text` with `changes` applied, and the unified diff."""
    changes = tuple(changes)
    new = text
    for change in changes:
        new = _apply_one(new, change)
    _verify(text, new, changes)
    return PatchResult(new, unified_diff(text, new, name), changes)


def unified_diff(old: str, new: str, name: str = "config.yaml") -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{name}",
        tofile=f"b/{name}",
    )
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def write_patched_config(plan: Plan, out_path: str | Path, user_config_path: str | Path) -> Path:
    """Write the plan's patched config to `out_path` atomically; never over the user's file."""
    if plan.patched_config is None:
        raise UsageError("--write-config: there is no config to patch (run with -c CONFIG.yaml)")
    out = Path(out_path)
    user = Path(user_config_path)
    if _same_file(out, user):
        raise UsageError(
            f"--write-config {out}: that is the config being diagnosed; "
            "ptqtui never overwrites it, write to another file"
        )
    if out.is_dir():
        raise UsageError(f"--write-config {out}: is a directory, expected a file name")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"--write-config {out}: directory {parent} does not exist")
    write_atomically(out, plan.patched_config)
    note = relocation_note(out, user, plan.patched_config)
    if note:
        log.warning("%s", note)
    return out


PATH_KEYS = ("onnx_model", "caffe_model", "prototxt", "cal_data_dir", "working_dir")


def relocation_note(out: Path, user: Path, text: str) -> str | None:
    """A warning when the written config sits in another directory than the user's and
    names files by relative paths (they are resolved from the config's directory)."""
    if out.resolve().parent == user.resolve().parent:
        return None
    relative = []
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and key in PATH_KEYS:
            for part in value.split("#")[0].strip().strip("'\"").split(";"):
                part = part.strip()
                if part and not Path(part).is_absolute():
                    relative.append(f"{key} {part}")
    if not relative:
        return None
    return (
        f"{out} is not in the directory of {user.name}: its relative paths "
        f"({', '.join(relative[:3])}) now point elsewhere; write it beside the original "
        "or adjust them"
    )


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists() and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return a.resolve() == b.resolve()


# ------------------------------------------------------------------ text positions


def _find(mapping: yaml.MappingNode, name: str) -> tuple[yaml.Node, yaml.Node] | None:
    found = None
    for k, v in mapping.value:
        if isinstance(k, yaml.ScalarNode) and k.value == name:
            found = (k, v)  # the last one wins, as when loading
    return found


def _content_end(node: yaml.Node) -> int:
    """Index just after the last character that belongs to `node` (not trailing comments)."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
        return node.end_mark.index
    if isinstance(node, yaml.MappingNode) and node.value:
        return _content_end(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and node.value:
        return _content_end(node.value[-1])
    return node.end_mark.index


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _line_end(text: str, index: int) -> int:
    """End (newline position) of the line where content ending at `index` ends."""
    if index > 0 and text[index - 1] == "\n":  # content ended with its newline (block scalar)
        index -= 1
        return index - 1 if index > 0 and text[index - 1] == "\r" else index
    j = text.find("\n", index)
    if j == -1:
        return len(text)
    return j - 1 if j > 0 and text[j - 1] == "\r" else j


def _insert_line_after(text: str, index: int, line: str) -> str:
    """Insert `line` as a new line after the line that holds `index`."""
    nl = _newline(text)
    end = _line_end(text, index)
    return text[:end] + nl + line + text[end:]


def _append_lines(text: str, lines: Sequence[str]) -> str:
    nl = _newline(text)
    if text and not text.endswith("\n"):
        text += nl
    return text + nl.join(lines) + nl


def _indent_of(mapping: yaml.MappingNode, default: int) -> int:
    if mapping.value:
        return mapping.value[0][0].start_mark.column
    return default


def _group_indent(root: yaml.MappingNode) -> int:
    """The indentation the file uses for keys inside groups."""
    for _, v in root.value:
        if isinstance(v, yaml.MappingNode) and not v.flow_style and v.value:
            return v.value[0][0].start_mark.column
    return DEFAULT_INDENT


def _replace(text: str, node: yaml.Node, new: str) -> str:
    start, end = node.start_mark.index, node.end_mark.index
    if start == end and start > 0 and text[start - 1] == ":":
        new = " " + new  # `key:` with nothing after it
    return text[:start] + new + text[end:]


# ------------------------------------------------------------------ rendering


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _bool_style(text: str) -> str:
    """'True' when the file writes booleans capitalised (as hb_mapper samples do)."""
    if re.search(r":\s*(True|False)\s*(#.*)?$", text, re.M):
        return "True"
    if re.search(r":\s*(TRUE|FALSE)\s*(#.*)?$", text, re.M):
        return "TRUE"
    return "true"


def _quote(value: str, style: str | None) -> str:
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"':
        return json.dumps(value, ensure_ascii=False)
    return value


def _safe_plain(value: str) -> bool:
    if not value or value != value.strip() or "#" in value or ": " in value:
        return False
    try:
        return yaml.safe_load(f"k: {value}") == {"k": value}
    except yaml.YAMLError:
        return False


def _render(value: Any, text: str, like: yaml.Node | None = None) -> str:
    """`value` as YAML, in the style of the scalar it replaces (`like`) where there is one."""
    style = like.style if isinstance(like, yaml.ScalarNode) else None
    if isinstance(value, bool):
        raw = like.value if isinstance(like, yaml.ScalarNode) and not style else ""
        if raw in ("True", "False"):
            word = "True" if value else "False"
        elif raw in ("TRUE", "FALSE"):
            word = "TRUE" if value else "FALSE"
        elif raw in ("true", "false"):
            word = "true" if value else "false"
        else:
            cap = _bool_style(text)
            word = {"True": str(value), "TRUE": str(value).upper()}.get(cap, _plain(value))
        return _quote(word, style) if style else word
    if isinstance(value, (int, float)):
        return _quote(_plain(value), style) if style else _plain(value)
    s = str(value)
    if style in ("'", '"'):
        return _quote(s, style)
    return s if _safe_plain(s) else _quote(s, "'")


def _key_text(name: str, style: str | None) -> str:
    if style in ("'", '"'):
        return _quote(name, style)
    return name if _safe_plain(name) else _quote(name, '"')


def _flow_fields(fields: Sequence[tuple[str, str]], style: str | None = "'") -> str:
    inner = ", ".join(f"{_key_text(f, style)}: {_quote(v, style)}" for f, v in fields)
    return "{" + inner + "}"


# ------------------------------------------------------------------ edits


def _apply_one(text: str, change: ConfigChange) -> str:
    if change.rename:
        return _rename(text, change)
    if change.node is not None:
        info = _node_info(text)
        if isinstance(info, yaml.ScalarNode) and not is_null(info):
            return _set_node_in_string(text, info, change.node, dict(change.fields))
        for f, v in change.fields:
            text = _set_node_field(text, change.node, f, v)
        return text
    group, _, name = change.key.partition(".")
    if change.append:
        return _add_item(text, group, name, str(change.value), LIST_SEPARATORS[change.key])
    if change.value is REMOVE:
        return _remove_key(text, group, name)
    return _set_key(text, group, name, change.value)


def _root(text: str) -> yaml.MappingNode | None:
    try:
        root = compose(text)
    except PtqInputError as exc:
        raise PatchError(f"the config is not valid YAML: {exc.problem}") from exc
    if root is None:
        return None
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        raise PatchError("the config's top level is not a block mapping of groups")
    return root


def _group(
    text: str, group: str
) -> tuple[yaml.MappingNode | None, yaml.Node | None, yaml.Node | None]:
    root = _root(text)
    if root is None:
        return None, None, None
    found = _find(root, group)
    if found is None:
        return root, None, None
    k, v = found
    if not is_null(v) and (not isinstance(v, yaml.MappingNode) or v.flow_style):
        raise PatchError(f"group {group} is not a block mapping; cannot edit it safely")
    return root, k, v


def _insert_key(text: str, group: str, name: str, value_text: str) -> str:
    """Insert `name: value_text` at the end of `group` (creating the group if missing)."""
    root, gk, gv = _group(text, group)
    if root is None or gk is None or gv is None:
        indent = " " * (_group_indent(root) if root is not None else DEFAULT_INDENT)
        return _append_lines(text, [f"{group}:", f"{indent}{name}: {value_text}"])
    if is_null(gv) or not gv.value:
        indent = " " * _group_indent(root)
        anchor = gk.end_mark.index if is_null(gv) else gv.start_mark.index
        return _insert_line_after(text, anchor, f"{indent}{name}: {value_text}")
    indent = " " * _indent_of(gv, DEFAULT_INDENT)
    return _insert_line_after(text, _content_end(gv.value[-1][1]), f"{indent}{name}: {value_text}")


def _set_key(text: str, group: str, name: str, value: Any) -> str:
    _, _, gv = _group(text, group)
    entry = _find(gv, name) if isinstance(gv, yaml.MappingNode) else None
    if entry is None:
        return _insert_key(text, group, name, _render(value, text))
    _, node = entry
    if not isinstance(node, yaml.ScalarNode):
        raise PatchError(f"{group}.{name} is not a single value; cannot replace it safely")
    return _replace(text, node, _render(value, text, like=node))


def _remove_key(text: str, group: str, name: str) -> str:
    _, _, gv = _group(text, group)
    entry = _find(gv, name) if isinstance(gv, yaml.MappingNode) else None
    if entry is None:
        return text
    k, v = entry
    start = text.rfind("\n", 0, k.start_mark.index) + 1
    if text[start : k.start_mark.index].strip():
        raise PatchError(f"{group}.{name} does not start its own line; cannot remove it safely")
    end = _line_end(text, _content_end(v))
    nl_end = end + len(_newline(text)) if end < len(text) else end
    return text[:start] + text[nl_end:]


def _split_items(value: str, sep: str) -> list[str]:
    return [p.strip() for p in re.split(r"[;,]" if sep == ";" else r"[,;]", value) if p.strip()]


def _add_item(text: str, group: str, name: str, item: str, sep: str) -> str:
    _, _, gv = _group(text, group)
    entry = _find(gv, name) if isinstance(gv, yaml.MappingNode) else None
    if entry is None or is_null(entry[1]):
        if entry is not None:
            return _replace(text, entry[1], _render(item, text))
        return _insert_key(text, group, name, _render(item, text))
    _, node = entry
    if isinstance(node, yaml.ScalarNode):
        current = str(node.value)
        if item in _split_items(current, sep):
            return text
        spaced = f"{sep} " if f"{sep} " in current else sep
        joined = f"{current.rstrip()}{spaced}{item}" if current.strip() else item
        return _replace(text, node, _render(joined, text, like=node))
    if isinstance(node, yaml.SequenceNode):
        if any(isinstance(i, yaml.ScalarNode) and i.value == item for i in node.value):
            return text
        if node.flow_style or not node.value:
            close = node.end_mark.index - 1
            if text[close] != "]":
                raise PatchError(f"{group}.{name}: unexpected list syntax")
            lead = ", " if node.value else ""
            return text[:close] + lead + _render(item, text) + text[close:]
        last = node.value[-1]
        dash = text.rfind("-", 0, last.start_mark.index)
        indent = " " * (dash - text.rfind("\n", 0, dash) - 1)
        return _insert_line_after(text, _content_end(last), f"{indent}- {_render(item, text)}")
    raise PatchError(f"{group}.{name} is a mapping, not a list of items")


# ------------------------------------------------------------------ node_info


def _node_info(text: str) -> yaml.Node | None:
    _, _, gv = _group(text, "model_parameters")
    entry = _find(gv, "node_info") if isinstance(gv, yaml.MappingNode) else None
    return None if entry is None else entry[1]


def _set_node_field(text: str, node: str, field: str, value: str) -> str:
    info = _node_info(text)
    if info is None or is_null(info):
        entry = f"{_key_text(node, chr(34))}: {_flow_fields([(field, value)])}"
        if info is None:
            _, _, gv = _group(text, "model_parameters")
            inner = " " * (
                2
                * (
                    _indent_of(gv, DEFAULT_INDENT)
                    if isinstance(gv, yaml.MappingNode)
                    else DEFAULT_INDENT
                )
            )
            outer = inner[: len(inner) // 2]
            block = "{" + _newline(text) + inner + entry + _newline(text) + outer + "}"
            return _insert_key(text, "model_parameters", "node_info", block)
        return _replace(text, info, "{" + entry + "}")
    if isinstance(info, yaml.ScalarNode):
        return _set_node_in_string(text, info, node, {field: value})
    if not isinstance(info, yaml.MappingNode):
        raise PatchError("model_parameters.node_info is a list; expected a mapping or a string")
    found = _find(info, node)
    if found is None:
        return _add_node_entry(text, info, node, [(field, value)])
    _, fields = found
    if not isinstance(fields, yaml.MappingNode):
        raise PatchError(f"node_info entry {node} is not a mapping of fields")
    return _set_in_mapping(text, fields, field, value)


def _set_node_in_string(text: str, info: yaml.ScalarNode, node: str, fields: dict[str, str]) -> str:
    """node_info in its 'name:int16;...' form: stays a string while every entry sets input
    and output to one type; anything else (ON, one side only) makes it a flow mapping."""
    entries = parse_node_string(str(info.value))
    current: dict[str, dict[str, str]] = {n: {"InputType": d, "OutputType": d} for n, d in entries}
    merged = {**current.get(node, {}), **fields}
    if merged == current.get(node):
        return text
    if set(merged) == {"InputType", "OutputType"} and len(set(merged.values())) == 1:
        dtype = merged["InputType"]
        new = [(n, dtype if n == node else d) for n, d in entries]
        if node not in current:
            new.append((node, dtype))
        joiner = "; " if "; " in str(info.value) else ";"
        return _replace(text, info, _render(joiner.join(f"{n}:{d}" for n, d in new), text, info))
    current[node] = merged
    k_line = text.rfind("\n", 0, info.start_mark.index) + 1
    key_indent = len(text[k_line:]) - len(text[k_line:].lstrip(" "))
    outer = " " * key_indent
    inner = " " * (key_indent + DEFAULT_INDENT)
    nl = _newline(text)
    body = ("," + nl).join(
        f"{inner}{_key_text(n, chr(34))}: {_flow_fields(list(fs.items()))}"
        for n, fs in current.items()
    )
    return _replace(text, info, "{" + nl + body + nl + outer + "}")


def _add_node_entry(
    text: str, info: yaml.MappingNode, node: str, fields: list[tuple[str, str]]
) -> str:
    key_style = info.value[0][0].style if info.value else '"'
    inner_style = "'"
    if info.value and isinstance(info.value[0][1], yaml.MappingNode) and info.value[0][1].value:
        inner_style = info.value[0][1].value[0][0].style or None
    entry = f"{_key_text(node, key_style)}: {_flow_fields(fields, inner_style)}"
    if not info.flow_style:
        indent = " " * _indent_of(info, DEFAULT_INDENT)
        return _insert_line_after(text, _content_end(info.value[-1][1]), f"{indent}{entry}")
    close = info.end_mark.index - 1
    if text[close] != "}":
        raise PatchError("model_parameters.node_info: unexpected flow mapping syntax")
    if not info.value:
        return text[:close] + entry + text[close:]
    last_key, last_value = info.value[-1]
    last_end = _content_end(last_value)
    same_line = text.count("\n", last_end, close) == 0
    if same_line:
        return text[:last_end] + ", " + entry + text[last_end:]
    # several lines: a comma after the last entry (before any comment), the new entry below
    rest = text[last_end:]
    has_comma = rest.lstrip(" \t").startswith(",")
    if not has_comma:
        text = text[:last_end] + "," + text[last_end:]
        last_end += 1
    indent = " " * last_key.start_mark.column
    trailing = "," if has_comma else ""
    return _insert_line_after(text, last_end, f"{indent}{entry}{trailing}")


def _set_in_mapping(text: str, mapping: yaml.MappingNode, field: str, value: str) -> str:
    found = _find(mapping, field)
    if found is not None:
        _, node = found
        if not isinstance(node, yaml.ScalarNode):
            raise PatchError(f"node_info field {field} is not a single value")
        return _replace(text, node, _render(value, text, like=node))
    key_style = mapping.value[0][0].style if mapping.value else "'"
    val_style = None
    if mapping.value and isinstance(mapping.value[0][1], yaml.ScalarNode):
        val_style = mapping.value[0][1].style
    elif key_style:
        val_style = key_style
    rendered = _quote(value, val_style) if val_style else _render(value, text)
    pair = f"{_key_text(field, key_style)}: {rendered}"
    if mapping.flow_style:
        close = mapping.end_mark.index - 1
        p = close
        while p > 0 and text[p - 1] in " \t":
            p -= 1
        lead = ", " if mapping.value else ""
        return text[:p] + lead + pair + text[p:]
    indent = " " * _indent_of(mapping, DEFAULT_INDENT)
    return _insert_line_after(text, _content_end(mapping.value[-1][1]), f"{indent}{pair}")


def _rename(text: str, change: ConfigChange) -> str:
    old, new = str(change.node), str(change.value)
    group, _, name = change.key.partition(".")
    _, _, gv = _group(text, group)
    entry = _find(gv, name) if isinstance(gv, yaml.MappingNode) else None
    if entry is None or is_null(entry[1]):
        return text
    node = entry[1]
    if isinstance(node, yaml.MappingNode):
        found = next(
            (k for k, _ in node.value if isinstance(k, yaml.ScalarNode) and k.value == old), None
        )
        if found is None:
            return text
        return _replace(text, found, _key_text(new, found.style))
    if isinstance(node, yaml.ScalarNode):
        value = str(node.value)
        if change.key == NODE_INFO:
            items = parse_node_string(value)
            if old not in dict(items):
                return text
            joiner = "; " if "; " in value else ";"
            renamed = joiner.join(f"{new if n == old else n}:{d}" for n, d in items)
        else:
            parts = re.split(r"(\s*[;,]\s*)", value)
            if old not in parts:
                return text
            renamed = "".join(new if p == old else p for p in parts)
        return _replace(text, node, _render(renamed, text, like=node))
    raise PatchError(f"{change.key} is a list; cannot rename {old} in it safely")


# ------------------------------------------------------------------ verification


def _normal_node_info(value: Any) -> Any:
    if isinstance(value, str):
        return {n: {"InputType": d, "OutputType": d} for n, d in parse_node_string(value)}
    return value


def _expected(data: dict[str, Any], changes: Sequence[ConfigChange]) -> dict[str, Any]:
    out = {g: (dict(v) if isinstance(v, dict) else v) for g, v in data.items()}
    for c in changes:
        group, _, name = c.key.partition(".")
        grp = out.get(group)
        if not isinstance(grp, dict):
            grp = {}
            out[group] = grp
        if c.rename:
            current = grp.get(name)
            if c.key == NODE_INFO:
                info = _normal_node_info(current) or {}
                if c.node in info:
                    grp[name] = {(c.value if n == c.node else n): f for n, f in info.items()}
            elif isinstance(current, str):
                items = _split_items(current, ";")
                if c.node in items:
                    grp[name] = ";".join(c.value if i == c.node else i for i in items)
        elif c.node is not None:
            info = _normal_node_info(grp.get(name)) or {}
            info = {n: dict(f) for n, f in info.items()}
            entry = info.setdefault(c.node, {})
            entry.update(dict(c.fields))
            grp[name] = info
        elif c.append:
            current = grp.get(name)
            if isinstance(current, list):
                if c.value not in current:
                    grp[name] = [*current, c.value]
            elif current in (None, ""):
                grp[name] = c.value
            elif c.value not in _split_items(str(current), LIST_SEPARATORS[c.key]):
                grp[name] = f"{current}{LIST_SEPARATORS[c.key]}{c.value}"
        elif c.value is REMOVE:
            grp.pop(name, None)
        else:
            grp[name] = c.value
    return out


def _comparable(data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    out = {}
    for g, v in data.items():
        if isinstance(v, dict):
            v = dict(v)
            if "node_info" in v:
                v["node_info"] = _normal_node_info(v["node_info"])
            for key in ("optimization", "run_on_cpu", "run_on_bpu"):
                if isinstance(v.get(key), str):
                    v[key] = _split_items(v[key], ";")
        out[g] = v
    return out


def _verify(old: str, new: str, changes: Sequence[ConfigChange]) -> None:
    try:
        before = yaml.safe_load(old) or {}
        after = yaml.safe_load(new) or {}
    except yaml.YAMLError as exc:
        raise PatchError(f"the patched config is not valid YAML: {exc}") from exc
    if not isinstance(before, dict):
        raise PatchError("the config's top level is not a mapping")
    expected = _expected(before, changes)
    if _comparable(after) != _comparable(expected):
        raise PatchError("the patched config does not read back as the requested changes")
    old_comments = [ln.strip() for ln in old.splitlines() if ln.strip().startswith("#")]
    new_comments = [ln.strip() for ln in new.splitlines() if ln.strip().startswith("#")]
    if old_comments != new_comments:
        raise PatchError("patching lost a comment line")
