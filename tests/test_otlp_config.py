"""OTLP settings from arguments and the standard OTEL_* variables."""

from __future__ import annotations

import pytest

from aitel.config import ConfigError, Settings
from aitel.exporters.otlp import OtlpExporter
from aitel.otlp import (
    DEFAULT_ENDPOINT,
    OtlpSettings,
    parse_key_values,
    resource_for,
    traces_endpoint,
)


def test_default_endpoint_is_the_local_collector() -> None:
    """With nothing configured, spans go to http://localhost:4318/v1/traces."""
    assert traces_endpoint(None, {}) == DEFAULT_ENDPOINT == "http://localhost:4318/v1/traces"


def test_generic_endpoint_gets_the_traces_path() -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT is a base URL; /v1/traces is appended."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}
    assert traces_endpoint(None, env) == "http://collector:4318/v1/traces"
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example/api/public/otel"}
    assert traces_endpoint(None, env) == "https://otlp.example/api/public/otel/v1/traces"


def test_traces_endpoint_is_used_as_is_and_wins() -> None:
    """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is the full URL and beats the generic one."""
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://generic:4318",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:9999/custom",
    }
    assert traces_endpoint(None, env) == "http://traces:9999/custom"


def test_explicit_endpoint_wins_and_bare_hosts_get_the_path() -> None:
    """An argument beats the variables; http://host:port alone gets /v1/traces."""
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:1/v1/traces"}
    assert traces_endpoint("http://127.0.0.1:6006", env) == "http://127.0.0.1:6006/v1/traces"
    assert (
        traces_endpoint("http://127.0.0.1:6006/v1/traces", env) == "http://127.0.0.1:6006/v1/traces"
    )


def test_non_http_endpoint_is_a_config_error() -> None:
    """gRPC-style or schemeless endpoints are refused with a clear message."""
    with pytest.raises(ConfigError, match="http"):
        traces_endpoint("localhost:4317", {})
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_ENDPOINT"):
        traces_endpoint(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "grpc://x:4317"})


def test_headers_are_percent_decoded_and_merged() -> None:
    """Generic and traces headers merge (traces win per key); arguments win over both."""
    env = {
        "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Basic%20abc%3D,x-a=1",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-a=2, x-b = 3",
    }
    settings = OtlpSettings.resolve(env=env, headers={"x-b": "4"})
    assert dict(settings.headers) == {"Authorization": "Basic abc=", "x-a": "2", "x-b": "4"}


def test_malformed_header_entries_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    """An entry without '=' is ignored with a warning, the rest still apply."""
    assert parse_key_values("a=1,broken,b=2", what="X") == {"a": "1", "b": "2"}
    assert "broken" in caplog.text


def test_resource_attributes_service_name_and_project() -> None:
    """service.name: argument > OTEL_SERVICE_NAME > OTEL_RESOURCE_ATTRIBUTES; project -> openinference."""
    env = {
        "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs,deployment.environment.name=prod",
        "OTEL_SERVICE_NAME": "from-env",
    }
    resource = resource_for(env=env, project_name="rag-eval")
    assert resource["service.name"] == "from-env"
    assert resource["deployment.environment.name"] == "prod"
    assert resource["openinference.project.name"] == "rag-eval"
    assert resource["telemetry.sdk.name"] == "aitel"
    assert resource_for(env=env, service_name="arg")["service.name"] == "arg"
    assert resource_for(env={})["service.name"] == "unknown_service:python"


def test_project_from_phoenix_variable_and_optional_header() -> None:
    """PHOENIX_PROJECT_NAME names the project; project_header=True also sends x-project-name."""
    settings = OtlpSettings.resolve(env={"PHOENIX_PROJECT_NAME": "p1"})
    assert settings.resource["openinference.project.name"] == "p1"
    assert "x-project-name" not in settings.headers
    settings = OtlpSettings.resolve(env={}, project_name="p2", project_header=True)
    assert settings.headers["x-project-name"] == "p2"


def test_timeout_compression_and_protocol() -> None:
    """Timeout is in milliseconds; gzip/none; http/protobuf or http/json; grpc is refused."""
    env = {
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
    }
    settings = OtlpSettings.resolve(env=env)
    assert (settings.timeout_s, settings.compression, settings.encoding) == (2.5, "gzip", "json")
    assert settings.content_type == "application/json"
    default = OtlpSettings.resolve(env={})
    assert (default.timeout_s, default.compression, default.encoding) == (10.0, "none", "protobuf")
    assert default.content_type == "application/x-protobuf"
    with pytest.raises(ConfigError, match="gRPC"):
        OtlpSettings.resolve(env={"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    with pytest.raises(ConfigError, match="milliseconds"):
        OtlpSettings.resolve(env={"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match="compression"):
        OtlpSettings.resolve(env={}, compression="zstd")


def test_from_settings_uses_aitel_settings_first() -> None:
    """AITEL_ENDPOINT/AITEL_TOKEN win; environment and app version become resource attributes."""
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://ignored:4318",
        "OTEL_RESOURCE_ATTRIBUTES": "service.version=9",
    }
    settings = Settings(
        exporter="otlp",
        endpoint="http://127.0.0.1:6006",
        token="t0k",
        environment="prod",
        app_version="1.2",
    )
    exporter = OtlpExporter.from_settings(settings, env=env)
    try:
        assert exporter.endpoint == "http://127.0.0.1:6006/v1/traces"
        assert exporter.sender.token == "t0k"
        assert exporter.settings.resource["deployment.environment.name"] == "prod"
        assert exporter.settings.resource["service.version"] == "9"
    finally:
        exporter.shutdown(1.0)


def test_from_settings_falls_back_to_otel_variables() -> None:
    """Without AITEL_ENDPOINT the OTEL_* variables decide; no token is sent by default."""
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}
    exporter = OtlpExporter.from_settings(Settings(exporter="otlp"), env=env)
    try:
        assert exporter.endpoint == "http://collector:4318/v1/traces"
        assert not exporter.sender.token
    finally:
        exporter.shutdown(1.0)


def test_make_exporter_builds_the_otlp_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    """AITEL_EXPORTER=otlp goes through make_exporter to OtlpExporter.from_settings."""
    from aitel.tracer import make_exporter

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    exporter = make_exporter(Settings(exporter="otlp"))
    try:
        assert isinstance(exporter, OtlpExporter)
        assert exporter.endpoint == "http://127.0.0.1:1/v1/traces"
    finally:
        exporter.shutdown(1.0)


def test_missing_protobuf_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without opentelemetry-proto the protobuf exporter fails at construction, with the fix."""
    import sys

    monkeypatch.setitem(
        sys.modules, "opentelemetry.proto.collector.trace.v1.trace_service_pb2", None
    )
    with pytest.raises(ImportError, match=r"pip install 'aitel\[otlp\]'"):
        OtlpExporter(env={})
    exporter = OtlpExporter(env={}, encoding="json")  # OTLP/JSON needs no protobuf
    try:
        assert exporter.settings.content_type == "application/json"
    finally:
        exporter.shutdown(1.0)


def test_explicit_authorization_header_beats_the_token() -> None:
    """AITEL_TOKEN does not override an Authorization header from OTEL_EXPORTER_OTLP_HEADERS."""
    env = {"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Basic%20cGs6c2s="}
    exporter = OtlpExporter.from_settings(Settings(exporter="otlp", token="t0k"), env=env)
    try:
        assert not exporter.sender.token
        assert exporter.settings.headers["Authorization"] == "Basic cGs6c2s="
    finally:
        exporter.shutdown(1.0)
