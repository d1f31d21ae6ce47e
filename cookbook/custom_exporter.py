"""Your own exporter: one CSV row per request (id, status, latency, cost, model).

An exporter only says *where*: the pipeline hands it a batch of encoded
packets on its worker thread (after redaction) and takes care of when,
batching and the spool. The contract:

* ``export(batch)`` returns an ``ExportResult`` and never raises: ``ok(n)``,
  ``transient(batch, error)`` (spooled for a later replay if there is a
  spool, else dropped and counted), or ``refused(n, error)`` (counted, never
  retried);
* ``force_flush(timeout_s)`` and ``shutdown(timeout_s)``;
* ``wants_packet_dicts = True`` keeps each packet's dict next to its bytes
  (otherwise it is let go once encoded); after a spool round trip only the
  bytes are left, so decode them when ``packet`` is None.

Run: python cookbook/custom_exporter.py   (offline; writes ./requests.csv)
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Sequence
from pathlib import Path

import orjson
from langchain_aitel import AITelHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from aitel import EncodedPacket, ExportResult, Settings, Tracer

COLUMNS = ("request_id", "status", "latency_ms", "cost_usd", "model_name", "ab_variant")


class CsvExporter:
    """Appends one summary row per packet to a CSV file."""

    wants_packet_dicts = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def export(self, batch: Sequence[EncodedPacket]) -> ExportResult:
        try:
            rows = [
                self._row(p.packet if p.packet is not None else orjson.loads(p.data)) for p in batch
            ]
            with self._lock, self.path.open("a", newline="") as f:
                writer = csv.writer(f)
                if f.tell() == 0:
                    writer.writerow(COLUMNS)
                writer.writerows(rows)
        except OSError as exc:  # disk full, permissions: worth another try later
            return ExportResult.transient(batch, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a packet it cannot read: retrying will not help
            return ExportResult.refused(len(batch), f"{type(exc).__name__}: {exc}")
        return ExportResult.ok(len(batch))

    @staticmethod
    def _row(packet: dict) -> list[object]:
        meta = packet.get("pipeline_metadata") or {}
        perf = packet.get("performance") or {}
        return [
            packet["request_id"],
            packet["status"],
            perf.get("latency_ms"),
            perf.get("cost_usd"),
            meta.get("model_name"),
            meta.get("ab_variant"),
        ]

    def force_flush(self, timeout_s: float) -> bool:
        return True  # every export call wrote and closed the file

    def shutdown(self, timeout_s: float) -> None:
        return None


def main() -> None:
    exporter = CsvExporter("requests.csv")
    tracer = Tracer(
        exporter, settings=Settings()
    )  # default processors: secrets redaction, size limits
    model = GenericFakeChatModel(
        messages=iter(
            AIMessage(
                f"Answer {i}.",
                usage_metadata={"input_tokens": 12, "output_tokens": 3, "total_tokens": 15},
                response_metadata={"model_name": "gpt-4o-mini-2024-07-18"},
            )
            for i in range(3)
        )
    )
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | model | StrOutputParser()
    for i, variant in enumerate(("A", "B", "A")):
        handler = AITelHandler(tracer=tracer, ab_variant=variant)
        chain.invoke({"q": f"question {i}"}, config={"callbacks": [handler]})
    tracer.flush()
    stats = tracer.stats()
    tracer.shutdown()
    rows = list(csv.DictReader(exporter.path.open()))
    assert stats.exported == len(rows) == 3, (stats, rows)
    print(f"{stats.exported} packets -> {exporter.path}")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
