"""A test kit: capture the packets your own pipelines produce, and assert on them.

As a pytest plugin (installed with aitel) it provides the ``aitel_packets``
fixture::

    def test_answer_is_traced(aitel_packets):
        chain.invoke("hi", config={"callbacks": [AITelHandler()]})
        packet = aitel_packets.one()
        assert packet["status"] == "SUCCESS"

Outside pytest use :func:`capture_packets` as a context manager. Captured
packets went through the real pipeline (processors, encoding) and are
validated against the schema.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from . import tracer as _tracer_module
from .config import Settings
from .exporters.memory import InMemoryExporter
from .schema import ContextPacket
from .tracer import Tracer


class PacketCapture:
    """Packets exported by a tracer, decoded from the bytes that were written."""

    def __init__(self, tracer: Tracer, exporter: InMemoryExporter, validate: bool = True) -> None:
        self.tracer = tracer
        self.exporter = exporter
        self.validate = validate

    def packets(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Flush, then every packet so far (validated against the schema)."""
        if not self.tracer.flush(timeout):
            raise AssertionError(f"aitel did not flush within {timeout}s: {self.tracer.stats()}")
        packets = self.exporter.packets
        if self.validate:
            for packet in packets:
                ContextPacket.model_validate(packet)
        return packets

    def one(self, timeout: float = 10.0) -> dict[str, Any]:
        """The only packet; fails unless exactly one was exported."""
        packets = self.packets(timeout)
        if len(packets) != 1:
            raise AssertionError(f"expected exactly one packet, got {len(packets)}")
        return packets[0]

    def clear(self) -> None:
        self.tracer.flush()
        self.exporter.clear()

    @staticmethod
    def steps(packet: dict[str, Any], kind: str | None = None) -> list[dict[str, Any]]:
        """The packet's steps, optionally of one kind."""
        return [s for s in packet["steps"] if kind is None or s["kind"] == kind]


@contextlib.contextmanager
def capture_packets(
    *, redaction: Sequence[str] = ("secrets",), validate: bool = True, **settings: Any
) -> Iterator[PacketCapture]:
    """Route the process-wide tracer to memory for the duration of the block."""
    exporter = InMemoryExporter()
    tracer = Tracer(
        exporter,
        settings=Settings.from_env(exporter="memory", redaction=tuple(redaction), **settings),
    )
    with _tracer_module._lock:
        previous, _tracer_module._global = _tracer_module._global, tracer
    try:
        yield PacketCapture(tracer, exporter, validate)
    finally:
        with _tracer_module._lock:
            _tracer_module._global = previous
        tracer.shutdown(timeout=5.0)


try:
    import pytest
except ImportError:  # pragma: no cover - the plugin is only loaded by pytest
    pass
else:

    @pytest.fixture
    def aitel_packets() -> Iterator[PacketCapture]:
        """Capture every packet the code under test exports through the process-wide tracer."""
        with capture_packets() as capture:
            yield capture
