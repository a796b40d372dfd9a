"""Records as JSON: one writer (`dump`) and one reader (`load`) that checks every field's type.

A reader refuses a record from a newer spotkit with a clear error rather than misreading it, and reads
one without ``v`` (written before records were versioned) as version 1. A field that is a list of
record parts (``Heartbeat.leases``) is read back as those parts, each field checked the same way.
"""

from __future__ import annotations

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
    label = f"{kind.__name__}{' at ' + where if where else ''}"
    try:
        raw = json.loads(data) if isinstance(data, (bytes, str)) else data
    except ValueError as err:  # UnicodeDecodeError included
        raise BadRecord(f"{label} is not JSON ({err})") from None
    if not isinstance(raw, dict):
        raise BadRecord(f"{label} is not a JSON object")
    version = raw.get("v", 1)
    known = _field_default(kind, "v")
    if not isinstance(version, int) or version > known:
        raise BadRecord(f"{label} has version {version!r}, this spotkit reads up to {known}; upgrade spotkit")
    return _fields(kind, raw, label)


def _fields(kind: type[R], raw: dict[str, Any], label: str) -> R:
    """*kind* from the checked fields of *raw* (a record, or a record's part such as a `HeldLease`)."""
    hints = typing.get_type_hints(kind)
    values: dict[str, Any] = {}
    for f in fields(kind):  # type: ignore[arg-type]
        if f.name not in raw:
            if f.default is MISSING and f.default_factory is MISSING:
                raise BadRecord(f"{label} lacks the field {f.name!r}")
            continue
        values[f.name] = _checked(raw[f.name], hints[f.name], f"{label}: field {f.name!r}")
    return kind(**values)


def _field_default(kind: type, name: str) -> int:
    return int(next(f.default for f in fields(kind) if f.name == name))  # type: ignore[arg-type]


def _checked(value: Any, hint: Any, label: str) -> Any:
    """The value if it has the declared type (an int where a float is declared becomes a float)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        base = typing.get_origin(option) or option
        if option is type(None) and value is None:
            return None
        if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if base is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        part = _part_kind(option) if base is list else None
        if part is not None and isinstance(value, list):  # a list of record parts: each one checked
            return [_part(part, element, f"{label}[{n}]") for n, element in enumerate(value)]
        if base in (str, bool, list, dict) and isinstance(value, base):
            return value
    raise BadRecord(f"{label} is {value!r}, expected {hint}")


def _part_kind(hint: Any) -> type | None:
    """The record part a ``list[Part]`` field holds (a dataclass), or None for a list of plain values."""
    args = typing.get_args(hint)
    return args[0] if len(args) == 1 and is_dataclass(args[0]) and isinstance(args[0], type) else None


def _part(kind: type[R], value: Any, label: str) -> R:
    if not isinstance(value, dict):
        raise BadRecord(f"{label} is {value!r}, expected a JSON object ({kind.__name__})")
    return _fields(kind, value, label)


def load_lines(kind: type[R], data: bytes, where: str = "") -> list[R]:
    """A JSON-lines object (usage): one record per non-empty line."""
    try:
        text = data.decode()
    except UnicodeDecodeError as err:
        raise BadRecord(f"{kind.__name__} lines at {where} are not UTF-8 ({err})") from None
    return [load(kind, line, f"{where} line {n}") for n, line in enumerate(text.splitlines(), 1) if line.strip()]
