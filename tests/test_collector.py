"""The collector: authentication, validation, deduplication, backpressure, durable storage."""

from __future__ import annotations

import argparse
import gzip
import logging
import socket
import sqlite3
import subprocess
import sys
import threading
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import aitel
from aitel.collector import CollectorServer, PacketStore, register
from aitel.collector.store import WriteResult
from aitel.config import Settings
from aitel.exporters.base import EncodedPacket
from aitel.exporters.http import HttpExporter
from aitel.exporters.retry import RetryPolicy

TOKEN = "s3cret"


def make_packet(**changes: Any) -> dict[str, Any]:
    memory = aitel.InMemoryExporter()
    tracer = aitel.Tracer(memory, settings=Settings(redaction=()))
    with aitel.trace("unit", input={"q": "x"}, tracer=tracer) as span:
        span.set_output("y")
    tracer.shutdown(5)
    packet = dict(memory.packets[0])
    packet.update(packet_id=str(uuid.uuid4()), **changes)
    return packet


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return make_packet()


def fresh(template: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**template, "packet_id": str(uuid.uuid4()), **changes}


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[CollectorServer]:
    with CollectorServer(store=str(tmp_path / "store.db"), token=TOKEN) as server:
        yield server


def post(server: CollectorServer, body: bytes, **headers: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json", **headers}
    return httpx.post(server.url, content=body, headers=headers, timeout=10)


def rows(store: Path) -> list[tuple[str, str, bytes]]:
    conn = sqlite3.connect(store)
    try:
        return conn.execute("SELECT packet_id, received_at, body FROM packets").fetchall()
    finally:
        conn.close()


def test_stores_each_packet_as_its_json_bytes(
    collector: CollectorServer, tmp_path: Path, template: dict[str, Any]
) -> None:
    """A valid batch is committed before the answer; each row holds the packet's JSON."""
    packets = [fresh(template) for _ in range(3)]
    response = post(collector, orjson.dumps(packets))
    assert response.status_code == 200
    assert response.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    stored = {packet_id: body for packet_id, _, body in rows(tmp_path / "store.db")}
    assert stored == {p["packet_id"]: orjson.dumps(p) for p in packets}


def test_fields_from_a_newer_minor_version_are_accepted_and_kept(
    collector: CollectorServer, tmp_path: Path, template: dict[str, Any]
) -> None:
    """Minor versions only add optional fields: a 1.x packet with unknown ones is stored whole."""
    step = {**template["steps"][0], "future_step_field": {"a": [1, 2]}}
    packet = fresh(template, schema_version="1.9", future_field="x", steps=[step])
    wrong = fresh(template, schema_version="2.0", future_field="x")
    response = post(collector, orjson.dumps([packet, wrong]))
    assert response.status_code == 207
    assert response.json()["accepted"] == 1
    assert [r["index"] for r in response.json()["rejected"]] == [1]
    stored = {packet_id: body for packet_id, _, body in rows(tmp_path / "store.db")}
    assert stored == {packet["packet_id"]: orjson.dumps(packet)}
    assert orjson.loads(stored[packet["packet_id"]])["steps"][0]["future_step_field"] == {
        "a": [1, 2]
    }


def test_one_packet_per_line_is_stored_as_sent(
    collector: CollectorServer, tmp_path: Path, template: dict[str, Any]
) -> None:
    """application/x-ndjson: each valid line is stored byte for byte; answers name both types."""
    packets = [fresh(template) for _ in range(3)]
    lines = [orjson.dumps(p) for p in packets]
    lines[1] = orjson.dumps(packets[1], option=orjson.OPT_INDENT_2).replace(b"\n", b" ")
    body = lines[0] + b"\r\n" + lines[1] + b"\n\n" + lines[2] + b"\n"
    response = post(collector, body, **{"content-type": "application/x-ndjson"})
    assert response.status_code == 200
    assert response.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    assert response.headers["accept-post"] == "application/json, application/x-ndjson"
    stored = {packet_id: body for packet_id, _, body in rows(tmp_path / "store.db")}
    assert stored == {p["packet_id"]: line for p, line in zip(packets, lines, strict=True)}
    assert post(collector, b"[]").headers["accept-post"] == (
        "application/json, application/x-ndjson"
    )


def test_lines_are_checked_one_by_one(
    collector: CollectorServer, tmp_path: Path, template: dict[str, Any]
) -> None:
    """Bad lines are rejected by their index (blank lines not counted); the rest is stored."""
    good, bad = fresh(template), fresh(template, status="MAYBE")
    body = b"\n".join(
        [orjson.dumps(bad), b"", b"{not json", orjson.dumps(good), b"42", b'{"x": NaN}']
    )
    response = post(collector, body, **{"content-type": "application/x-ndjson; charset=utf-8"})
    assert response.status_code == 207
    rejected = response.json()["rejected"]
    assert [(r["index"], r["packet_id"]) for r in rejected] == [
        (0, bad["packet_id"]),
        (1, None),
        (3, None),
        (4, None),
    ]
    assert rejected[0]["reason"].startswith("status:")
    assert rejected[1]["reason"].startswith("not JSON:")
    assert [r[0] for r in rows(tmp_path / "store.db")] == [good["packet_id"]]
    nothing = post(collector, b"{not json\n", **{"content-type": "application/x-ndjson"})
    assert nothing.status_code == 400
    assert nothing.json()["error"] == "no valid packets"


def test_table_layout_and_wal_mode(collector: CollectorServer, tmp_path: Path) -> None:
    """packets(packet_id TEXT PRIMARY KEY, received_at TEXT, body BLOB), WAL journal."""
    conn = sqlite3.connect(tmp_path / "store.db")
    try:
        columns = [
            (name, kind, pk)
            for _, name, kind, _, _, pk in conn.execute("PRAGMA table_info(packets)")
        ]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()
    assert columns == [("packet_id", "TEXT", 1), ("received_at", "TEXT", 0), ("body", "BLOB", 0)]
    assert mode == "wal"


def test_duplicates_are_stored_once(
    collector: CollectorServer, tmp_path: Path, template: dict[str, Any]
) -> None:
    """Resending a batch (at-least-once delivery) leaves one row per packet_id."""
    packets = [fresh(template) for _ in range(4)]
    body = orjson.dumps(packets)
    assert post(collector, body).json()["duplicates"] == 0
    again = post(collector, body)
    assert again.status_code == 200
    assert again.json() == {"accepted": 4, "duplicates": 4, "rejected": []}
    assert len(rows(tmp_path / "store.db")) == 4


def test_gzip_bodies_are_accepted(collector: CollectorServer, template: dict[str, Any]) -> None:
    """Content-Encoding: gzip is decoded."""
    body = gzip.compress(orjson.dumps([fresh(template)]))
    assert post(collector, body, **{"content-encoding": "gzip"}).json()["accepted"] == 1


def test_every_gzip_member_is_decoded(
    collector: CollectorServer, tmp_path: Path, template: dict[str, Any]
) -> None:
    """A body of several gzip members (RFC 1952 allows it) stores every packet."""
    first, second = fresh(template), fresh(template)
    body = gzip.compress(orjson.dumps(first) + b"\n") + gzip.compress(orjson.dumps(second))
    response = post(
        collector, body, **{"content-encoding": "gzip", "content-type": "application/x-ndjson"}
    )
    assert response.json()["accepted"] == 2
    assert {r[0] for r in rows(tmp_path / "store.db")} == {first["packet_id"], second["packet_id"]}


def _cut_after_flush(data: bytes) -> bytes:
    """A gzip stream of ``data`` cut after a full flush: readable so far, but no end."""
    compressor = zlib.compressobj(wbits=31)
    return compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)


