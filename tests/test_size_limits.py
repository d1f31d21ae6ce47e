"""Size limits: long values are cut with a marker, in the pipeline and on their own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from aitel import (
    EncodedPacket,
    ExportPipeline,
    ExportResult,
    InMemoryExporter,
    PipelineConfig,
    SizeLimitProcessor,
)
from aitel.jsonable import dumps


class BytesExporter:
    """Keeps the exact bytes it was given, and whether the packet dicts came along."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.dicts: list[dict[str, Any] | None] = []

    def export(self, batch: Sequence[EncodedPacket]) -> ExportResult:
        self.data.extend(p.data for p in batch)
        self.dicts.extend(p.packet for p in batch)
        return ExportResult.ok(len(batch))

    def force_flush(self, timeout_s: float) -> bool:
        return True

    def shutdown(self, timeout_s: float) -> None:
        return None


class Stamp:
    """A processor that adds a field (to run after the size limit)."""

    def process(self, packet: dict[str, Any]) -> dict[str, Any]:
        packet["stamped"] = True
        return packet


def packet(i: int, text: str) -> dict[str, Any]:
    return {"packet_id": f"p{i}", "payload": {"input": "q", "output": text}}


def run(processors: list[Any], packets: list[dict[str, Any]]) -> BytesExporter:
    exporter = BytesExporter()
    pipeline = ExportPipeline(exporter, processors=processors, config=PipelineConfig())
    for p in packets:
        assert pipeline.submit(p)
    assert pipeline.flush(10)
    stats = pipeline.stats()
    pipeline.shutdown(5)
    assert stats.exported == len(packets) and stats.dropped == 0
    return exporter


def test_a_packet_that_fits_is_exported_unchanged() -> None:
    original = packet(0, "short answer")
    expected = dumps(original)
    exporter = run([SizeLimitProcessor(max_value_chars=100, max_packet_bytes=1_000)], [original])
    assert exporter.data == [expected]


def test_long_values_are_cut_with_a_marker_and_counted() -> None:
    exporter = run(
        [SizeLimitProcessor(max_value_chars=100, max_packet_bytes=10_000)], [packet(0, "x" * 5_000)]
    )
    exported = orjson.loads(exporter.data[0])
    output = exported["payload"]["output"]
    assert len(output) < 200 and output.startswith("x" * 50) and "truncated" in output
    assert exported["processing"]["truncated_values"] == 1
    assert exported["packet_id"] == "p0"


def test_a_packet_over_the_byte_limit_shrinks_until_it_fits() -> None:
    big = {"packet_id": "p1", "steps": [{"input": "y" * 3_000, "output": "z" * 3_000}] * 8}
    exporter = run([SizeLimitProcessor(max_value_chars=32_768, max_packet_bytes=8_000)], [big])
    assert len(exporter.data[0]) <= 8_000
    exported = orjson.loads(exporter.data[0])
    assert exported["processing"]["truncated_values"] >= 16


def test_the_limit_also_holds_when_it_is_not_the_last_processor() -> None:
    limit = SizeLimitProcessor(max_value_chars=100, max_packet_bytes=10_000)
    exporter = run([limit, Stamp()], [packet(0, "x" * 5_000)])
    exported = orjson.loads(exporter.data[0])
    assert exported["stamped"] is True
    assert len(exported["payload"]["output"]) < 200


def test_a_subclass_with_its_own_process_runs_as_written() -> None:
    class Marking(SizeLimitProcessor):
        def process(self, packet: dict[str, Any]) -> dict[str, Any] | None:
            packet["marked"] = True
            return super().process(packet)

    exporter = run([Marking(max_value_chars=100, max_packet_bytes=10_000)], [packet(0, "x" * 500)])
    exported = orjson.loads(exporter.data[0])
    assert exported["marked"] is True and len(exported["payload"]["output"]) < 200


def test_encode_matches_process_then_dumps() -> None:
    limit = SizeLimitProcessor(max_value_chars=100, max_packet_bytes=10_000)
    for text in ("fits", "x" * 5_000):
        by_process = limit.process(packet(0, text))
        assert by_process is not None
        assert limit.encode(packet(0, text)) == dumps(by_process)


def test_exporters_get_packet_dicts_only_when_they_ask() -> None:
    plain = run([], [packet(0, "a")])
    assert plain.dicts == [None]  # let go once encoded: a backlog holds bytes only

    class Mapping(BytesExporter):
        wants_packet_dicts = True

    exporter = Mapping()
    pipeline = ExportPipeline(exporter, config=PipelineConfig())
    pipeline.submit(packet(1, "b"))
    assert pipeline.flush(10)
    pipeline.shutdown(5)
    assert exporter.dicts == [packet(1, "b")]


def test_in_memory_exporter_still_sees_every_packet() -> None:
    memory = InMemoryExporter()
    pipeline = ExportPipeline(memory, processors=[SizeLimitProcessor()])
    pipeline.submit(packet(2, "c"))
    assert pipeline.flush(10)
    pipeline.shutdown(5)
    assert memory.packets == [packet(2, "c")]
