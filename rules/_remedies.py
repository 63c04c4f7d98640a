"""Helpers the rules share to build their typed `Remedy` (config edits with their YAML line)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptqtui.remedy import ConfigEdit, InputChange, InputFix, Remedy, SettingsDelta, Value

if TYPE_CHECKING:
    from ptqtui.inputs.config import MapperConfig


def value(v: object) -> Value:
    """A config value as a remedy carries it: lists become tuples, other scalars stay."""
    if isinstance(v, (list, tuple)):
        return tuple(x for x in (value(i) for i in v) if x is not None and not isinstance(x, tuple))
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def edit(
    config: MapperConfig | None, key: str, old: object, new: object, **kw: object
) -> ConfigEdit:
    """Set `key` from `old` (None: unset) to `new`, with the key's YAML line when it has one."""
    line = config.line_of(key) if config is not None else None
    return ConfigEdit(key, new=value(new), old=value(old), line=line, **kw)  # type: ignore[arg-type]


def removal(config: MapperConfig | None, key: str, old: object) -> ConfigEdit:
    """Remove `key` (written as `old`)."""
    return edit(config, key, old, None, remove=True)


def config_remedy(*edits: ConfigEdit) -> Remedy:
    return Remedy(config=tuple(edits))


def input_remedy(fix: InputFix, input: str | None, samples: tuple[str, ...] = ()) -> Remedy:
    return Remedy(inputs=(InputChange(fix, input=input, samples=samples),))


def settings_remedy(delta: SettingsDelta) -> Remedy:
    return Remedy(settings=delta)
