"""The collector's HTTP API (Starlette).

``POST /v1/packets``
    Body: a JSON array of packets (or one packet), or with ``Content-Type:
    application/x-ndjson`` one packet per line; plain or ``Content-Encoding:
    gzip``. Needs ``Authorization: Bearer <token>`` when the collector has a
    token (401 otherwise). Each packet is validated against
    :class:`aitel.schema.ContextPacket`; valid ones are stored once per
    ``packet_id``. Every answer carries ``Accept-Post`` naming both body
    types, which tells :class:`~aitel.exporters.http.HttpExporter` that it may
    send lines: a line is checked on its own and stored as sent, about a
    third less CPU than checking a packet of an array, whose packets are all
    parsed at once and encoded again for storage. The answer comes after the
    commit::

        200 {"accepted": 3, "duplicates": 1, "rejected": []}
        207 {"accepted": 2, "duplicates": 0,
             "rejected": [{"index": 1, "packet_id": "...", "reason": "..."}]}
        400 {"error": "...", "accepted": 0, "rejected": [...]}   # nothing valid
        413 body too large, or more than max_batch_packets packets
        415 unknown Content-Encoding
        429 write queue full (Retry-After)    503 storage failed (Retry-After)

    ``accepted`` counts stored packets including ``duplicates`` (already stored).

``GET /healthz``
    ``{"status": "ok", "packets": <stored>, ...counters}``.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import threading
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._filekind import GZIP_MAGIC
from ..schema import ContextPacket
from .store import PacketStore, StoreBusy, StoreClosed

PACKETS_PATH = "/v1/packets"
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})
ACCEPT_POST = "application/json, application/x-ndjson"


@dataclass(frozen=True)
class CollectorConfig:
    """Everything ``aitel collect`` can be told."""

    store: str = "aitel.db"
    token: str | None = None
    host: str = "127.0.0.1"
    port: int = 4319
    max_body_bytes: int = 64 * 1024 * 1024
    """Largest request body accepted, compressed or not (413 above)."""
    max_decoded_bytes: int = 256 * 1024 * 1024
    """Largest body after gzip decoding (413 above)."""
    max_batch_packets: int = 10_000
    """Most packets (or lines) in one request (413 above; the exporter then splits).

    Bounds the work and the per-packet answer of one request: a body of tiny
    invalid items would otherwise cost a rejection record each.
    """
    max_pending_batches: int = 64
    """Batches waiting for the writer before requests get 429."""
    retry_after_s: int = 1
    synchronous: str = "FULL"
    log_level: str = "warning"


@dataclass
class CollectorCounters:
    requests: int = 0
    batches_stored: int = 0
    packets_received: int = 0
    packets_stored: int = 0
    duplicates: int = 0
    rejected_packets: int = 0
    unauthorized: int = 0
    throttled: int = 0
    too_large: int = 0
    bad_requests: int = 0
    storage_errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in vars(self).items() if not k.startswith("_")}


class _TooLarge(Exception):
    pass


def create_app(config: CollectorConfig, store: PacketStore | None = None) -> Starlette:
    """The ASGI app. It opens ``config.store`` at startup unless given a running ``store``."""
    owned = store is None
    packet_store = store or PacketStore(
        config.store,
        max_pending_batches=config.max_pending_batches,
        synchronous=config.synchronous,
    )
    counters = CollectorCounters()
    expected = f"Bearer {config.token}".encode() if config.token else None
    retry_after = {"Retry-After": str(config.retry_after_s)}

    async def ingest(request: Request) -> Response:
        response = await _ingest(request)
        response.headers["Accept-Post"] = ACCEPT_POST
        return response

    async def _ingest(request: Request) -> Response:
        counters.add(requests=1)
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                counters.add(unauthorized=1)
                return JSONResponse(
                    {"error": "missing or invalid bearer token"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        if packet_store.queue_depth >= packet_store.max_pending_batches:
            counters.add(throttled=1)
            return JSONResponse({"error": "write queue full"}, status_code=429, headers=retry_after)
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in {"identity", "gzip", ""}:
            counters.add(bad_requests=1)
            return JSONResponse(
                {"error": f"unsupported Content-Encoding {encoding!r}"}, status_code=415
            )
        try:
            raw = await _read_body(request, config.max_body_bytes)
            if encoding == "gzip":
                raw = _gunzip(raw, config.max_decoded_bytes)
        except _TooLarge as exc:
            counters.add(too_large=1)
            return JSONResponse({"error": str(exc)}, status_code=413)
        except zlib.error as exc:
            counters.add(bad_requests=1)
            return JSONResponse({"error": f"body is not valid gzip: {exc}"}, status_code=400)
        except ClientDisconnect:  # the client left before its body ended: nobody to answer
            counters.add(bad_requests=1)
            return Response(status_code=400)

        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        check = _check_lines if media_type in NDJSON_TYPES else _check_batch
        try:
            checked = await run_in_threadpool(check, raw, config.max_batch_packets)
        except _TooLarge as exc:
            counters.add(too_large=1)
            return JSONResponse({"error": str(exc)}, status_code=413)
        if isinstance(checked, str):
            counters.add(bad_requests=1)
            return JSONResponse({"error": checked}, status_code=400)
        rows, rejected = checked
        counters.add(packets_received=len(rows) + len(rejected), rejected_packets=len(rejected))
        if not rows:
            reason = "no valid packets" if rejected else "empty batch"
            status = 400 if rejected else 200
            return JSONResponse(
                {"error": reason, "accepted": 0, "duplicates": 0, "rejected": rejected}
                if rejected
                else {"accepted": 0, "duplicates": 0, "rejected": []},
                status_code=status,
            )
        try:
            future = packet_store.submit(rows)
        except StoreBusy:
            counters.add(throttled=1)
            return JSONResponse({"error": "write queue full"}, status_code=429, headers=retry_after)
        except StoreClosed:
            return JSONResponse({"error": "shutting down"}, status_code=503, headers=retry_after)
        try:
            result = await asyncio.wrap_future(future)
        except Exception as exc:
            counters.add(storage_errors=1)
            return JSONResponse(
                {"error": f"storage failed: {type(exc).__name__}: {exc}"},
                status_code=503,
                headers=retry_after,
            )
        counters.add(batches_stored=1, packets_stored=result.inserted, duplicates=result.duplicates)
        body = {"accepted": len(rows), "duplicates": result.duplicates, "rejected": rejected}
        return JSONResponse(body, status_code=207 if rejected else 200)

    async def healthz(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "packets": packet_store.count,
                "queue_depth": packet_store.queue_depth,
                "write_errors": packet_store.write_errors,
                **counters.as_dict(),
            }
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if owned:
            packet_store.start()
        try:
            yield
        finally:
            if owned:
                await run_in_threadpool(packet_store.close)

    app = Starlette(
        routes=[
            Route(PACKETS_PATH, ingest, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.store = packet_store
    app.state.counters = counters
    return app


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge(f"body of {declared} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _gunzip(data: bytes, limit: int) -> bytes:
    """Every member of a gzip (or zlib) body, decoded; raises ``zlib.error`` if it is damaged.

    A body cut short (no end of stream) or with bytes after its last member
    is refused rather than stored in part.
    """
    parts: list[bytes] = []
    size = 0
    rest = data
    while True:
        decoder = zlib.decompressobj(wbits=47)  # gzip or zlib header
        part = decoder.decompress(rest, limit - size + 1)
        size += len(part)
        if size > limit or decoder.unconsumed_tail:
            raise _TooLarge(f"decoded body is over the {limit}-byte limit")
        if not decoder.eof:
            raise zlib.error("the stream is cut short")
        parts.append(part)
        rest = decoder.unused_data
        if not rest:
            return b"".join(parts)
        if not rest.startswith(GZIP_MAGIC):
            raise zlib.error(f"{len(rest)} bytes after the end of the stream")


Checked = tuple[list[tuple[str, bytes]], list[dict[str, Any]]]


def _check_batch(raw: bytes, max_packets: int) -> Checked | str:
    """Valid rows ``(packet_id, JSON bytes)`` and per-packet rejections, or an error message.

    Raises :class:`_TooLarge` for more than ``max_packets`` packets.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return f"body is not JSON: {exc}"
    items = data if isinstance(data, list) else [data]
    if len(items) > max_packets:
        raise _TooLarge(f"{len(items)} packets in one request, over the limit of {max_packets}")
    checked: Checked = ([], [])
    for index, item in enumerate(items):
        _sort(checked, index, item, None)
    return checked


