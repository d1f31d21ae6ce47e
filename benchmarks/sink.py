"""A local HTTP sink that every exporter in the benchmarks can talk to.

Run it as its own process (so its CPU is not charged to the client under test)::

    python benchmarks/sink.py --port 0      # prints "port <n>" once listening

It accepts any POST on 127.0.0.1, answers 200 with a body each client accepts
(an empty protobuf message to OTLP/protobuf, ``{}`` to everything else), and
counts requests, bytes and delivered items per *key*: the first path segment,
so each configuration and workload gets its own counters
(``http://127.0.0.1:<port>/<key>/v1/traces``). Items are

* OTLP traces (``.../v1/traces``, protobuf or JSON, gzip/deflate): spans;
* LangSmith ``.../runs/multipart`` (plain or zstd): ``post.<run id>`` parts;
  ``.../runs/batch``: entries of ``post``;
* aitel ``.../v1/packets`` (a JSON array, plain or gzip): packets.

``GET /_sink/stats`` returns the counters as JSON; ``POST /_sink/reset`` clears
them. Any other GET (LangSmith asks for ``/info``) gets ``{}``.
The answer is sent before the body is counted, so counting never slows a
client down; read the stats after a short settle (see ``SinkClient.settle``).
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson  # counting must not be the slow part: every JSON body is parsed in C

_POST_PART = re.compile(rb'name="post\.[0-9a-fA-F-]{32,36}"')
_PATCH_PART = re.compile(rb'name="patch\.[0-9a-fA-F-]{32,36}"')


class Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_key: dict[str, dict[str, int]] = {}

    def add(self, key: str, **deltas: int) -> None:
        with self.lock:
            entry = self.by_key.setdefault(
                key,
                {"requests": 0, "bytes": 0, "items": 0, "patches": 0, "parse_errors": 0},
            )
            for name, delta in deltas.items():
                entry[name] = entry.get(name, 0) + delta

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {k: dict(v) for k, v in self.by_key.items()}

    def reset(self) -> None:
        with self.lock:
            self.by_key.clear()


COUNTERS = Counters()


def _decode(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -zlib.MAX_WBITS)
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    return body


def _count_otlp(body: bytes, content_type: str) -> int:
    if "json" in content_type:
        data = orjson.loads(body)
        return sum(
            len(scope.get("spans", []))
            for resource in data.get("resourceSpans", [])
            for scope in resource.get("scopeSpans", [])
        )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return sum(
        len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans
    )


def count_items(path: str, body: bytes, headers: Any) -> tuple[int, int]:
    """(items, patches) delivered in one request body."""
    raw = _decode(body, headers.get("Content-Encoding", "") or "")
    content_type = headers.get("Content-Type", "") or ""
    if path.endswith("/v1/traces"):
        return _count_otlp(raw, content_type), 0
    if path.endswith("/runs/multipart"):
        return len(_POST_PART.findall(raw)), len(_PATCH_PART.findall(raw))
    if path.endswith("/runs/batch"):
        data = orjson.loads(raw)
        return len(data.get("post") or []), len(data.get("patch") or [])
    if path.endswith("/v1/packets"):
        data = orjson.loads(raw)
        return (len(data) if isinstance(data, list) else 1), 0
    return 0, 0


class SinkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real endpoints do
    server_version = "bench-sink"
    # TCP_NODELAY, as production servers set it: without it the answer's body waits for
    # the client's delayed ACK of its headers (40 ms on Linux) on every request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding", "") or "").lower():
            parts = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_POST(self) -> None:
        body = self._read_body()
        path = self.path.split("?", 1)[0]
        if path == "/_sink/reset":
            COUNTERS.reset()
            self._answer(200, b"{}", "application/json")
            return
        content_type = self.headers.get("Content-Type", "") or ""
        if "protobuf" in content_type:
            self._answer(200, b"", "application/x-protobuf")
        else:
            self._answer(200, b"{}", "application/json")
        key = path.strip("/").split("/", 1)[0] or "-"
        try:
            items, patches = count_items(path, body, self.headers)
        except Exception:
            COUNTERS.add(key, requests=1, bytes=len(body), parse_errors=1)
            return
        COUNTERS.add(key, requests=1, bytes=len(body), items=items, patches=patches)

    do_PUT = do_POST
    do_PATCH = do_POST

    def do_GET(self) -> None:
        if self.path.startswith("/_sink/stats"):
            self._answer(200, orjson.dumps(COUNTERS.snapshot()), "application/json")
        else:
            self._answer(200, b"{}", "application/json")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = _Server(("127.0.0.1", args.port), SinkHandler)
    print(f"port {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
