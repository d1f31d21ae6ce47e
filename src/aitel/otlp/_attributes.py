"""Collect span attributes (OTel types, visible size limits) and read packet values leniently."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from aitel.jsonable import dumps, safe_str, truncate_text

from .model import Attributes, AttributeValue

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

OMITTED_ITEMS = "aitel.otlp.omitted_items"
"""Per span: how many list items (messages, documents, ...) were left out."""
TRUNCATED_VALUES = "aitel.otlp.truncated_values"
"""Per span: how many attribute values were shortened or lists cut."""


def to_json(value: Any) -> str:
    """Compact JSON text for any jsonable value (never raises)."""
    return dumps(value).decode("utf-8")


class AttributeSet:
    """A span's attributes under construction.

    ``None`` values are skipped (unknown is not zero). Strings longer than
    ``max_value_chars`` are cut with a ``…[truncated N chars]`` marker;
    dicts and mixed lists become JSON text (then cut the same way). Every
    cut is counted in :attr:`truncated`.
    """

    __slots__ = ("attributes", "max_items", "max_value_chars", "omitted", "truncated")

    def __init__(self, max_value_chars: int, max_items: int) -> None:
        self.attributes: Attributes = {}
        self.max_value_chars = max_value_chars
        self.max_items = max_items
        self.truncated = 0
        self.omitted = 0

    def __contains__(self, key: str) -> bool:
        return key in self.attributes

    def text(self, value: str) -> str:
        if len(value) > self.max_value_chars:
            self.truncated += 1
            return truncate_text(value, self.max_value_chars)
        return value

    def put(self, key: str, value: Any) -> None:
        """Set ``key`` to ``value`` converted to an attribute value (``None`` skips)."""
        converted = self._convert(value)
        if converted is not None:
            self.attributes[key] = converted

    def put_json(self, key: str, value: Any) -> None:
        """Set ``key`` to ``value`` as JSON text; strings are kept as they are."""
        if value is None:
            return
        self.attributes[key] = self.text(value if isinstance(value, str) else to_json(value))

    def put_default(self, key: str, value: Any) -> None:
        """Like :meth:`put`, unless ``key`` is already set."""
        if key not in self.attributes:
            self.put(key, value)

    def items(self, values: Sequence[Any] | None) -> Iterator[tuple[int, Any]]:
        """``enumerate(values)`` up to ``max_items``; the rest are counted as omitted."""
        if not values:
            return
        for index, value in enumerate(values):
            if index >= self.max_items:
                self.omitted += len(values) - index
                self.truncated += 1
                return
            yield index, value

    def finish(self) -> Attributes:
        """The attributes, with the span's own truncation counters when anything was cut."""
        if self.omitted:
            self.attributes[OMITTED_ITEMS] = self.omitted
        if self.truncated:
            self.attributes[TRUNCATED_VALUES] = self.truncated
        return self.attributes

    def _convert(self, value: Any) -> AttributeValue | None:
        if value is None:
            return None
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value if _INT64_MIN <= value <= _INT64_MAX else str(value)
        if isinstance(value, float):
            return value
        if isinstance(value, Mapping):
            return self.text(to_json(value))
        if isinstance(value, list | tuple):
            return self._convert_list(value)
        return self.text(safe_str(value))

    def _convert_list(self, values: Sequence[Any]) -> AttributeValue:
        if all(isinstance(v, str) for v in values):
            kept = list(values[: self.max_items])
            if len(values) > len(kept):
                self.omitted += len(values) - len(kept)
                self.truncated += 1
            return [self.text(v) for v in kept]
        if all(isinstance(v, bool) for v in values):
            return list(values)
        if all(
            isinstance(v, int) and not isinstance(v, bool) and _INT64_MIN <= v <= _INT64_MAX
            for v in values
        ):
            return list(values)
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return [float(v) for v in values]
        return self.text(to_json(list(values)))


def put_io(attrs: AttributeSet, direction: str, value: Any, *, keep: bool = False) -> None:
    """``input.value``/``input.mime_type`` (or output); ``keep`` leaves values set earlier."""
    if value is None or (keep and f"{direction}.value" in attrs):
        return
    if isinstance(value, str):
        attrs.put(f"{direction}.value", value)
        attrs.put(f"{direction}.mime_type", "text/plain")
    else:
        attrs.put_json(f"{direction}.value", value)
        attrs.put(f"{direction}.mime_type", "application/json")


# -- lenient readers of packet values (wrong types read as absent) -------------------


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else list(value) if isinstance(value, tuple) else []


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else to_json(value)


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def as_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None
