"""The HTTP exporter against scripted answers (httpx.MockTransport, no sockets)."""

from __future__ import annotations

import gzip
import logging
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest

from aitel._safety import internal_log
from aitel.config import ConfigError, Settings
from aitel.exporters.base import EncodedPacket
from aitel.exporters.http import HttpExporter
from aitel.exporters.retry import RetryPolicy

URL = "http://collector.test/v1/packets"
FAST = RetryPolicy(initial_backoff_s=0.001, max_backoff_s=0.002, max_elapsed_s=2.0)

Handler = Callable[[httpx.Request], httpx.Response]


def batch(count: int, start: int = 0) -> list[EncodedPacket]:
    return [
        EncodedPacket(f"p{n}", orjson.dumps({"packet_id": f"p{n}", "n": n, "text": "é" * 10}))
        for n in range(start, start + count)
    ]


def body_of(request: httpx.Request) -> list[dict[str, object]]:
    raw = request.content
    if request.headers.get("content-encoding") == "gzip":
        raw = gzip.decompress(raw)
    data = orjson.loads(raw)
    assert isinstance(data, list)
    return data


class Server:
    """Records requests and answers from a script, then with the default."""

    def __init__(self, *script: Handler, default: Handler | None = None) -> None:
        self.script = list(script)
        self.default = default or (
            lambda r: httpx.Response(200, json={"accepted": len(body_of(r))})
        )
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        handler = self.script.pop(0) if self.script else self.default
        return handler(request)

    def exporter(self, **options: object) -> HttpExporter:
        options.setdefault("retry", FAST)
        options.setdefault("token", "secret")
        return HttpExporter(URL, transport=httpx.MockTransport(self), **options)  # type: ignore[arg-type]


def status(code: int, **kwargs: object) -> Handler:
    return lambda request: httpx.Response(code, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _fresh_log_limits() -> Iterator[None]:
    internal_log._last.clear()
    yield
    internal_log._last.clear()


def test_body_is_a_json_array_of_the_encoded_bytes() -> None:
    """Packets are joined from their encoded bytes, gzip-compressed, with the bearer token."""
    server = Server()
    packets = batch(30)
    result = server.exporter().export(packets)
    assert result.exported == 30
    assert result.success
    (request,) = server.requests
    assert request.headers["authorization"] == "Bearer secret"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-encoding"] == "gzip"
    assert gzip.decompress(request.content) == b"[" + b",".join(p.data for p in packets) + b"]"


def test_gzip_level_is_configurable() -> None:
    """Any level from 1 (the default) to 9 sends the same body; others are refused."""
    packets = batch(200)
    for level in (1, 9):
        server = Server()
        assert server.exporter(gzip_level=level).export(packets).exported == 200
        (request,) = server.requests
        assert gzip.decompress(request.content) == b"[" + b",".join(p.data for p in packets) + b"]"
    for bad in (0, 10, 5.0, True):
        with pytest.raises(ConfigError, match="gzip_level"):
            HttpExporter(URL, gzip_level=bad)  # type: ignore[arg-type]


def test_small_bodies_are_sent_plain() -> None:
    """Below the gzip threshold the body is sent as is."""
    server = Server()
    server.exporter().export(batch(1))
    assert "content-encoding" not in server.requests[0].headers


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:4319/v1/packets",
        "http://127.8.0.1/v1/packets",
        "http://localhost:4319/v1/packets",
        "http://[::1]:4319/v1/packets",
    ],
)
def test_loopback_endpoints_get_plain_bodies_unless_gzip_is_asked_for(endpoint: str) -> None:
    """Compression buys nothing on this machine; gzip=True still compresses."""
    packets = batch(200)
    for gzip_option, expected in ((None, None), (True, "gzip"), (False, None)):
        server = Server()
        exporter = HttpExporter(
            endpoint, gzip=gzip_option, transport=httpx.MockTransport(server), retry=FAST
        )
        assert exporter.export(packets).exported == 200
        assert server.requests[0].headers.get("content-encoding") == expected
    server = Server()
    exporter = HttpExporter(URL, gzip=False, transport=httpx.MockTransport(server), retry=FAST)
    exporter.export(packets)
    assert "content-encoding" not in server.requests[0].headers


def lines_of(request: httpx.Request) -> list[bytes]:
    raw = request.content
    if request.headers.get("content-encoding") == "gzip":
        raw = gzip.decompress(raw)
    return raw.split(b"\n")


