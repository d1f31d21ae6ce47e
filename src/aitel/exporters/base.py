"""What an exporter is: it owns *where* packets go, never *when*.

The pipeline hands an exporter one batch at a time from its background
worker. ``export`` encodes and sends that batch and returns an
:class:`ExportResult`; it must not raise. Retrying, spooling and timing are
the pipeline's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class EncodedPacket:
    """A processed packet and its JSON encoding (one line, no newline)."""

    packet_id: str
    data: bytes
    packet: dict[str, Any] | None = None
    """The dict the bytes were made from, for exporters that ask for it (see
    :func:`wants_packet_dicts`); None after a spool round trip."""


@dataclass(frozen=True, slots=True)
class ExportResult:
    """The outcome of exporting one batch.

    ``retry`` holds the packets that may succeed later (transient failure);
    ``rejected`` counts packets the destination refused for good.
    """

    exported: int
    retry: Sequence[EncodedPacket] = ()
    rejected: int = 0
    error: str | None = None
    retry_after_s: float | None = None
    rejections: Sequence[str] = field(default_factory=tuple)

    @classmethod
    def ok(cls, count: int) -> ExportResult:
        return cls(exported=count)

    @classmethod
    def transient(
        cls, batch: Sequence[EncodedPacket], error: str, retry_after_s: float | None = None
    ) -> ExportResult:
        return cls(exported=0, retry=tuple(batch), error=error, retry_after_s=retry_after_s)

    @classmethod
    def refused(cls, count: int, error: str, reasons: Sequence[str] = ()) -> ExportResult:
        return cls(exported=0, rejected=count, error=error, rejections=tuple(reasons))

    @property
    def success(self) -> bool:
        return not self.retry and not self.rejected


@runtime_checkable
class Exporter(Protocol):
    """Sends batches somewhere. Implementations never raise from these methods."""

    def export(self, batch: Sequence[EncodedPacket]) -> ExportResult: ...

    def force_flush(self, timeout_s: float) -> bool: ...

    def shutdown(self, timeout_s: float) -> None: ...


def wants_packet_dicts(exporter: object) -> bool:
    """Whether ``exporter`` reads :attr:`EncodedPacket.packet` (the pipeline keeps it then).

    An exporter that maps packets to another format (OTLP) sets
    ``wants_packet_dicts = True`` to skip decoding the bytes again; for the
    others the dict is let go as soon as it is encoded, so a backlog being
    exported holds bytes, not object trees.
    """
    return bool(getattr(exporter, "wants_packet_dicts", False))
