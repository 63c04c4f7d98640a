"""Frozen dataclasses, enums and tuples to JSON values and back, checked against the types.

What the Diagnosis document and the cache of measurements are written with: a value read back
is checked field by field against its type, so a damaged file is refused (TypeError or
ValueError), never half-read.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from typing import Any


def encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [encode(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def decode(kind: Any, value: Any) -> Any:
    """Rebuild `kind` (a dataclass, Enum, tuple[...], Optional or union) from JSON data.

    A saved report is user input: every value is checked against its field's type (TypeError
    or ValueError otherwise), so a damaged file is refused here, not by a writer later.
    """
    if kind is Any or kind is object:
        return value
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(kind)
        if value is None:
            if type(None) in args:
                return None
            raise TypeError(f"null where {kind} is needed")
        errors: list[Exception] = []
        for option in (a for a in args if a is not type(None)):
            try:
                return decode(option, value)
            except (KeyError, TypeError, ValueError) as exc:
                errors.append(exc)
        raise errors[0] if errors else TypeError(f"no type of {kind} fits {value!r}")
    if origin is tuple:
        _expect(value, list, kind)
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v) for v in value)
        return tuple(decode(a, v) for a, v in zip(args, value, strict=True))
    if origin in (list, dict):
        _expect(value, origin, kind)
        args = typing.get_args(kind)
        if origin is list:
            return [decode(args[0], v) for v in value] if args else list(value)
        return {k: decode(args[1], v) for k, v in value.items()} if args else dict(value)
    if dataclasses.is_dataclass(kind):
        _expect(value, dict, kind)
        hints = typing.get_type_hints(kind)
        known = {f.name for f in dataclasses.fields(kind)}
        return kind(**{k: decode(hints[k], v) for k, v in value.items() if k in known})
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(value)
    if kind is float:
        if value is None:
            return math.nan
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise TypeError(f"{value!r} is not a number")
        return float(value)  # "inf", "-inf" as _encode writes them; other text: ValueError
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"{value!r} is not a whole number")
    if kind in (str, bool):
        _expect(value, kind, kind)
    return value


def _expect(value: Any, kind: type, what: Any) -> None:
    if not isinstance(value, kind):
        raise TypeError(f"{type(value).__name__} where {getattr(what, '__name__', what)} is needed")
