"""Records as JSON: one writer (`dump`) and one reader (`load`) that checks every field's type.

A reader refuses a record from a newer spotkit with a clear error rather than misreading it, and reads
one without ``v`` (written before records were versioned) as version 1. A field that is a list of
record parts (``Heartbeat.leases``) is read back as those parts, each field checked the same way.
"""

from __future__ import annotations

import functools
import json
import types
import typing
from dataclasses import MISSING, asdict, fields, is_dataclass
from typing import Any, TypeVar

from runtime.errors import SpotkitError


class BadRecord(SpotkitError):
    """A record in the store cannot be read: not JSON, a field missing or of the wrong type, or newer."""


R = TypeVar("R")


def dump(record: Any) -> bytes:
    """One record as JSON bytes (sorted keys, so the same record gives the same bytes)."""
    return json.dumps(asdict(record), sort_keys=True).encode()


def load(kind: type[R], data: bytes | str | dict[str, Any], where: str = "") -> R:
    """Parse one record of *kind*; `BadRecord` names *where* it came from and what is wrong."""
    return _load(kind, data, where, 0)


def _load(kind: type[R], data: bytes | str | dict[str, Any], where: str, line: int) -> R:
    try:
        raw = json.loads(data) if isinstance(data, (bytes, str)) else data
    except ValueError as err:  # UnicodeDecodeError included
        raise BadRecord(f"{_label(kind, where, line)} is not JSON ({err})") from None
    if not isinstance(raw, dict):
        raise BadRecord(f"{_label(kind, where, line)} is not a JSON object")
    version = raw.get("v", 1)
    known = _field_default(typing.cast(type, kind), "v")
    if not isinstance(version, int) or version > known:
        raise BadRecord(f"{_label(kind, where, line)} has version {version!r}, this spotkit reads up to {known}; "
                        "upgrade spotkit")
    try:
        return _fields(kind, raw)
    except _FieldError as err:
        raise BadRecord(f"{_label(kind, where, line)}{err}") from None


def _label(kind: type, where: str, line: int) -> str:
    """Where a bad record came from; built only for an error, since this reads millions of records."""
    place = f"{where} line {line}" if line else where
    return f"{kind.__name__}{' at ' + place if place else ''}"


class _FieldError(Exception):
    """A field of a record (or of one of its parts) is missing or of the wrong type: the message
    continues the record's label."""


# (option, its base type, the record part a list of it holds) for each type a union admits.
_Option = tuple[Any, Any, type | None]


@functools.cache
def _schema(kind: type) -> tuple[tuple[str, Any, tuple[_Option, ...], bool, type | None], ...]:
    """Each field of *kind*: name, type hint, the options it admits, whether it is required, and its
    plain type (str, int, float or bool) when it admits only that — resolved once per kind, since a
    month's report reads millions of usage records."""
    hints = typing.get_type_hints(kind)
    schema = []
    for f in fields(kind):
        hint = hints[f.name]
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        resolved = tuple((o, typing.get_origin(o) or o, _part_kind(o) if (typing.get_origin(o) or o) is list else None)
                         for o in options)
        plain = hint if hint in (str, int, float, bool) else None
        schema.append((f.name, hint, resolved, f.default is MISSING and f.default_factory is MISSING, plain))
    return tuple(schema)


def _fields(kind: type[R], raw: dict[str, Any]) -> R:
    """*kind* from the checked fields of *raw* (a record, or a record's part such as a `HeldLease`)."""
    values: dict[str, Any] = {}
    for name, hint, options, required, plain in _schema(typing.cast(type, kind)):
        if name not in raw:
            if required:
                raise _FieldError(f" lacks the field {name!r}")
            continue
        value = raw[name]
        if plain is not None and type(value) is plain:  # the common case, checked exactly and fast
            values[name] = value
        else:
            values[name] = _checked(value, hint, options, name)
    return kind(**values)


@functools.cache
def _field_default(kind: type, name: str) -> int:
    return int(next(f.default for f in fields(kind) if f.name == name))  # type: ignore[arg-type]


def _checked(value: Any, hint: Any, options: tuple[_Option, ...], name: str) -> Any:
    """The value if it has the declared type (an int where a float is declared becomes a float)."""
    for option, base, part in options:
        if option is type(None) and value is None:
            return None
        if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if base is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if part is not None and isinstance(value, list):  # a list of record parts: each one checked
            return [_part(part, element, name, n) for n, element in enumerate(value)]
        if base in (str, bool, list, dict) and isinstance(value, base):
            return value
    raise _FieldError(f": field {name!r} is {value!r}, expected {hint}")


def _part_kind(hint: Any) -> type | None:
    """The record part a ``list[Part]`` field holds (a dataclass), or None for a list of plain values."""
    args = typing.get_args(hint)
    return args[0] if len(args) == 1 and is_dataclass(args[0]) and isinstance(args[0], type) else None


def _part(kind: type[R], value: Any, name: str, n: int) -> R:
    if not isinstance(value, dict):
        raise _FieldError(f": field {name!r}[{n}] is {value!r}, expected a JSON object ({kind.__name__})")
    try:
        return _fields(kind, value)
    except _FieldError as err:
        raise _FieldError(f": field {name!r}[{n}]{err}") from None


def load_lines(kind: type[R], data: bytes, where: str = "") -> list[R]:
    """A JSON-lines object (usage): one record per non-empty line."""
    try:
        text = data.decode()
    except UnicodeDecodeError as err:
        raise BadRecord(f"{kind.__name__} lines at {where} are not UTF-8 ({err})") from None
    return [_load(kind, line, where, n) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
