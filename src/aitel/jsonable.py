"""Turn any Python value into strict-JSON-safe data, without ever raising.

Telemetry sees whatever the application passes around: cycles, 5,000-deep
nesting, objects whose ``__repr__`` raises, tuple keys, huge strings, bytes,
generators (which must not be consumed), secrets wrapped in ``SecretStr``.
:func:`to_jsonable` handles them all with bounded work and marks every
place where it had to cut something. Integrations teach it their own types
with :func:`register_encoder`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
import re
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any

import orjson

Encoder = Callable[[Any], Any]
"""Maps an object to simpler data (which is converted in turn)."""

_encoders: dict[type, Encoder] = {}
_resolved: dict[type, Encoder | None] = {}

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on the work and output of one conversion."""

    max_depth: int = 64
    max_string_chars: int = 32_768
    max_items: int = 1_000


DEFAULT_LIMITS = Limits()


def register_encoder(cls: type, encoder: Encoder) -> None:
    """Teach :func:`to_jsonable` a type: ``encoder(obj)`` returns simpler data."""
    _encoders[cls] = encoder
    _resolved.clear()


def _lookup(cls: type) -> Encoder | None:
    try:
        return _resolved[cls]
    except KeyError:
        pass
    found: Encoder | None = None
    for base in cls.__mro__:
        if base in _encoders:
            found = _encoders[base]
            break
    _resolved[cls] = found
    return found


def truncate_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with a visible marker."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[truncated {len(text) - limit} chars]"


def safe_repr(obj: object) -> str:
    """``repr(obj)`` without memory addresses; a marker if repr raises."""
    try:
        text = repr(obj)
    except Exception:
        return f"<unrepresentable {type(obj).__name__}>"
    return _ADDRESS.sub("", text)


def safe_str(obj: object) -> str:
    try:
        return str(obj)
    except Exception:
        return safe_repr(obj)


def to_jsonable(value: Any, limits: Limits = DEFAULT_LIMITS) -> Any:
    """A JSON-safe copy of ``value``; never raises."""
    return Converter(limits)(value)


def dumps(value: Any) -> bytes:
    """Strict JSON bytes (valid UTF-8, no NaN) for already-jsonable data."""
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return orjson.dumps(_sanitize(value))