OFFERS_LINES = {"Accept-Post": "application/json, application/x-ndjson"}


def accepting(request: httpx.Request) -> httpx.Response:
    """A collector that takes both body types and says so."""
    if request.headers["content-type"] == "application/x-ndjson":
        count = len(lines_of(request))
    else:
        count = len(body_of(request))
    return httpx.Response(200, json={"accepted": count}, headers=OFFERS_LINES)


def test_lines_are_sent_once_the_endpoint_offers_them() -> None:
    """After an answer with Accept-Post naming application/x-ndjson, one packet per line."""
    server = Server(default=accepting)
    exporter = server.exporter()
    first, second = batch(3), batch(3, start=3)
    assert exporter.export(first).exported == 3
    assert exporter.export(second).exported == 3
    array, lines = server.requests
    assert array.headers["content-type"] == "application/json"
    assert lines.headers["content-type"] == "application/x-ndjson"
    assert lines_of(lines) == [p.data for p in second]


def test_lines_can_be_forced_or_refused() -> None:
    """ndjson=True sends lines from the start; ndjson=False never does."""
    server = Server(default=accepting)
    server.exporter(ndjson=True).export(batch(2))
    assert server.requests[0].headers["content-type"] == "application/x-ndjson"
    server = Server(default=accepting)
    exporter = server.exporter(ndjson=False)
    for start in (0, 2, 4):
        exporter.export(batch(2, start=start))
    assert {r.headers["content-type"] for r in server.requests} == {"application/json"}


def test_an_endpoint_that_stops_offering_lines_gets_arrays_again() -> None:
    """Lines refused without the offer (an older collector now): the batch goes again as an array."""

    def older(request: httpx.Request) -> httpx.Response:
        if request.headers["content-type"] != "application/json":
            return httpx.Response(400, json={"error": "body is not JSON"})
        return httpx.Response(200, json={"accepted": len(body_of(request))})

    server = Server(accepting, default=older)
    exporter = server.exporter()
    assert exporter.export(batch(2)).exported == 2
    result = exporter.export(batch(3, start=2))
    assert (result.exported, result.rejected) == (3, 0)
    assert exporter.export(batch(1, start=5)).exported == 1
    assert [r.headers["content-type"] for r in server.requests] == [
        "application/json",
        "application/x-ndjson",
        "application/json",
        "application/json",
    ]
    assert [p["packet_id"] for p in body_of(server.requests[2])] == ["p2", "p3", "p4"]


def test_a_packet_spanning_lines_goes_in_an_array() -> None:
    """Lines only when each packet is one line (a newline in a packet's bytes: an array)."""
    server = Server(default=accepting)
    exporter = server.exporter(ndjson=True)
    spread = [EncodedPacket("p0", b'{\n"packet_id": "p0"}'), *batch(1, start=1)]
    assert exporter.export(spread).exported == 2
    assert server.requests[0].headers["content-type"] == "application/json"


