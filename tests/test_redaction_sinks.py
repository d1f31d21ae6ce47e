"""Canaries end to end: a planted secret never reaches the spool, the wire or the logs."""

from __future__ import annotations

import logging
import socket
import uuid
from pathlib import Path

import pytest

import aitel
from aitel.exporters.http import HttpExporter
from aitel.exporters.retry import RetryPolicy
from aitel.spool import DiskSpool


def canary() -> str:
    return "sk-proj-" + uuid.uuid4().hex + "Zq" + uuid.uuid4().hex[:12]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(
            sock.getsockname()[1]
        )  # closed again when the block ends: connections are refused


def all_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.rglob("*") if p.is_file())


def test_secret_in_a_failing_request_never_reaches_spool_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Undeliverable packets are spooled redacted; error logs carry no payload."""
    secret = canary()
    spool_dir = tmp_path / "spool"
    exporter = HttpExporter(
        f"http://127.0.0.1:{closed_port()}/v1/packets",
        retry=RetryPolicy(initial_backoff_s=0.01, max_elapsed_s=0.2),
    )
    tracer = aitel.Tracer(exporter, settings=aitel.Settings(), spool=DiskSpool(spool_dir))
    caplog.set_level(logging.DEBUG)
    with (
        pytest.raises(RuntimeError),
        aitel.trace("job", input={"prompt": f"my key is {secret}"}, tracer=tracer) as t,
    ):
        with t.step("tool", kind="tool", input={"api_key": secret, "note": secret}):
            raise RuntimeError(f"upstream rejected {secret}")
    tracer.flush(5)
    stats = tracer.stats()
    tracer.shutdown(5)
    assert stats.spooled == 1 and stats.exported == 0, stats
    spooled = all_bytes(spool_dir)
    assert b"<SECRET:" in spooled  # the packet is there, redacted
    assert secret.encode() not in spooled
    assert secret not in caplog.text