def _sanitize(value: Any) -> Any:
    """Repair what orjson refuses: lone surrogates, >64-bit ints, odd keys."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_sanitize(str(k)): _sanitize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitize(v) for v in value]
    return _sanitize(safe_str(value))


class Converter:
    """:func:`to_jsonable` for many values in a row; ``cut`` counts every cut made.

    One converter serves all the values of a packet. Not thread-safe.
    """

    __slots__ = ("cut", "limits", "seen")

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self.seen: set[int] = set()
        self.cut = 0

    def __call__(self, value: Any) -> Any:
        """A JSON-safe copy of ``value``; never raises."""
        cls = type(value)
        if (cls is str and len(value) <= self.limits.max_string_chars) or (
            value is None or cls is int or cls is bool
        ):
            return value
        try:
            return self.convert(value, 0)
        except Exception:  # the last line of defence: a marker, never an exception
            self.seen.clear()
            return f"<unserializable {type(value).__name__}>"

    def _text(self, value: str) -> str:
        if len(value) > self.limits.max_string_chars:
            self.cut += 1
            return truncate_text(value, self.limits.max_string_chars)
        return value

    def convert(self, value: Any, depth: int) -> Any:
        cls = type(value)
        if cls is str:
            return self._text(value)
        if value is None or cls is bool or cls is int:
            return value
        if cls is float:
            return value if math.isfinite(value) else None
        if depth >= self.limits.max_depth:
            self.cut += 1
            return f"<max depth {self.limits.max_depth} reached: {cls.__name__}>"
        if cls is dict:
            return self._plain_dict(value, depth)
        if cls is list or cls is tuple:
            return self._plain_list(value, depth)
        encoder = _lookup(cls)
        if encoder is not None:
            return self._nested(value, depth, lambda: encoder(value))
        if isinstance(value, str):
            return self._text(str.__str__(value))
        if isinstance(value, bool | int):
            return int(value) if not isinstance(value, bool) else bool(value)
        if isinstance(value, float):
            return float(value) if math.isfinite(value) else None
        if isinstance(value, Mapping):
            return self._nested(value, depth, lambda: self._mapping(value, depth))
        if isinstance(value, list | tuple | set | frozenset):
            return self._nested(value, depth, lambda: self._sequence(value, depth))
        return self._other(value, depth)

    def _nested(self, value: Any, depth: int, build: Callable[[], Any]) -> Any:
        key = id(value)
        if key in self.seen:
            return f"<cycle: {type(value).__name__}>"
        self.seen.add(key)
        try:
            built = build()
            if built is value:
                return built
            if isinstance(value, Mapping | list | tuple | set | frozenset):
                return built
            return self.convert(built, depth + 1)
        except Exception:
            return f"<unserializable {type(value).__name__}>"
        finally:
            self.seen.discard(key)

    def _plain_dict(self, value: dict[Any, Any], depth: int) -> Any:
        """The common case, without the generic machinery: a plain dict."""
        if len(value) > self.limits.max_items:
            return self._nested(value, depth, lambda: self._mapping(value, depth))
        key = id(value)
        seen = self.seen
        if key in seen:
            return "<cycle: dict>"
        seen.add(key)
        try:
            out: dict[str, Any] = {}
            convert = self.convert
            max_chars = self.limits.max_string_chars
            for raw_name, item in value.items():
                name = raw_name if type(raw_name) is str else safe_str(raw_name)
                if len(name) > 1_000:
                    name = truncate_text(name, 1_000)
                cls = type(item)  # leaves inline: most values are short strings, None or ints
                if (
                    (cls is str and len(item) <= max_chars)
                    or item is None
                    or cls is int
                    or cls is bool
                ):
                    out[name] = item
                else:
                    out[name] = convert(item, depth + 1)
            return out
        except Exception:
            return "<unserializable dict>"
        finally:
            seen.discard(key)

    def _plain_list(self, value: list[Any] | tuple[Any, ...], depth: int) -> Any:
        """The common case, without the generic machinery: a plain list or tuple."""
        if len(value) > self.limits.max_items:
            return self._nested(value, depth, lambda: self._sequence(value, depth))
        key = id(value)
        seen = self.seen
        if key in seen:
            return f"<cycle: {type(value).__name__}>"
        seen.add(key)
        try:
            convert = self.convert
            return [convert(item, depth + 1) for item in value]
        except Exception:
            return f"<unserializable {type(value).__name__}>"
        finally:
            seen.discard(key)

    def _mapping(self, value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for index, (key, item) in enumerate(value.items()):
            if index >= self.limits.max_items:
                out["…"] = f"[{len(value) - index} more items]"
                self.cut += 1
                break
            name = key if isinstance(key, str) else safe_str(key)
            out[truncate_text(name, 1_000)] = self.convert(item, depth + 1)
        return out

    def _sequence(self, value: Any, depth: int) -> list[Any]:
        items = value if isinstance(value, list | tuple) else list(value)
        limit = self.limits.max_items
        out = [self.convert(item, depth + 1) for item in items[:limit]]
        if len(items) > limit:
            out.append(f"…[{len(items) - limit} more items]")
            self.cut += 1
        return out

    def _other(self, value: Any, depth: int) -> Any:
        if isinstance(value, enum.Enum):
            return self.convert(value.value, depth + 1)
        if isinstance(value, dt.datetime | dt.date | dt.time):
            return value.isoformat()
        if isinstance(value, dt.timedelta):
            return value.total_seconds()
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, Decimal):
            return float(value) if value.is_finite() else None
        if isinstance(value, PurePath):
            return str(value)
        if isinstance(value, bytes | bytearray | memoryview):
            return _bytes(bytes(value), self.limits.max_string_chars)
        if isinstance(value, BaseException):
            return {"type": type(value).__name__, "message": safe_str(value)}
        if isinstance(value, Generator | Iterator):
            return f"<{type(value).__name__}: not consumed>"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
            return self._nested(value, depth, lambda: self._mapping(fields, depth))
        module = type(value).__module__
        if module.startswith("pydantic"):
            # SecretStr / SecretBytes print masked; keep them masked.
            return safe_str(value)
        dump = _pydantic_dump(value)
        if dump is not None:
            return self._nested(value, depth, lambda: dump)
        if module == "numpy" or module.startswith("numpy."):
            return self._numpy(value, depth)
        return truncate_text(safe_repr(value), self.limits.max_string_chars)

    def _numpy(self, value: Any, depth: int) -> Any:
        size = getattr(value, "size", None)
        if isinstance(size, int) and size > self.limits.max_items:
            shape = getattr(value, "shape", "?")
            return f"<ndarray shape={shape} dtype={getattr(value, 'dtype', '?')}>"
        tolist = getattr(value, "tolist", None)
        if callable(tolist):
            return self._nested(value, depth, tolist)
        return safe_repr(value)


def _pydantic_dump(value: Any) -> Any | None:
    """``model_dump()`` of a pydantic v2 model, else None."""
    fields = getattr(type(value), "model_fields", None)
    dump = getattr(value, "model_dump", None)
    if isinstance(fields, dict) and callable(dump):
        try:
            return dump()
        except Exception:
            return None
    return None


def _bytes(data: bytes, limit: int) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(data)} bytes>"
    return truncate_text(text, limit)