@pytest.mark.parametrize("damage", ["cut short", "trailing bytes"])
def test_damaged_gzip_is_refused_not_stored_in_part(
    collector: CollectorServer, tmp_path: Path, template: dict[str, Any], damage: str
) -> None:
    """A gzip body cut short, or followed by other bytes, is 400 and nothing is stored."""
    lines = b"\n".join(orjson.dumps(fresh(template)) for _ in range(3))
    body = _cut_after_flush(lines) if damage == "cut short" else gzip.compress(lines) + b"JUNK"
    response = post(
        collector, body, **{"content-encoding": "gzip", "content-type": "application/x-ndjson"}
    )
    assert response.status_code == 400
    assert "not valid gzip" in response.json()["error"]
    assert rows(tmp_path / "store.db") == []


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}"])
def test_missing_or_wrong_token_is_401(
    collector: CollectorServer, template: dict[str, Any], authorization: str | None
) -> None:
    """Only the configured bearer token is accepted."""
    headers = {} if authorization is None else {"authorization": authorization}
    response = httpx.post(collector.url, content=orjson.dumps([fresh(template)]), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{collector.base_url}/healthz").json()["unauthorized"] == 1


def test_partial_success_keeps_the_valid_packets(
    collector: CollectorServer, tmp_path: Path, template: dict[str, Any]
) -> None:
    """207 with a reason per rejected packet; the valid ones are stored."""
    good, bad = fresh(template), fresh(template, status="MAYBE")
    response = post(collector, orjson.dumps([bad, good, 42]))
    assert response.status_code == 207
    body = response.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["packet_id"]) for r in body["rejected"]] == [
        (0, bad["packet_id"]),
        (2, None),
    ]
    assert body["rejected"][0]["reason"].startswith("status:")
    assert [r[0] for r in rows(tmp_path / "store.db")] == [good["packet_id"]]


