"""Shared fixtures: every packet exported in-process during a test is checked
against the committed JSON Schema."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

import aitel.pipeline
from aitel import InMemoryExporter, Settings, Tracer

# The analysis fact cache of this test session, away from the user's own.
os.environ["AITEL_ANALYSIS_CACHE"] = tempfile.mkdtemp(prefix="aitel-test-cache-")

ROOT = Path(__file__).resolve().parent
SCHEMA_PATH = ROOT / "schemas" / "context-packet.v1.json"
_validator = jsonschema.Draft202012Validator(orjson.loads(SCHEMA_PATH.read_bytes()))
_invalid: list[str] = []
_original_export = aitel.pipeline.ExportPipeline._export


def _checked_export(self: aitel.pipeline.ExportPipeline, batch: list[Any]) -> None:
    for encoded in batch:
        packet = orjson.loads(encoded.data)
        if "schema_version" in packet:  # raw test dicts are not packets
            for error in _validator.iter_errors(packet):
                _invalid.append(f"{packet.get('packet_id')}: {error.json_path}: {error.message}")
    _original_export(self, batch)


aitel.pipeline.ExportPipeline._export = _checked_export  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _packets_match_committed_schema() -> Iterator[None]:
    _invalid.clear()
    yield
    assert not _invalid, "packets violating schemas/context-packet.v1.json:\n" + "\n".join(
        _invalid[:5]
    )


@pytest.fixture
def memory() -> InMemoryExporter:
    return InMemoryExporter()


@pytest.fixture
def tracer(memory: InMemoryExporter) -> Iterator[Tracer]:
    """A tracer exporting to memory with the default processors."""
    t = Tracer(memory, settings=Settings())
    yield t
    t.shutdown(timeout=5)
