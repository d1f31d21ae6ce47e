"""One reusable HTTP sender for the exporters: bytes in, an :class:`HttpOutcome` out.

The sender knows nothing about packets or content types; the JSON exporter
(``aitel.exporters.http``) and the OTLP exporter both use it::

    sender = HttpSender("https://collector.example/v1/packets", token="...")
    outcome = sender.send(body, content_type="application/json",
                          policy=RetryPolicy(), interrupt=Interrupt())
    if outcome.ok: ...
    elif outcome.status == 413: ...          # split and resend
    elif is_rejection(outcome.status): ...   # final: 400/401/403/404...
    else: ...                                # transient: spool, retry later
    sender.close()

API
---
``HttpSender(endpoint, *, token=None, timeout_s=10.0, gzip=None, gzip_level=1,
verify=True, headers=None, transport=None)``
    One ``httpx.Client`` (connection reuse, keep-alive). ``token`` is sent as
    ``Authorization: Bearer`` (the sender reads no environment variables; the
    exporter decides where a token comes from). Bodies larger than
    ``gzip_min_bytes`` are gzip-compressed (``Content-Encoding: gzip``), at
    ``gzip_level`` 1 by default: about three times faster than level 5 for a
    few percent more bytes, the better trade on the application's CPU.
    ``gzip=None`` compresses unless the endpoint's host is a loopback address
    (``localhost``, ``127.0.0.0/8``, ``::1``): a sidecar collector gains
    nothing from it, and both ends pay (here, per 50 KB packet, about 150 µs
    to compress and 100 µs to decompress). TLS
    certificates are verified unless ``verify=False``; pass an
    ``ssl.SSLContext`` for a private CA. ``transport`` takes any
    ``httpx.BaseTransport`` (e.g. ``httpx.MockTransport`` in tests).
``post(body, *, content_type, interrupt=None) -> HttpOutcome``
    One attempt. The request runs on a daemon thread of the sender's so that
    the caller can stop waiting when ``interrupt`` is stopped or its deadline
    passes, even if the server accepted the connection and never answers (the
    abandoned request ends at its own timeout, and the next post gets a new
    thread). The thread is kept for the next post: starting one costs about
    0.2 ms of CPU here, a fifth of a whole request. Never raises.
``send(body, *, content_type, policy, interrupt=None) -> HttpOutcome``
    ``post`` under a :class:`~aitel.exporters.retry.RetryPolicy`. Never raises.
``after_fork()``
    Start over with a new client in a forked child (sockets are not shared).
``close()``
    Close the client.

:class:`HttpOutcome` carries ``status`` (None when no response arrived),
``body``, ``content_type``, ``accept_post``, ``retry_after_s``, ``error``, ``interrupted``,
``attempts`` and ``elapsed_s``; ``describe()`` gives a one-line summary
including the server's message.
"""

from __future__ import annotations

import abc

# socket.getaddrinfo imports the idna codec on first use. If that first use is
# on the request thread while the application forks, the child inherits the
# half-taken import lock and its own first request hangs forever: import now.
import encodings.idna  # noqa: F401
import gzip as gzip_module
import ipaddress
import logging
import queue
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from .._safety import internal_log, report_internal_error
from .._version import __version__
from ..config import ConfigError
from .base import EncodedPacket, ExportResult
from .retry import Interrupt, RetryPolicy, parse_retry_after

MAX_RESPONSE_BYTES = 1024 * 1024


