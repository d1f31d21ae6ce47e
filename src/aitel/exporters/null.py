"""Accept and discard: measures aitel's own cost without any I/O."""

from __future__ import annotations

from collections.abc import Sequence

from .base import EncodedPacket, ExportResult


class NullExporter:
    def export(self, batch: Sequence[EncodedPacket]) -> ExportResult:
        return ExportResult.ok(len(batch))

    def force_flush(self, timeout_s: float) -> bool:
        return True

    def shutdown(self, timeout_s: float) -> None:
        return None
