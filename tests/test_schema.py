"""The published JSON Schema is the pydantic model's, and packets follow it."""

from __future__ import annotations

from pathlib import Path

import orjson

from aitel import ContextPacket, json_schema
from aitel.cli import main

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "context-packet.v1.json"


def test_committed_schema_is_in_sync() -> None:
    """schemas/context-packet.v1.json equals what the models generate (run `aitel schema -o ...`)."""
    assert orjson.loads(SCHEMA.read_bytes()) == orjson.loads(orjson.dumps(json_schema()))


def test_schema_command_prints_the_schema(capsys) -> None:
    assert main(["schema"]) == 0
    assert orjson.loads(capsys.readouterr().out) == orjson.loads(orjson.dumps(json_schema()))


def test_seed_fields_are_required_top_level() -> None:
    """The seed's field names (request_id, status, error_message, payload) are part of v1."""
    props = json_schema()["properties"]
    for name in (
        "request_id",
        "timestamp",
        "status",
        "error_message",
        "pipeline_metadata",
        "payload",
        "performance",
    ):
        assert name in props
    assert {"packet_id", "request_id", "trace_id", "status", "performance"} <= set(
        json_schema()["required"]
    )


def test_minor_versions_validate_major_does_not() -> None:
    base = {
        "packet_id": "p",
        "request_id": "r",
        "trace_id": "0" * 32,
        "timestamp": "2026-01-01T00:00:00Z",
        "end_time": "2026-01-01T00:00:01Z",
        "status": "SUCCESS",
        "performance": {"latency_ms": 1.0},
        "producer": {"sdk_version": "0.1.0"},
    }
    ContextPacket.model_validate({**base, "schema_version": "1.7"})
    try:
        ContextPacket.model_validate({**base, "schema_version": "2.0"})
    except ValueError:
        pass
    else:  # pragma: no cover
        raise AssertionError("schema_version 2.0 must not validate as v1")
