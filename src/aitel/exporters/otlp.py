"""Context packets as OpenTelemetry traces over OTLP/HTTP.

Each packet becomes one trace (:func:`aitel.otlp.packet_to_trace`); a batch
of packets becomes one ``ExportTraceServiceRequest`` (protobuf by default,
OTLP/JSON on request), POSTed with the same sender and retry policy as the
HTTP exporter (:mod:`aitel.exporters.http_transport`,
:mod:`aitel.exporters.retry`). So the pipeline's spool works the same way:
a batch that cannot be delivered is handed back as transient and replayed
later, as packets, and mapped again (span ids are deterministic, so a
replayed packet gives the same spans).

Answers
-------
* ``2xx`` - stored. An ``ExportTraceServiceResponse`` with ``partial_success``
  is logged and counted (``partial_rejected_spans``); spans cannot be matched
  back to packets, so the batch still counts as exported.
* ``413`` - split in halves and sent again; a single packet still too large
  is rejected.
* ``400 401 403 404 415`` and other 4xx except 408/413/429 - rejected for
  good (Phoenix answers 415 to OTLP/JSON), logged, never retried.
* ``408 429 502 503 504`` and connection errors - retried with backoff,
  honouring ``Retry-After``; then transient (spooled or counted dropped).
  After a transient failure the endpoint cools down (1 s doubling to 30 s)
  and the next batch is a single probe.

A packet that cannot be decoded or mapped is rejected on its own (with its
``packet_id`` in the reason); the others are sent.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from aitel._safety import internal_log, report_internal_error
from aitel.config import ConfigError, Settings
from aitel.otlp.config import OtlpSettings, parse_key_values
from aitel.otlp.encoding import (
    decode_partial_success,
    encode_json,
    encode_protobuf,
    require_protobuf,
)
from aitel.otlp.mapping import DEFAULT_OPTIONS, MappingOptions, packet_to_trace
from aitel.otlp.model import AttributeValue, PacketTrace

from .base import EncodedPacket, ExportResult
from .http_transport import HttpOutcome, HttpSender, SenderExporter
from .retry import RetryPolicy, is_rejection

DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class OtlpExporterStats:
    """Counters of one exporter (this process)."""

    requests: int
    batches: int
    packets_sent: int
    packets_rejected: int
    packets_transient: int
    spans_sent: int
    truncated_values: int
    """Attribute values shortened or list items left out while mapping."""
    partial_rejected_spans: int
    splits: int
    retries: int
    short_circuited: int
    bytes_sent: int
    last_error: str | None


class OtlpExporter(SenderExporter):
    """Sends each packet as one OpenTelemetry trace; never raises.

    Arguments win over the ``OTEL_*`` variables (see :mod:`aitel.otlp.config`).
    ``project_name`` sets the ``openinference.project.name`` resource
    attribute (the Phoenix project; ``PHOENIX_PROJECT_NAME`` otherwise) and,
    with ``project_header=True``, also the ``x-project-name`` header.
    ``token`` is sent as ``Authorization: Bearer`` unless ``headers`` (or
    ``OTEL_EXPORTER_OTLP_HEADERS``) already carry an ``Authorization`` header.
    """

    _site = "exporter.otlp"
    wants_packet_dicts = True  # mapped from the dicts, not decoded again from the bytes
    _COUNTERS = (
        *SenderExporter._COUNTERS,
        "spans_sent",
        "truncated_values",
        "partial_rejected_spans",
    )

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        service_name: str | None = None,
        resource_attributes: Mapping[str, AttributeValue] | None = None,
        project_name: str | None = None,
        project_header: bool = False,
        token: str | None = None,
        timeout_s: float | None = None,
        compression: str | None = None,
        encoding: str | None = None,
        retry: RetryPolicy | None = None,
        mapping: MappingOptions = DEFAULT_OPTIONS,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        verify: bool | ssl.SSLContext = True,
        transport: Any = None,
        cooldown_s: float = 1.0,
        max_cooldown_s: float = 30.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = OtlpSettings.resolve(
            endpoint=endpoint,
            headers=headers,
            service_name=service_name,
            resource_attributes=resource_attributes,
            project_name=project_name,
            project_header=project_header,
            timeout_s=timeout_s,
            compression=compression,
            encoding=encoding,
            env=env,
        )
        if self.settings.encoding == "protobuf":
            require_protobuf()
        self.mapping = mapping
        self.policy = retry or RetryPolicy()
        self.max_request_bytes = max_request_bytes
        self.cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        if any(key.lower() == "authorization" for key in self.settings.headers):
            token = None  # an explicit Authorization header (e.g. Basic for Langfuse) wins
        self.sender = HttpSender(
            self.settings.endpoint,
            token=token or "",  # "" keeps the sender from reading AITEL_TOKEN by itself
            timeout_s=self.settings.timeout_s,
            gzip=self.settings.compression == "gzip",
            verify=verify,
            headers=self.settings.headers,
            transport=transport,
        )
        self._encode = encode_protobuf if self.settings.encoding == "protobuf" else encode_json
        self._init_state()

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint

    @classmethod
    def from_settings(
        cls, settings: Settings, env: Mapping[str, str] | None = None
    ) -> OtlpExporter:
        """``AITEL_EXPORTER=otlp``: the ``OTEL_*`` variables, with ``AITEL_ENDPOINT`` and
        ``AITEL_TOKEN`` taking precedence when set; ``AITEL_ENVIRONMENT`` and
        ``AITEL_APP_VERSION`` become the ``deployment.environment.name`` and
        ``service.version`` resource attributes unless ``OTEL_RESOURCE_ATTRIBUTES`` has them.
        """
        source = os.environ if env is None else env
        declared = parse_key_values(source.get("OTEL_RESOURCE_ATTRIBUTES", ""))
        resource: dict[str, AttributeValue] = {}
        if settings.environment and "deployment.environment.name" not in declared:
            resource["deployment.environment.name"] = settings.environment
        if settings.app_version and "service.version" not in declared:
            resource["service.version"] = settings.app_version
        try:
            return cls(
                settings.endpoint or None,
                token=settings.token,
                resource_attributes=resource,
                env=source,
            )
        except ConfigError as exc:
            raise ConfigError(f"AITEL_EXPORTER=otlp: {exc}") from exc

    # -- Exporter protocol -------------------------------------------------------------

    def stats(self) -> OtlpExporterStats:
        return OtlpExporterStats(**self._counts, last_error=self._last_error)

    # -- mapping -------------------------------------------------------------------------

    def to_traces(
        self, batch: Sequence[EncodedPacket]
    ) -> tuple[list[tuple[EncodedPacket, PacketTrace]], list[str]]:
        """Each packet's trace; ``packet_id: reason`` for those that could not be mapped."""
        mapped: list[tuple[EncodedPacket, PacketTrace]] = []
        failures: list[str] = []
        for encoded in batch:
            try:
                packet = encoded.packet
                if packet is None:
                    packet = orjson.loads(encoded.data)
                if not isinstance(packet, dict):
                    raise TypeError(f"expected a JSON object, got {type(packet).__name__}")
                trace = packet_to_trace(packet, self.mapping)
            except Exception as exc:  # one bad packet must not hold back the batch
                report_internal_error("exporter.otlp.mapping", exc)
                failures.append(f"{encoded.packet_id}: not mappable: {type(exc).__name__}: {exc}")
                continue
            mapped.append((encoded, trace))
        return mapped, failures

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
            wait = down_until - now
            message = f"endpoint unavailable, next attempt in {wait:.1f}s: {self._last_error}"
            return self._transient(batch, message, retry_after_s=wait)
        mapped, failures = self.to_traces(batch)
        if failures:
            self._counts["packets_rejected"] += len(failures)
        unmappable = ExportResult(
            exported=0,
            rejected=len(failures),
            error=failures[0] if failures else None,
            rejections=tuple(failures),
        )
        if not mapped:
            return unmappable
        policy = self.policy.single_attempt() if probing else self.policy
        return _merge(self._send(mapped, policy), unmappable)

    def _send(
        self, mapped: list[tuple[EncodedPacket, PacketTrace]], policy: RetryPolicy
    ) -> ExportResult:
        traces = [trace for _, trace in mapped]
        body = self._encode(traces, self.settings.resource)
        if len(body) > self.max_request_bytes and len(mapped) > 1:
            return self._split(mapped, None)
        outcome = self.sender.send(
            body,
            content_type=self.settings.content_type,
            policy=policy,
            interrupt=self._interrupt,
        )
        c = self._counts
        c["requests"] += outcome.attempts
        c["retries"] += outcome.attempts - 1
        c["bytes_sent"] += len(body) * outcome.answered  # not the attempts never connected
        batch = [encoded for encoded, _ in mapped]
        if outcome.ok:
            self._mark_up()
            return self._accepted(traces, outcome)
        if outcome.status == 413:
            self._mark_up()
            return self._split(mapped, outcome)
        if is_rejection(outcome.status):
            self._mark_up()
            return self._refuse(batch, outcome, [])
        if not outcome.interrupted:
            self._mark_down(outcome.retry_after_s)
        message = outcome.describe()
        self._last_error = message
        return self._transient(batch, message, retry_after_s=outcome.retry_after_s)

    def _split(
        self, mapped: list[tuple[EncodedPacket, PacketTrace]], outcome: HttpOutcome | None
    ) -> ExportResult:
        if len(mapped) == 1:
            encoded = mapped[0][0]
            reason = f"{encoded.packet_id}: trace larger than the endpoint accepts"
            if outcome is None:
                outcome = HttpOutcome(status=413, error="request too large")
            return self._refuse([encoded], outcome, [reason])
        self._counts["splits"] += 1
        middle = len(mapped) // 2
        left = self._send(mapped[:middle], self.policy)
        right = self._send(mapped[middle:], self.policy)
        return _merge(left, right)

    def _accepted(self, traces: list[PacketTrace], outcome: HttpOutcome) -> ExportResult:
        c = self._counts
        c["packets_sent"] += len(traces)
        c["spans_sent"] += sum(len(trace.spans) for trace in traces)
        c["truncated_values"] += sum(trace.truncated_values for trace in traces)
        rejected_spans, message = decode_partial_success(outcome.body, self.settings.encoding)
        if rejected_spans or message:
            c["partial_rejected_spans"] += rejected_spans
            note = f"partial success: {rejected_spans} spans rejected" + (
                f": {message}" if message else ""
            )
            self._last_error = note
            internal_log.log(
                logging.WARNING, "otlp-partial-success", f"aitel: {self.endpoint}: {note}"
            )
            return ExportResult(exported=len(traces), error=note)
        return ExportResult.ok(len(traces))


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
