"""OTLP/HTTP settings from arguments or the standard ``OTEL_*`` variables.

Arguments win over variables; signal-specific variables
(``OTEL_EXPORTER_OTLP_TRACES_*``) win over the generic ones.

=============================================  ===========================================
variable                                       meaning
=============================================  ===========================================
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``         full URL of the traces endpoint, used as is
``OTEL_EXPORTER_OTLP_ENDPOINT``                base URL; ``/v1/traces`` is appended
``OTEL_EXPORTER_OTLP_TRACES_HEADERS``          ``key=value,key=value`` (values percent-decoded)
``OTEL_EXPORTER_OTLP_HEADERS``                 the same, for every signal (traces keys win)
``OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT``        per-request timeout in milliseconds (10000)
``OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION``    ``gzip`` or ``none`` (``none``)
``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL``       ``http/protobuf`` (default) or ``http/json``
``OTEL_SERVICE_NAME``                          ``service.name`` resource attribute
``OTEL_RESOURCE_ATTRIBUTES``                   ``key=value,...`` resource attributes
``PHOENIX_PROJECT_NAME``                       ``openinference.project.name`` (Phoenix project)
=============================================  ===========================================
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit

from aitel._version import __version__
from aitel.config import ConfigError

from .model import AttributeValue

logger = logging.getLogger("aitel")

DEFAULT_ENDPOINT = "http://localhost:4318/v1/traces"
TRACES_PATH = "/v1/traces"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_SERVICE_NAME = "unknown_service:python"
PROJECT_RESOURCE_ATTRIBUTE = "openinference.project.name"
PROJECT_HEADER = "x-project-name"

Encoding = Literal["protobuf", "json"]
Compression = Literal["gzip", "none"]

_COMPRESSION_VARS = ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION")
_PROTOCOL_VARS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
_PROTOCOLS: dict[str, Encoding] = {"http/protobuf": "protobuf", "http/json": "json"}


def parse_key_values(text: str, *, what: str = "OTEL key=value list") -> dict[str, str]:
    """``key=value,key=value`` (W3C baggage style, percent-decoded); bad entries are skipped."""
    pairs: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = unquote(key).strip()
        if not sep or not key:
            logger.warning("aitel: ignoring malformed entry %r in %s", item.strip(), what)
            continue
        pairs[key] = unquote(value).strip()
    return pairs


def _env(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name)
        if value is not None and value.strip():
            return value.strip()
    return None


def _check_url(url: str, source: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{source}: expected an http(s) URL, got {url!r}")
    return url


def traces_endpoint(endpoint: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The URL spans are POSTed to.

    An explicit ``endpoint`` is used as is, except that a bare ``http://host:port``
    gets ``/v1/traces``. ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is used as is;
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` is a base URL that gets ``/v1/traces``.
    """
    source = os.environ if env is None else env
    if endpoint:
        _check_url(endpoint, "endpoint")
        if urlsplit(endpoint).path in ("", "/"):
            return endpoint.rstrip("/") + TRACES_PATH
        return endpoint
    specific = _env(source, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if specific:
        return _check_url(specific, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    base = _env(source, "OTEL_EXPORTER_OTLP_ENDPOINT")
    if base:
        _check_url(base, "OTEL_EXPORTER_OTLP_ENDPOINT")
        return base.rstrip("/") + TRACES_PATH
    return DEFAULT_ENDPOINT


def _timeout(env: Mapping[str, str]) -> float:
    raw = _env(env, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
    if raw is None:
        return DEFAULT_TIMEOUT_S
    try:
        millis = float(raw)
    except ValueError as exc:
        raise ConfigError(
            f"OTEL_EXPORTER_OTLP_TIMEOUT: expected milliseconds, got {raw!r}"
        ) from exc
    if millis <= 0:
        raise ConfigError(f"OTEL_EXPORTER_OTLP_TIMEOUT: must be positive, got {raw!r}")
    return millis / 1000.0


def _compression(value: str | None) -> Compression:
    lowered = (value or "none").strip().lower()
    if lowered == "gzip":
        return "gzip"
    if lowered in ("none", ""):
        return "none"
    raise ConfigError(f"OTLP compression: use gzip or none, got {value!r}")


def _encoding(value: str | None) -> Encoding:
    lowered = (value or "http/protobuf").strip().lower()
    if lowered in ("protobuf", "json"):
        return "protobuf" if lowered == "protobuf" else "json"
    if lowered in _PROTOCOLS:
        return _PROTOCOLS[lowered]
    if lowered == "grpc":
        raise ConfigError("OTLP over gRPC is not supported: use http/protobuf (usually port 4318)")
    raise ConfigError(f"OTLP protocol: use http/protobuf or http/json, got {value!r}")


@dataclass(frozen=True)
class OtlpSettings:
    """Everything the OTLP exporter needs to know about its destination."""

    endpoint: str = DEFAULT_ENDPOINT
    headers: Mapping[str, str] = field(default_factory=dict)
    resource: Mapping[str, AttributeValue] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S
    compression: Compression = "none"
    encoding: Encoding = "protobuf"
    project_name: str | None = None

    @property
    def content_type(self) -> str:
        return "application/x-protobuf" if self.encoding == "protobuf" else "application/json"

    @classmethod
    def resolve(
        cls,
        *,
        endpoint: str | None = None,
        headers: Mapping[str, str] | None = None,
        service_name: str | None = None,
        resource_attributes: Mapping[str, AttributeValue] | None = None,
        project_name: str | None = None,
        project_header: bool = False,
        timeout_s: float | None = None,
        compression: str | None = None,
        encoding: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> OtlpSettings:
        """Arguments first, then ``OTEL_*`` variables (from ``env``, default ``os.environ``)."""
        source = os.environ if env is None else env
        merged_headers = parse_key_values(
            _env(source, "OTEL_EXPORTER_OTLP_HEADERS") or "", what="OTEL_EXPORTER_OTLP_HEADERS"
        )
        merged_headers.update(
            parse_key_values(
                _env(source, "OTEL_EXPORTER_OTLP_TRACES_HEADERS") or "",
                what="OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            )
        )
        merged_headers.update(headers or {})
        project = project_name or _env(source, "PHOENIX_PROJECT_NAME")
        if project and project_header:
            merged_headers.setdefault(PROJECT_HEADER, project)
        if timeout_s is not None and timeout_s <= 0:
            raise ConfigError(f"timeout_s must be positive, got {timeout_s!r}")
        return cls(
            endpoint=traces_endpoint(endpoint, source),
            headers=merged_headers,
            resource=resource_for(
                service_name=service_name,
                attributes=resource_attributes,
                project_name=project,
                env=source,
            ),
            timeout_s=_timeout(source) if timeout_s is None else float(timeout_s),
            compression=_compression(compression or _env(source, *_COMPRESSION_VARS)),
            encoding=_encoding(encoding or _env(source, *_PROTOCOL_VARS)),
            project_name=project,
        )


def resource_for(
    *,
    service_name: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
    project_name: str | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, AttributeValue]:
    """Resource attributes; later sources win.

    SDK identity, then ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME``,
    ``attributes``, ``service_name``; ``service.name`` defaults to
    ``unknown_service:python``; ``project_name`` becomes
    ``openinference.project.name``.
    """
    source = os.environ if env is None else env
    resource: dict[str, AttributeValue] = {
        "telemetry.sdk.name": "aitel",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": __version__,
    }
    resource.update(
        parse_key_values(
            _env(source, "OTEL_RESOURCE_ATTRIBUTES") or "", what="OTEL_RESOURCE_ATTRIBUTES"
        )
    )
    env_service = _env(source, "OTEL_SERVICE_NAME")
    if env_service:
        resource["service.name"] = env_service
    resource.update(attributes or {})
    if service_name:
        resource["service.name"] = service_name
    resource.setdefault("service.name", DEFAULT_SERVICE_NAME)
    if project_name:
        resource[PROJECT_RESOURCE_ATTRIBUTE] = project_name
    return resource