def test_all_invalid_is_400_with_reasons(
    collector: CollectorServer, template: dict[str, Any]
) -> None:
    """Nothing valid: 400, and each packet's reason."""
    broken = {k: v for k, v in fresh(template).items() if k != "trace_id"}
    response = post(collector, orjson.dumps([broken]))
    assert response.status_code == 400
    assert response.json()["rejected"][0]["reason"].startswith("trace_id:")


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        (b"not json", {}, 400),
        (b"\x1f\x8bnot gzip", {"content-encoding": "gzip"}, 400),
        (b"[]", {"content-encoding": "br"}, 415),
    ],
)
def test_malformed_requests(
    collector: CollectorServer, body: bytes, headers: dict[str, str], code: int
) -> None:
    """Unreadable bodies are refused with a message, never a server error."""
    response = post(collector, body, **headers)
    assert response.status_code == code
    assert response.json()["error"]


def test_bodies_over_the_limit_are_413(tmp_path: Path, template: dict[str, Any]) -> None:
    """A body larger than max_body_bytes is refused with 413 (the exporter then splits)."""
    with CollectorServer(store=str(tmp_path / "s.db"), max_body_bytes=2000) as server:
        response = httpx.post(server.url, content=orjson.dumps([fresh(template)] * 3))
        assert response.status_code == 413


def test_more_packets_than_allowed_in_one_request_is_413(
    tmp_path: Path, template: dict[str, Any]
) -> None:
    """A batch of many tiny items is refused whole, as an array or as lines; the exporter splits."""
    with CollectorServer(store=str(tmp_path / "s.db"), max_batch_packets=4) as server:
        for body, content_type in (
            (b"[" + b",".join([b"1"] * 5) + b"]", "application/json"),
            (b"1\n" * 5, "application/x-ndjson"),
        ):
            response = httpx.post(server.url, content=body, headers={"content-type": content_type})
            assert response.status_code == 413
            assert "in one request" in response.json()["error"]
        four = [fresh(template) for _ in range(4)]
        assert httpx.post(server.url, content=orjson.dumps(four)).json()["accepted"] == 4
        exporter = HttpExporter(server.url, retry=RetryPolicy(max_elapsed_s=5.0))
        try:
            ten = [fresh(template) for _ in range(10)]
            result = exporter.export([EncodedPacket(p["packet_id"], orjson.dumps(p)) for p in ten])
            assert (result.exported, result.rejected) == (10, 0)
            assert exporter.stats().splits >= 1
        finally:
            exporter.shutdown(5.0)
        health = httpx.get(f"{server.base_url}/healthz").json()
        assert health["packets"] == 14
        assert health["too_large"] >= 3


def test_a_full_write_queue_answers_429_with_retry_after(
    tmp_path: Path, template: dict[str, Any]
) -> None:
    """While the writer is behind, new batches are refused with 429 and Retry-After."""
    gate = threading.Event()

    class SlowStore(PacketStore):
        def _write(self, conn: sqlite3.Connection, jobs: list[Any]) -> None:
            gate.wait(10)
            super()._write(conn, jobs)

    store = SlowStore(tmp_path / "s.db", max_pending_batches=1)
    store.start()
    results: list[httpx.Response] = []
    with CollectorServer(token=TOKEN, retry_after_s=2, packet_store=store) as server:
        first = threading.Thread(
            target=lambda: results.append(post(server, orjson.dumps([fresh(template)])))
        )
        first.start()
        while store.queue_depth < 1:  # the first batch is waiting for the writer
            first.join(0.01)
        throttled = post(server, orjson.dumps([fresh(template)]))
        gate.set()
        first.join(10)
    store.close()
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "2"
    assert results[0].status_code == 200
    assert store.count == 1


def test_healthz_reports_counts(collector: CollectorServer, template: dict[str, Any]) -> None:
    """Stored packets, duplicates and rejections are visible at /healthz."""
    packet = fresh(template)
    post(collector, orjson.dumps([packet, packet, fresh(template, status="?")]))
    health = httpx.get(f"{collector.base_url}/healthz").json()
    assert health["status"] == "ok"
    assert health["packets"] == 1
    assert health["duplicates"] == 1
    assert health["rejected_packets"] == 1


