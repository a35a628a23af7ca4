"""Configs as data: dataclasses filled strictly from dicts (YAML recipes, config.json, --set overrides).

Every key is declared once, as a dataclass field with a type. An unknown key fails with one line that
names it and the nearest valid key (`unknown key model.embed_dimm (did you mean model.embed_dim?)`);
a value of the wrong type fails the same way. Nested dataclasses are filled recursively.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from .errors import ConfigError, did_you_mean

T = TypeVar("T")


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """`cls(**data)` with every key and type checked; `where` is the dotted path for messages."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{where.rstrip('.') or cls.__name__} must be a mapping of keys, not {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"unknown key {where}{key}" + did_you_mean(str(key), fields, where))
        values[key] = _coerce(hints[key], value, f"{where}{key}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"{where.rstrip('.') or cls.__name__}: {error}") from None


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def _coerce(hint, value, name: str):
    """value as `hint` (a dataclass, a builtin, a union, list[...], dict[...], Any)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(option, value, name)
            except ConfigError:
                continue
        raise ConfigError(f"{name} must be {_describe(hint)}, not {value!r}")
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, name + ".")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list of {_describe(args[0])}, not {value!r}")
        return [_coerce(args[0], v, f"{name}[{i}]") for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be a mapping, not {value!r}")
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    else:
        return value
    raise ConfigError(f"{name} must be {_describe(hint)}, not {value!r}")


def _describe(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is list:
        return f"a list of {_describe(args[0])}"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))
