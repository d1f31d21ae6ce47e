"""Size limits: long values are cut with a visible marker, never dropped silently."""

from __future__ import annotations

from typing import Any

from ..jsonable import dumps, truncate_text
from .base import Packet, processing_notes

_STRUCTURAL = frozenset(
    {"packet_id", "request_id", "trace_id", "step_id", "parent_id", "schema_version", "timestamp"}
)


class SizeLimitProcessor:
    """Cut strings over ``max_value_chars``; shrink until the packet fits ``max_packet_bytes``."""

    def __init__(self, max_value_chars: int = 32_768, max_packet_bytes: int = 1_048_576) -> None:
        self.max_value_chars = max_value_chars
        self.max_packet_bytes = max_packet_bytes

    def process(self, packet: Packet) -> Packet | None:
        self._fit(packet, len(dumps(packet)))
        return packet

    def encode(self, packet: Packet) -> bytes:
        """The packet's final JSON, cut to fit: the check reuses the encoding.

        The export pipeline calls this instead of :meth:`process` when the
        size limit is its last processor, so a packet that fits is encoded once.
        """
        data = dumps(packet)
        if self._fit(packet, len(data)):
            data = dumps(packet)
        return data

    def _fit(self, packet: Packet, size: int) -> bool:
        """Cut ``packet`` (encoded in ``size`` bytes) to the limits; True if anything was cut."""
        if size <= self.max_packet_bytes and size <= self.max_value_chars:
            return False  # nothing in it can be too long
        limit = self.max_value_chars
        cut = _truncate(packet, limit)
        if cut:
            size = len(dumps(packet))
        while size > self.max_packet_bytes and limit > 64:
            limit //= 4
            more = _truncate(packet, limit)
            if more:
                cut += more
                size = len(dumps(packet))
        if cut:
            notes = processing_notes(packet)
            notes["truncated_values"] = int(notes.get("truncated_values", 0)) + cut
        return bool(cut)


def _truncate(root: Any, limit: int) -> int:
    """Truncate every long string in place (iteratively: any depth); returns how many."""
    count = 0
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str):
                    if len(value) > limit and key not in _STRUCTURAL:
                        node[key] = truncate_text(value, limit)
                        count += 1
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                if isinstance(value, str):
                    if len(value) > limit:
                        node[index] = truncate_text(value, limit)
                        count += 1
                elif isinstance(value, dict | list):
                    stack.append(value)
    return count