def test_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit token, AITEL_TOKEN is used; without either, no header is sent."""
    monkeypatch.setenv("AITEL_TOKEN", "from-env")
    server = Server()
    HttpExporter(URL, transport=httpx.MockTransport(server)).export(batch(1))
    assert server.requests[0].headers["authorization"] == "Bearer from-env"
    monkeypatch.delenv("AITEL_TOKEN")
    HttpExporter(URL, transport=httpx.MockTransport(server)).export(batch(1))
    assert "authorization" not in server.requests[1].headers


def test_from_settings_needs_an_endpoint() -> None:
    """AITEL_EXPORTER=http without AITEL_ENDPOINT is a configuration error."""
    with pytest.raises(ConfigError, match="AITEL_ENDPOINT"):
        HttpExporter.from_settings(Settings(exporter="http"))
    exporter = HttpExporter.from_settings(Settings(endpoint=URL, token="t"))
    assert exporter.endpoint == URL
    assert exporter.sender.token == "t"


def test_partial_success_rejects_only_the_listed_packets() -> None:
    """A 207 listing rejected packets: those are rejected with reasons, nothing is retried."""
    server = Server(
        lambda r: httpx.Response(
            207,
            json={
                "accepted": 3,
                "rejected": [
                    {"index": 1, "packet_id": "p1", "reason": "status: invalid"},
                    {"packet_id": "p3", "reason": "trace_id: bad"},
                ],
            },
        )
    )
    result = server.exporter().export(batch(5))
    assert (result.exported, result.rejected, list(result.retry)) == (3, 2, [])
    assert list(result.rejections) == ["p1: status: invalid", "p3: trace_id: bad"]
    assert len(server.requests) == 1


def test_200_with_rejections_is_a_partial_success_too() -> None:
    """Rejections in a 200 body count the same way."""
    server = Server(lambda r: httpx.Response(200, json={"rejected": [{"index": 0, "reason": "x"}]}))
    result = server.exporter().export(batch(2))
    assert (result.exported, result.rejected) == (1, 1)


def test_413_splits_the_batch_and_resends_the_halves() -> None:
    """Too large: halves are sent until they fit; a single packet still too large is rejected."""

    def limit(request: httpx.Request) -> httpx.Response:
        items = body_of(request)
        if len(items) > 3 or any(item["packet_id"] == "p7" for item in items):
            return httpx.Response(413, json={"error": "too large"})
        return httpx.Response(200, json={"accepted": len(items)})

    server = Server(default=limit)
    exporter = server.exporter()
    result = exporter.export(batch(10))
    assert result.exported == 9
    assert result.rejected == 1
    assert result.rejections[0].startswith("p7: larger than the collector accepts")
    assert not result.retry
    delivered = [
        str(item["packet_id"])
        for r in server.requests
        if limit(r).status_code == 200
        for item in body_of(r)
    ]
    assert sorted(delivered) == sorted(f"p{n}" for n in range(10) if n != 7)
    assert exporter.stats().splits >= 3


@pytest.mark.parametrize("code", [400, 401, 403, 404])
def test_rejections_are_final_and_logged_once(code: int, caplog: pytest.LogCaptureFixture) -> None:
    """400/401/403/404: one request, the whole batch rejected, the server's message logged."""
    server = Server(default=status(code, json={"error": "token expired"}))
    exporter = server.exporter()
    with caplog.at_level(logging.WARNING, logger="aitel"):
        first = exporter.export(batch(4))
        exporter.export(batch(4))
    assert (first.exported, first.rejected, list(first.retry)) == (0, 4, [])
    assert first.error == f"HTTP {code}: token expired"
    assert len(server.requests) == 2  # one per batch, no retries
    messages = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(messages) == 1
    assert "token expired" in messages[0]


def test_400_with_per_packet_reasons_keeps_the_reasons() -> None:
    """When every packet is invalid the collector's reasons are passed on."""
    server = Server(
        status(
            400,
            json={"error": "no valid packets", "rejected": [{"index": 0, "reason": "status: bad"}]},
        )
    )
    result = server.exporter().export(batch(1))
    assert result.rejected == 1
    assert list(result.rejections) == ["p0: status: bad"]


def test_transient_errors_are_retried_within_the_budget() -> None:
    """503 then 502 then success: delivered, retries counted."""
    server = Server(status(503), status(502))
    exporter = server.exporter()
    assert exporter.export(batch(3)).exported == 3
    assert len(server.requests) == 3
    assert exporter.stats().retries == 2
    assert exporter.stats().bytes_sent == sum(len(r.content) for r in server.requests)


def test_retries_exhausted_hand_the_batch_back_as_transient() -> None:
    """When the budget runs out the batch is returned for spooling, with Retry-After."""
    server = Server(default=status(503, headers={"Retry-After": "0"}))
    exporter = server.exporter(retry=RetryPolicy(max_attempts=3))
    packets = batch(3)
    result = exporter.export(packets)
    assert list(result.retry) == packets
    assert result.exported == 0
    assert result.error == "HTTP 503 (3 attempts)"
    assert result.retry_after_s == 0.0


def test_500_is_transient_but_not_retried_immediately() -> None:
    """A 500 goes back to the pipeline (spool) after a single attempt."""
    server = Server(default=status(500, text="boom"))
    result = server.exporter().export(batch(2))
    assert len(result.retry) == 2
    assert len(server.requests) == 1
    assert result.error == "HTTP 500: boom"


