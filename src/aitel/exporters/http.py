"""Batches of packets to an HTTP collector (``aitel collect`` or your own endpoint).

Wire format
-----------
``POST <endpoint>`` with ``Content-Type: application/json`` (gzip-compressed
above 1 KiB, unless the endpoint is on a loopback address) and
``Authorization: Bearer <token>``. The body is a JSON array of
packets, made by joining the bytes each packet was encoded to once::

    [{"packet_id": "...", ...},{"packet_id": "...", ...}]

Once the endpoint answers with ``Accept-Post`` naming ``application/x-ndjson``
(``aitel collect`` does), later batches go as one packet per line with that
content type, which the collector checks for about a third less CPU. Any
answer to lines without that header (an older collector behind the same URL)
switches back to arrays, and a batch it refused is sent again as an array.
``ndjson=False`` never sends lines; ``ndjson=True`` always does.

Answers
-------
* ``2xx`` - stored. A JSON body ``{"accepted": n, "duplicates": d,
  "rejected": [{"index": i, "packet_id": "...", "reason": "..."}]}`` (status
  200 or 207) reports a *partial success*: the listed packets were refused for
  good (counted as rejected, with their reasons), the rest were stored.
  Nothing is retried.
* ``413`` - the batch is too large: it is split in halves and each half is
  sent again (a single packet that is still too large is rejected).
* ``400 401 403 404`` and other 4xx except 408/413/429 - rejected for good,
  logged (rate-limited) with the server's message, never retried.
* ``408 429 502 503 504`` and connection errors - retried with backoff and
  jitter, honouring ``Retry-After``; when the retry budget runs out the batch
  is returned as transient (the pipeline spools it, or counts it dropped).
* Other statuses (500, 501, ...) - transient without immediate retries.

After a batch fails transiently the endpoint is treated as down for a
cool-down period (1 s doubling to 30 s, or the server's ``Retry-After``):
batches are handed back at once instead of waiting on a dead endpoint, so the
spool absorbs an outage at disk speed and memory stays bounded. The first
batch after the cool-down is a single probe attempt.

Every packet carries a unique ``packet_id``; delivery is at-least-once and
the collector deduplicates, which makes the stored result exactly-once.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..config import ConfigError, Settings
from .base import EncodedPacket, ExportResult
from .http_transport import HttpOutcome, HttpSender, SenderExporter
from .retry import RetryPolicy, is_rejection

JSON_CONTENT_TYPE = "application/json"
NDJSON_CONTENT_TYPE = "application/x-ndjson"
TOKEN_ENV = "AITEL_TOKEN"


@dataclass(frozen=True, slots=True)
class HttpExporterStats:
    """Counters of one exporter (this process)."""

    requests: int
    batches: int
    packets_sent: int
    packets_rejected: int
    packets_transient: int
    splits: int
    retries: int
    short_circuited: int
    bytes_sent: int
    last_error: str | None


class HttpExporter(SenderExporter):
    """Sends batches as JSON arrays; never raises (see the module docstring for the protocol).

    ``token`` defaults to ``AITEL_TOKEN``. ``retry`` is the per-batch
    :class:`RetryPolicy`; ``cooldown_s``/``max_cooldown_s`` bound how long an
    endpoint that just failed is skipped. ``transport`` takes any
    ``httpx.BaseTransport`` (``httpx.MockTransport`` in tests). ``gzip``:
    compress bodies over 1 KiB (True), never (False), or unless the endpoint
    is on a loopback address (None). ``ndjson``:
    send one packet per line once the endpoint says it takes them (None),
    never (False) or always (True).
    """

    _site = "exporter.http"

    def __init__(
        self,
        endpoint: str,
        *,
        token: str | None = None,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        gzip: bool | None = None,
        gzip_level: int = 1,
        verify: bool | ssl.SSLContext = True,
        headers: Mapping[str, str] | None = None,
        transport: Any = None,
        cooldown_s: float = 1.0,
        max_cooldown_s: float = 30.0,
        ndjson: bool | None = None,
    ) -> None:
        if not endpoint:
            raise ConfigError("the http exporter needs an endpoint (AITEL_ENDPOINT)")
        self.endpoint = endpoint
        self.policy = retry or RetryPolicy()
        self.cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self.ndjson = ndjson
        self._lines = bool(ndjson)
        self.sender = HttpSender(
            endpoint,
            token=token if token is not None else os.environ.get(TOKEN_ENV),
            timeout_s=timeout_s,
            gzip=gzip,
            gzip_level=gzip_level,
            verify=verify,
            headers=headers,
            transport=transport,
        )
        self._init_state()

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpExporter:
        """``AITEL_ENDPOINT`` and ``AITEL_TOKEN``."""
        if not settings.endpoint:
            raise ConfigError("AITEL_EXPORTER=http needs AITEL_ENDPOINT (the collector URL)")
        return cls(settings.endpoint, token=settings.token)

    # -- Exporter protocol ---------------------------------------------------------

    def stats(self) -> HttpExporterStats:
        c = self._counts
        return HttpExporterStats(**c, last_error=self._last_error)

    # -- sending -------------------------------------------------------------------------

    def _export(self, batch: list[EncodedPacket]) -> ExportResult:
        self._counts["batches"] += 1
        if self._closed:
            return self._transient(batch, "exporter is shut down")
        if self._interrupt.stopped:
            return self._transient(batch, "not sent: flush/shutdown deadline reached")
        now = time.monotonic()
        with self._lock:
            down_until = self._down_until
            probing = self._failures > 0
        if now < down_until:
            self._counts["short_circuited"] += len(batch)
            return self._transient(
                batch,
                f"endpoint down, next attempt in {down_until - now:.1f}s: {self._last_error}",
                retry_after_s=down_until - now,
            )
        policy = self.policy.single_attempt() if probing else self.policy
        return self._send(batch, policy)

    def _send(self, batch: list[EncodedPacket], policy: RetryPolicy) -> ExportResult:
        lines = _json_lines(batch) if self._lines else None
        if lines is not None:
            body, content_type = lines, NDJSON_CONTENT_TYPE
        else:
            body, content_type = _json_array(batch), JSON_CONTENT_TYPE
        outcome = self.sender.send(
            body, content_type=content_type, policy=policy, interrupt=self._interrupt
        )
        c = self._counts
        c["requests"] += outcome.attempts
        c["retries"] += outcome.attempts - 1
        c["bytes_sent"] += len(body) * outcome.answered  # not the attempts never connected
        if self.ndjson is None and outcome.status is not None:
            self._lines = _takes_lines(outcome.accept_post)
            if lines is not None and not self._lines and is_rejection(outcome.status):
                return self._send(batch, policy)  # refused as lines: once more as an array
        if outcome.ok:
            self._mark_up()
            return self._accepted(batch, outcome)
        if outcome.status == 413:
            self._mark_up()
            return self._split(batch, outcome)
        if is_rejection(outcome.status):
            self._mark_up()
            return self._rejected(batch, outcome)
        if not outcome.interrupted:
            self._mark_down(outcome.retry_after_s)
        message = outcome.describe()
        self._last_error = message
        return self._transient(batch, message, retry_after_s=outcome.retry_after_s)

    def _split(self, batch: list[EncodedPacket], outcome: HttpOutcome) -> ExportResult:
        if len(batch) == 1:
            size = len(batch[0].data)
            reason = f"{batch[0].packet_id}: larger than the collector accepts ({size} bytes)"
            return self._refuse(batch, outcome, [reason], rejected=1)
        self._counts["splits"] += 1
        middle = len(batch) // 2
        left = self._send(batch[:middle], self.policy)
        right = self._send(batch[middle:], self.policy)
        return _merge(left, right)

    def _accepted(self, batch: list[EncodedPacket], outcome: HttpOutcome) -> ExportResult:
        reasons = _rejections(batch, outcome.body)
        if not reasons:
            self._counts["packets_sent"] += len(batch)
            return ExportResult.ok(len(batch))
        rejected = len(reasons)
        self._counts["packets_sent"] += len(batch) - rejected
        self._counts["packets_rejected"] += rejected
        return ExportResult(
            exported=len(batch) - rejected,
            rejected=rejected,
            error=f"HTTP {outcome.status}: {rejected} of {len(batch)} packets rejected",
            rejections=tuple(reasons),
        )

    def _rejected(self, batch: list[EncodedPacket], outcome: HttpOutcome) -> ExportResult:
        reasons = _rejections(batch, outcome.body)
        return self._refuse(batch, outcome, reasons, rejected=len(batch))


def _json_array(batch: list[EncodedPacket]) -> bytes:
    """``[p1,p2,...]`` in one join: one buffer for the batch, not three (``b"[" + ... + b"]"``)."""
    parts = [b"["]
    for packet in batch:
        parts += (packet.data, b",")
    if batch:
        parts.pop()  # the last comma
    parts.append(b"]")
    return b"".join(parts)


def _json_lines(batch: list[EncodedPacket]) -> bytes | None:
    """One packet per line (``application/x-ndjson``); None if a packet spans lines."""
    body = b"\n".join([packet.data for packet in batch])
    return body if body.count(b"\n") == len(batch) - 1 else None


def _takes_lines(accept_post: str) -> bool:
    """Does an ``Accept-Post`` header name ``application/x-ndjson``?"""
    return any(
        part.partition(";")[0].strip().lower() == NDJSON_CONTENT_TYPE
        for part in accept_post.split(",")
    )


def _rejections(batch: list[EncodedPacket], body: bytes) -> list[str]:
    """``packet_id: reason`` for each packet of ``batch`` the response body lists as rejected."""
    if not body or not body.lstrip().startswith(b"{"):
        return []
    try:
        data = orjson.loads(body)
    except ValueError:
        return []
    entries = data.get("rejected") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return []
    by_id = {packet.packet_id: index for index, packet in enumerate(batch)}
    seen: set[int] = set()
    reasons: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        index = entry.get("index")
        if not (isinstance(index, int) and 0 <= index < len(batch)):
            index = by_id.get(str(entry.get("packet_id")))
        if index is None or index in seen:
            continue
        seen.add(index)
        reasons.append(f"{batch[index].packet_id}: {entry.get('reason', 'rejected')}")
    return reasons


def _merge(a: ExportResult, b: ExportResult) -> ExportResult:
    after = [t for t in (a.retry_after_s, b.retry_after_s) if t is not None]
    return ExportResult(
        exported=a.exported + b.exported,
        retry=(*a.retry, *b.retry),
        rejected=a.rejected + b.rejected,
        error=a.error or b.error,
        retry_after_s=max(after) if after else None,
        rejections=(*a.rejections, *b.rejections),
    )