def _check_lines(raw: bytes, max_packets: int) -> Checked:
    """As :func:`_check_batch`, for one packet per line; a valid line is stored as sent.

    Each line is parsed and validated on its own, while its objects are still
    in the CPU's caches, and needs no encoding again. Blank lines are skipped
    and not counted in the indexes, but count towards ``max_packets``.
    """
    if raw.count(b"\n") > max_packets:
        raise _TooLarge(f"more than {max_packets} lines in one request")
    checked: Checked = ([], [])
    index = 0
    for raw_line in raw.split(b"\n"):
        if not raw_line or raw_line.isspace():
            continue
        line = raw_line[:-1] if raw_line.endswith(b"\r") else raw_line
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            checked[1].append({"index": index, "packet_id": None, "reason": f"not JSON: {exc}"})
        else:
            _sort(checked, index, item, line)
        index += 1
    return checked


def _sort(checked: Checked, index: int, item: Any, stored: bytes | None) -> None:
    """Add ``item`` to the rows (as ``stored``, or encoded again) or to the rejections."""
    reason = _invalid(item)
    if reason is None:
        checked[0].append((item["packet_id"], orjson.dumps(item) if stored is None else stored))
    else:
        packet_id = item.get("packet_id") if isinstance(item, dict) else None
        checked[1].append({"index": index, "packet_id": packet_id, "reason": reason})


# Only the verdict is used (the stored row is the packet's own JSON), so unknown
# fields, which the schema allows, need not be copied into the model: a quarter
# less work per packet. (The ``extra`` argument is new in pydantic 2.12.)
_VERDICT_ONLY: dict[str, Any] = (
    {"extra": "ignore"}
    if "extra" in inspect.signature(ContextPacket.model_validate).parameters
    else {}
)


def _invalid(item: Any) -> str | None:
    if not isinstance(item, dict):
        return f"expected a JSON object, got {type(item).__name__}"
    packet_id = item.get("packet_id")
    if not isinstance(packet_id, str) or not packet_id:
        return "packet_id: missing or not a non-empty string"
    try:
        ContextPacket.model_validate(item, **_VERDICT_ONLY)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        parts = [
            f"{'.'.join(str(p) for p in error['loc']) or '<packet>'}: {error['msg']}"
            for error in errors[:3]
        ]
        more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
        return "; ".join(parts) + more
    return None