def test_readable_by_another_process_while_running(
    collector: CollectorServer, tmp_path: Path, template: dict[str, Any]
) -> None:
    """WAL mode: a separate process reads committed packets while the collector writes."""
    post(collector, orjson.dumps([fresh(template) for _ in range(5)]))
    code = (
        "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]);"
        "print(c.execute('select count(*) from packets').fetchone()[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "store.db")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout.strip() == "5"


def test_exporter_and_collector_agree_end_to_end(
    collector: CollectorServer, tmp_path: Path
) -> None:
    """Packets traced through HttpExporter land in the store exactly once."""
    tracer = aitel.Tracer(HttpExporter(collector.url, token=TOKEN), settings=Settings(redaction=()))
    for n in range(20):
        with aitel.trace("e2e", input={"n": n}, tracer=tracer, request_id=f"e2e-{n}"):
            pass
    assert tracer.flush(10)
    tracer.shutdown(5)
    stored = sorted(orjson.loads(body)["request_id"] for _, _, body in rows(tmp_path / "store.db"))
    assert stored == sorted(f"e2e-{n}" for n in range(20))


class RecordingTransport(httpx.HTTPTransport):
    """A real transport that notes each request's content type and encoding."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str | None]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.headers["content-type"], request.headers.get("content-encoding")))
        return super().handle_request(request)


def test_the_exporter_sends_lines_once_the_collector_offers_them(
    collector: CollectorServer, tmp_path: Path
) -> None:
    """The first batch is an array; after the collector's Accept-Post, lines; uncompressed on loopback."""
    transport = RecordingTransport()
    exporter = HttpExporter(collector.url, token=TOKEN, transport=transport)
    tracer = aitel.Tracer(exporter, settings=Settings(redaction=()))
    for batch in range(3):
        for n in range(5):
            with aitel.trace("lines", input={"n": n}, tracer=tracer, request_id=f"b{batch}-{n}"):
                pass
        assert tracer.flush(10)
    tracer.shutdown(5)
    assert transport.sent == [
        ("application/json", None),
        ("application/x-ndjson", None),
        ("application/x-ndjson", None),
    ]
    stored = sorted(orjson.loads(body)["request_id"] for _, _, body in rows(tmp_path / "store.db"))
    assert stored == sorted(f"b{b}-{n}" for b in range(3) for n in range(5))


def test_store_reports_inserted_and_duplicates(tmp_path: Path) -> None:
    """The store's futures resolve after the commit with what was new."""
    store = PacketStore(tmp_path / "s.db")
    store.start()
    try:
        first = store.submit([("a", b"{}"), ("b", b"{}")]).result(10)
        second = store.submit([("b", b"{}"), ("c", b"{}"), ("c", b"{}")]).result(10)
    finally:
        store.close()
    assert (first, second) == (WriteResult(2, 0), WriteResult(1, 2))
    assert store.count == 3


def test_cli_registers_the_collect_command() -> None:
    """register() adds `collect` with its options and an exit-code returning func."""
    parser = argparse.ArgumentParser(prog="aitel")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["collect", "--host", "0.0.0.0", "--port", "9", "--store", "x.db", "--token", "T"]
    )
    assert (args.host, args.port, args.store, args.token) == ("0.0.0.0", 9, "x.db", "T")
    assert callable(args.func)


def test_module_entry_point_prints_help() -> None:
    """`python -m aitel.collector --help` documents the same options."""
    out = subprocess.run(
        [sys.executable, "-m", "aitel.collector", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for option in ("--host", "--port", "--store", "--token"):
        assert option in out.stdout


def test_a_client_leaving_mid_body_is_counted_not_logged_as_a_crash(
    collector: CollectorServer, template: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A body cut off by the client is a bad request; the collector keeps serving."""
    head = (
        f"POST /v1/packets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 500000\r\n\r\n[{"
    )
    with (
        caplog.at_level(logging.ERROR),
        socket.create_connection(("127.0.0.1", collector.port)) as sock,
    ):
        sock.sendall(head.encode())
    health: dict[str, Any] = {}
    for _ in range(500):  # bounded: each check is a round trip to the server
        health = httpx.get(f"{collector.base_url}/healthz").json()
        if health["bad_requests"]:
            break
    assert health["bad_requests"] == 1
    assert post(collector, orjson.dumps([fresh(template)])).json()["accepted"] == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
