"""What a processor is: a step that sees every packet before any exporter does.

Processors run on the pipeline's worker thread, in order. ``process`` takes a
packet dict and returns it (changed in place or replaced) or ``None`` to drop
it (counted by the pipeline as sampled out). A processor that raises is
treated as failing closed: the pipeline drops the packet and counts it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

Packet = dict[str, Any]


@runtime_checkable
class Processor(Protocol):
    def process(self, packet: Packet) -> Packet | None: ...


def processing_notes(packet: Packet) -> dict[str, Any]:
    """The packet's ``processing`` section, created on first use."""
    notes = packet.get("processing")
    if not isinstance(notes, dict):
        notes = {"redactions": {}, "truncated_values": 0, "sample_rate": None}
        packet["processing"] = notes
    return notes
