"""Send packets to an aitel collector over HTTP, with a disk spool for outages.

Runs offline: it starts a collector on a background thread (loopback, a free
port, an SQLite file in a temporary directory), traces a few requests through
``HttpExporter`` + ``DiskSpool``, and reads the stored packets back.

In production, run the collector as its own process::

    aitel collect --host 0.0.0.0 --port 4319 --store aitel.db --token "$TOKEN"

and point applications at it::

    AITEL_EXPORTER=http AITEL_ENDPOINT=http://collector:4319/v1/packets \\
    AITEL_TOKEN=... AITEL_SPOOL_DIR=/var/spool/aitel python app.py
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import orjson

import aitel
from aitel.collector import CollectorServer
from aitel.exporters.http import HttpExporter
from aitel.spool import DiskSpool

TOKEN = "change-me"


def main() -> None:
    questions = ["What is RAG?", "Define recall", "Who wrote Dune?", "2+2?", "Hi"]
    with tempfile.TemporaryDirectory(prefix="aitel-cookbook-") as tmp:
        workdir = Path(tmp)
        store = workdir / "aitel.db"
        with CollectorServer(store=str(store), token=TOKEN, port=0) as collector:
            tracer = aitel.Tracer(
                HttpExporter(collector.url, token=TOKEN),
                spool=DiskSpool(workdir / "spool"),  # undelivered batches wait here
            )
            for question in questions:
                with aitel.trace("answer", input={"question": question}, tracer=tracer) as span:
                    span.set_output(f"(an answer to {question!r})")
            tracer.flush(10)
            print(tracer.stats())
            tracer.shutdown(5)

        conn = sqlite3.connect(store)  # the collector has stopped; any process may read it
        rows = conn.execute("SELECT packet_id, received_at, body FROM packets").fetchall()
        conn.close()
    print(f"stored {len(rows)} packets")
    for packet_id, received_at, body in rows:
        packet = orjson.loads(body)
        print(f"  {received_at}  {packet_id}  {packet['payload']['input']['question']}")
    if len(rows) != len(questions):
        raise SystemExit(f"expected {len(questions)} packets in the store, found {len(rows)}")


if __name__ == "__main__":
    main()
