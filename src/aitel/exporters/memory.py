"""Keep packets in memory: for tests, notebooks and the test kit."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import orjson

from .base import EncodedPacket, ExportResult


class InMemoryExporter:
    """Collects exported packets (decoded from the exact bytes that were encoded)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._packets: list[dict[str, Any]] = []
        self._raw: list[bytes] = []
        self.shut_down = False

    @property
    def packets(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._packets)

    @property
    def raw(self) -> list[bytes]:
        """The encoded lines, as a file exporter would have written them."""
        with self._lock:
            return list(self._raw)

    def clear(self) -> None:
        with self._lock:
            self._packets.clear()
            self._raw.clear()

    def export(self, batch: Sequence[EncodedPacket]) -> ExportResult:
        decoded = [orjson.loads(p.data) for p in batch]
        with self._lock:
            self._packets.extend(decoded)
            self._raw.extend(p.data for p in batch)
        return ExportResult.ok(len(batch))

    def force_flush(self, timeout_s: float) -> bool:
        return True

    def shutdown(self, timeout_s: float) -> None:
        self.shut_down = True
