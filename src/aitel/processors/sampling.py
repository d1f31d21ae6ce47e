"""Head sampling with a tail rule: keep a fraction, but always keep what matters.

The decision is made once per request on the finished packet, so a packet is
either exported whole or not at all. It is deterministic in the trace id, so
services sharing a trace id keep or drop the same requests.
"""

from __future__ import annotations

from .base import Packet, processing_notes


class SamplingProcessor:
    """Keep ``rate`` of requests, plus every failure and every request slower than a threshold."""

    def __init__(
        self,
        rate: float = 1.0,
        *,
        keep_failures: bool = True,
        keep_slower_than_ms: float | None = None,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"sampling rate must be between 0 and 1, got {rate}")
        self.rate = rate
        self.keep_failures = keep_failures
        self.keep_slower_than_ms = keep_slower_than_ms

    def keeps(self, packet: Packet) -> bool:
        if self.rate >= 1.0:
            return True
        if self.keep_failures and packet.get("status") == "FAILURE":
            return True
        if self.keep_slower_than_ms is not None:
            latency = (packet.get("performance") or {}).get("latency_ms")
            if isinstance(latency, int | float) and latency >= self.keep_slower_than_ms:
                return True
        trace_id = str(packet.get("trace_id") or "")
        try:
            bucket = int(trace_id[-8:], 16) / 0xFFFF_FFFF
        except ValueError:
            bucket = 0.0
        return bucket < self.rate

    def process(self, packet: Packet) -> Packet | None:
        if not self.keeps(packet):
            return None
        if self.rate < 1.0:
            processing_notes(packet)["sample_rate"] = self.rate
        return packet