def test_an_endpoint_that_is_down_is_not_waited_on_again_during_the_cool_down() -> None:
    """After a failed batch, the next ones come back at once (no request) until the cool-down
    ends; then a single probe attempt is made."""
    attempts = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        raise httpx.ConnectError("refused", request=request)

    exporter = HttpExporter(
        URL,
        transport=httpx.MockTransport(refuse),
        retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.001),
        cooldown_s=0.2,
    )
    first = exporter.export(batch(2))
    assert "ConnectError" in str(first.error)
    assert attempts == 3
    assert exporter.stats().bytes_sent == 0  # no attempt connected
    second = exporter.export(batch(2))
    assert len(second.retry) == 2
    assert second.retry_after_s is not None
    assert 0 < second.retry_after_s <= 0.2
    assert attempts == 3  # short-circuited
    deadline = time.monotonic() + 5
    while exporter.export(batch(1)).error.startswith("endpoint down"):  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.02)  # polling the cool-down with a deadline
    assert attempts == 4  # one probe, no retries
    assert exporter.stats().short_circuited >= 2


def test_a_deadline_bounds_an_export_to_a_server_that_never_answers() -> None:
    """set_deadline (flush/shutdown) ends the wait even while a request hangs."""
    release = threading.Event()

    def hang(request: httpx.Request) -> httpx.Response:
        release.wait(10)
        return httpx.Response(200, json={})

    exporter = HttpExporter(URL, transport=httpx.MockTransport(hang), retry=FAST)
    exporter.set_deadline(time.monotonic() + 0.3)
    started = time.monotonic()
    result = exporter.export(batch(3))
    elapsed = time.monotonic() - started
    release.set()
    assert len(result.retry) == 3
    assert "deadline" in str(result.error)
    assert elapsed < 2.0
    exporter.set_deadline(None)


def test_requests_share_one_thread_and_an_abandoned_one_is_replaced() -> None:
    """Posts reuse the sender's request thread; one left hanging past a deadline blocks nothing."""
    release = threading.Event()
    threads: list[threading.Thread] = []

    def ok(request: httpx.Request) -> httpx.Response:
        threads.append(threading.current_thread())
        return httpx.Response(200, json={})

    def hang(request: httpx.Request) -> httpx.Response:
        threads.append(threading.current_thread())
        release.wait(10)
        return httpx.Response(200, json={})

    exporter = Server(ok, ok, ok, hang, default=ok).exporter()
    try:
        for n in range(3):
            assert exporter.export(batch(1, start=n)).exported == 1
        first = threads[0]
        assert threads == [first] * 3
        assert first is not threading.current_thread()
        exporter.set_deadline(time.monotonic() + 0.3)
        assert len(exporter.export(batch(1, start=3)).retry) == 1  # given up, still hanging
        exporter.set_deadline(None)
        assert exporter.export(batch(1, start=4)).exported == 1
        assert threads[4] is not first
        release.set()
        first.join(5)
        assert not first.is_alive()  # it ended after the request it was left with
    finally:
        release.set()
        exporter.shutdown(5.0)


def test_shutdown_interrupts_a_retry_wait() -> None:
    """A long Retry-After wait ends as soon as the exporter is shut down."""
    server = Server(default=status(503, headers={"Retry-After": "30"}))
    exporter = server.exporter(retry=RetryPolicy(max_elapsed_s=120))
    results = []
    thread = threading.Thread(target=lambda: results.append(exporter.export(batch(2))))
    thread.start()
    deadline = time.monotonic() + 5
    while not server.requests:
        assert time.monotonic() < deadline
        thread.join(0.01)
    started = time.monotonic()
    exporter.shutdown(1.0)
    thread.join(5)
    assert time.monotonic() - started < 2.0
    assert len(results[0].retry) == 2
    assert len(exporter.export(batch(1)).retry) == 1  # closed: everything goes back
    assert not exporter.force_flush(1.0)


def test_never_raises_even_if_the_transport_does() -> None:
    """Any exception inside sending becomes a transient result."""

    def explode(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("bug in a transport")

    exporter = HttpExporter(
        URL, transport=httpx.MockTransport(explode), retry=FAST.single_attempt()
    )
    result = exporter.export(batch(2))
    assert len(result.retry) == 2
    assert "RuntimeError" in str(result.error)


def test_after_fork_starts_with_a_fresh_client_and_state() -> None:
    """In a forked child the exporter gets a new connection pool and a closed circuit."""
    server = Server(status(503))
    exporter = server.exporter(retry=RetryPolicy(max_attempts=1))
    exporter.export(batch(1))
    old_client = exporter.sender._client
    exporter.after_fork()
    assert exporter.sender._client is not old_client
    assert exporter.export(batch(1)).exported == 1