def is_loopback(endpoint: str) -> bool:
    """Does ``endpoint``'s host name this machine (``localhost``, ``127.0.0.0/8``, ``::1``)?"""
    try:
        host = urlsplit(endpoint).hostname or ""
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _RequestThread:
    """A daemon thread that runs the sender's requests one after another.

    The sender claims it (``idle = False``, under its lock) before :meth:`run`;
    it is idle again before ``then`` tells the caller, so that the caller's
    next request finds it idle. A sender whose thread is still busy (with a
    request it gave up waiting for) starts a new one and lets the old one end
    after that request. (Not a ``ThreadPoolExecutor``: its threads are joined
    at interpreter exit, so an abandoned request would hold the exit until its
    timeout.)
    """

    __slots__ = ("_jobs", "idle")

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], None], Callable[[], None]] | None] = (
            queue.SimpleQueue()
        )
        self.idle = True
        threading.Thread(target=self._loop, name="aitel-http-request", daemon=True).start()

    def run(self, job: Callable[[], None], then: Callable[[], None]) -> None:
        """Run ``job`` on the thread, then call ``then`` there (whatever ``job`` did)."""
        self._jobs.put((job, then))

    def stop(self) -> None:
        """End the thread once its current job (if any) is done."""
        self._jobs.put(None)

    def _loop(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, then = item
            try:
                job()
            except Exception as exc:  # a job reports its own outcome; never lose the thread
                report_internal_error("HttpSender.request", exc)
            finally:
                self.idle = True
                then()


def _httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the http exporter needs httpx: pip install 'aitel[http]'") from exc
    return httpx


@dataclass(frozen=True, slots=True)
class HttpOutcome:
    """The result of one request (or of the last attempt of a retried one)."""

    status: int | None = None
    body: bytes = b""
    content_type: str = ""
    accept_post: str = ""
    """The ``Accept-Post`` header: the body types the endpoint takes."""
    retry_after_s: float | None = None
    error: str | None = None
    interrupted: bool = False
    attempts: int = 1
    answered: int = 0
    """Attempts the server answered (their body reached it), of ``attempts``."""
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def server_message(self, limit: int = 500) -> str:
        """The server's explanation: a JSON ``error``/``message``/``detail`` field or the text."""
        if not self.body:
            return ""
        text = self.body[:MAX_RESPONSE_BYTES].decode("utf-8", "replace").strip()
        if text.startswith("{"):
            try:
                import orjson

                data = orjson.loads(self.body)
            except ValueError:
                data = None
            if isinstance(data, dict):
                for key in ("error", "message", "detail"):
                    value = data.get(key)
                    if isinstance(value, str) and value:
                        text = value
                        break
        return text[:limit]

    def describe(self) -> str:
        """``HTTP 503: overloaded (3 attempts)`` or ``ConnectError: ... (2 attempts)``."""
        if self.status is not None:
            message = self.server_message()
            head = f"HTTP {self.status}" + (f": {message}" if message else "")
        else:
            head = self.error or "no response"
        return head if self.attempts <= 1 else f"{head} ({self.attempts} attempts)"


class HttpSender:
    """POSTs byte bodies to one endpoint over one pooled ``httpx.Client``. Never raises."""

    def __init__(
        self,
        endpoint: str,
        *,
        token: str | None = None,
        timeout_s: float = 10.0,
        gzip: bool | None = None,
        gzip_min_bytes: int = 1024,
        gzip_level: int = 1,
        verify: bool | ssl.SSLContext = True,
        headers: Mapping[str, str] | None = None,
        transport: Any = None,
    ) -> None:
        if type(gzip_level) is not int or not 1 <= gzip_level <= 9:
            raise ConfigError(f"gzip_level: 1 (fastest) to 9 (smallest), got {gzip_level!r}")
        self.endpoint = endpoint
        self.token = token or None
        self.timeout_s = timeout_s
        self.gzip = gzip if gzip is not None else not is_loopback(endpoint)
        self.gzip_min_bytes = gzip_min_bytes
        self.gzip_level = gzip_level
        self.verify = verify
        self.extra_headers = dict(headers or {})
        self._transport = transport
        self._client = self._new_client()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._thread: _RequestThread | None = None

    def _new_client(self) -> Any:
        httpx = _httpx()
        headers = {"User-Agent": f"aitel/{__version__}", **self.extra_headers}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return httpx.Client(
            headers=headers,
            verify=self.verify,
            timeout=self.timeout_s,
            transport=self._transport,
            follow_redirects=False,
            trust_env=True,
        )

    # -- one attempt -----------------------------------------------------------

    def post(
        self, body: bytes, *, content_type: str, interrupt: Interrupt | None = None
    ) -> HttpOutcome:
        """One POST; waits for the answer unless ``interrupt`` says stop first."""
        started = time.monotonic()
        if interrupt is not None and interrupt.stopped:
            return HttpOutcome(error="not sent: deadline reached", interrupted=True)
        try:
            payload, headers = self._encode(body, content_type)
        except Exception as exc:
            return HttpOutcome(error=f"{type(exc).__name__}: {exc}")
        timeout = self.timeout_s
        remaining = interrupt.remaining() if interrupt is not None else None
        if remaining is not None:
            timeout = max(min(timeout, remaining), 0.001)
        if interrupt is None:
            return self._request(payload, headers, timeout, started)

        box: list[HttpOutcome] = []
        done = threading.Event()

        def run() -> None:
            box.append(self._request(payload, headers, timeout, started))

        def finished() -> None:
            done.set()
            interrupt.notify()

        try:
            self._request_thread().run(run, finished)
        except RuntimeError:  # no new threads (interpreter shutting down): send inline
            return self._request(payload, headers, timeout, started)
        interrupt.wait(None, until=done.is_set)
        if done.is_set() and box:
            return box[0]
        return HttpOutcome(
            error=f"gave up waiting for {self.endpoint}: deadline reached",
            interrupted=True,
            elapsed_s=time.monotonic() - started,
        )

    def _request_thread(self) -> _RequestThread:
        """The request thread, claimed; a new one if the last is still busy (or there is none)."""
        with self._lock:
            thread = self._thread
            if thread is None or not thread.idle:
                if thread is not None:
                    thread.stop()  # it ends when the request it was left with does
                thread = self._thread = _RequestThread()
            thread.idle = False
            return thread

    def _encode(self, body: bytes, content_type: str) -> tuple[bytes, dict[str, str]]:
        headers = {"Content-Type": content_type}
        if self.gzip and len(body) >= self.gzip_min_bytes:
            headers["Content-Encoding"] = "gzip"
            return gzip_module.compress(body, compresslevel=self.gzip_level, mtime=0), headers
        return body, headers

    def _request(
        self, payload: bytes, headers: dict[str, str], timeout: float, started: float
    ) -> HttpOutcome:
        with self._lock:
            self._in_flight += 1
            client = self._client
        try:
            response = client.post(self.endpoint, content=payload, headers=headers, timeout=timeout)
            body = response.content[:MAX_RESPONSE_BYTES]
            return HttpOutcome(
                status=response.status_code,
                body=body,
                content_type=response.headers.get("content-type", ""),
                accept_post=response.headers.get("accept-post", ""),
                retry_after_s=parse_retry_after(response.headers.get("retry-after")),
                elapsed_s=time.monotonic() - started,
            )
        except Exception as exc:  # connection refused/reset, timeouts, TLS, closed client
            return HttpOutcome(
                error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                elapsed_s=time.monotonic() - started,
            )
        finally:
            with self._lock:
                self._in_flight -= 1

    # -- with retries ------------------------------------------------------------

    def send(
        self,
        body: bytes,
        *,
        content_type: str,
        policy: RetryPolicy,
        interrupt: Interrupt | None = None,
    ) -> HttpOutcome:
        """POST with retries under ``policy``; the last outcome, with ``attempts`` filled in."""
        started = time.monotonic()
        attempts = answered = 0
        signal = interrupt or Interrupt()

        def attempt() -> HttpOutcome:
            nonlocal attempts, answered
            attempts += 1
            result = self.post(body, content_type=content_type, interrupt=signal)
            if result.status is not None:
                answered += 1
            return result

        try:
            outcome = policy.run(attempt, interrupt=signal)
        except Exception as exc:
            outcome = HttpOutcome(error=f"{type(exc).__name__}: {exc}")
        return replace(
            outcome,
            attempts=max(attempts, 1),
            answered=answered,
            elapsed_s=time.monotonic() - started,
        )

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Requests still running (abandoned ones included)."""
        return self._in_flight

    def after_fork(self) -> None:
        """A forked child gets its own client; the parent's sockets are left alone."""
        self._lock = threading.Lock()
        self._in_flight = 0
        self._thread = None  # the parent's thread does not exist here
        self._client = self._new_client()

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.stop()
        try:
            self._client.close()
        except Exception:  # closing must not fail the caller
            return


class SenderExporter(abc.ABC):
    """The exporter protocol around an :class:`HttpSender`, shared by the HTTP and OTLP exporters.

    Subclasses set ``sender``, extend ``_COUNTERS`` if they count more, implement ``_export`` (one
    batch, may raise) and call ``_init_state`` once configured;
    this class keeps the contract: ``export`` never raises, ``shutdown``
    stops retries at once, deadlines bound flush and shutdown, and a forked
    child gets a new client.
    """

    sender: HttpSender
    policy: RetryPolicy
    cooldown_s: float
    max_cooldown_s: float
    _configured_policy: RetryPolicy | None = None
    _interrupt: Interrupt
    _closed: bool
    _lock: threading.Lock
    _failures: int
    _down_until: float
    _counts: dict[str, int]
    _last_error: str | None
    _site = "exporter.http"

    _COUNTERS: tuple[str, ...] = (
        "requests",
        "batches",
        "packets_sent",
        "packets_rejected",
        "packets_transient",
        "splits",
        "retries",
        "short_circuited",
        "bytes_sent",
    )
    """The names of the counters (``stats()``); subclasses add their own."""

    def _init_state(self) -> None:
        """Fresh per-process state: at construction and in a forked child."""
        self._interrupt = Interrupt()
        self._lock = threading.Lock()
        self._closed = False
        self._failures = 0
        self._down_until = 0.0
        self._counts = dict.fromkeys(self._COUNTERS, 0)
        self._last_error = None

    @abc.abstractmethod
    def _export(self, batch: list[EncodedPacket]) -> ExportResult: ...

    def export(self, batch: Sequence[EncodedPacket]) -> ExportResult:
        if not batch:
            return ExportResult.ok(0)
        try:
            return self._export(list(batch))
        except Exception as exc:  # the exporter contract: never raise
            report_internal_error(self._site, exc)
            return ExportResult.transient(batch, f"{type(exc).__name__}: {exc}")

    def force_flush(self, timeout_s: float) -> bool:
        """Nothing is buffered here: every ``export`` call finishes before returning."""
        return not self._closed

    def shutdown(self, timeout_s: float) -> None:
        """Stop retrying at once, hand anything in flight back as transient, close the client."""
        self._closed = True
        self._interrupt.stop()
        if self.sender.in_flight == 0:
            self.sender.close()

    def limit_retries(self, max_elapsed_s: float | None) -> None:
        """Retry a batch in place for at most ``max_elapsed_s``; None: as configured.

        The pipeline calls this when it has a spool: a batch the destination
        does not take by then is handed back, spooled and replayed later,
        instead of keeping every request queued behind it in memory.
        """
        configured = self._configured_policy or self.policy
        self._configured_policy = configured
        self.policy = configured if max_elapsed_s is None else configured.at_most(max_elapsed_s)

    def set_deadline(self, deadline: float | None) -> None:
        """Give up retries and waits at ``deadline`` (``time.monotonic()``); None removes it.

        The pipeline sets this during ``flush``/``shutdown`` so that they end
        within their budget even when the receiver accepts connections and
        never answers.
        """
        self._interrupt.set_deadline(deadline)

    def after_fork(self) -> None:
        """Called by the pipeline in a forked child: new client, fresh state."""
        self._init_state()
        self.sender.after_fork()

    # -- outcomes shared by the subclasses ----------------------------------------------

    def _refuse(
        self,
        batch: list[EncodedPacket],
        outcome: HttpOutcome,
        reasons: list[str],
        rejected: int | None = None,
    ) -> ExportResult:
        """The destination refused ``rejected`` packets (all of ``batch`` by default): no retry."""
        count = len(batch) if rejected is None else rejected
        message = outcome.describe()
        self._last_error = message
        self._counts["packets_rejected"] += count
        internal_log.log(
            logging.WARNING,
            f"{self._site}-rejected-{outcome.status}",
            f"aitel: {self.sender.endpoint} rejected {count} packets ({message}); not retried",
        )
        return ExportResult(exported=0, rejected=count, error=message, rejections=tuple(reasons))

    def _transient(
        self, batch: list[EncodedPacket], message: str, retry_after_s: float | None = None
    ) -> ExportResult:
        self._counts["packets_transient"] += len(batch)
        return ExportResult.transient(batch, message, retry_after_s)

    def _mark_up(self) -> None:
        with self._lock:
            self._failures = 0
            self._down_until = 0.0

    def _mark_down(self, retry_after_s: float | None) -> None:
        """Skip the endpoint for a growing cool-down (at least ``Retry-After``)."""
        with self._lock:
            self._failures += 1
            backoff = self.cooldown_s * 2.0 ** min(self._failures - 1, 30)
            cooldown = min(backoff, self.max_cooldown_s)
            self._down_until = time.monotonic() + max(cooldown, retry_after_s or 0.0)
