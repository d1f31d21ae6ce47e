"""Arize Phoenix as a real OTLP receiver, started once per test session.

Phoenix is a server application with a large dependency tree (~100
packages, and a pytest plugin that imports all of it), so it lives in its
own virtualenv rather than the project's. The fixture finds the ``phoenix``
command in this order:

1. ``AITEL_TEST_PHOENIX`` (path to the ``phoenix`` executable);
2. ``.venv/phoenix/bin/phoenix`` in the repository, made with::

       uv venv .venv/phoenix
       uv pip install --python .venv/phoenix/bin/python arize-phoenix

3. ``phoenix`` on ``PATH``.

Without one the Phoenix tests are skipped with that instruction. The server
runs offline (``PHOENIX_ALLOW_EXTERNAL_RESOURCES=false``, telemetry off) on
free loopback ports with a temporary ``PHOENIX_WORKING_DIR`` and is stopped
with SIGINT at the end of the session. Spans are read back through
Phoenix's REST API (``GET /v1/projects/{name}/spans``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 240.0
INSTALL_HINT = (
    "Arize Phoenix not found: uv venv .venv/phoenix && "
    "uv pip install --python .venv/phoenix/bin/python arize-phoenix "
    "(or set AITEL_TEST_PHOENIX to a phoenix executable)"
)


def phoenix_command() -> str | None:
    """The ``phoenix`` executable to run, or None."""
    explicit = os.environ.get("AITEL_TEST_PHOENIX")
    if explicit:
        return explicit if Path(explicit).exists() else None
    local = REPO / ".venv" / "phoenix" / "bin" / "phoenix"
    if local.exists():
        return str(local)
    return shutil.which("phoenix")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PhoenixServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    start_seconds: float

    @property
    def otlp_endpoint(self) -> str:
        return f"{self.base_url}/v1/traces"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def spans(self, project: str) -> list[dict[str, Any]]:
        """Every span Phoenix stored for ``project`` (REST API, all pages)."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        with httpx.Client(base_url=self.base_url, timeout=30.0, trust_env=False) as client:
            while True:
                params: dict[str, Any] = {"limit": 1000}
                if cursor:
                    params["cursor"] = cursor
                response = client.get(f"/v1/projects/{project}/spans", params=params)
                if response.status_code == 404:  # the project appears with its first span
                    return []
                response.raise_for_status()
                body = response.json()
                out.extend(body.get("data") or [])
                cursor = body.get("next_cursor")
                if not cursor:
                    return out

    def wait_for_spans(
        self,
        project: str,
        ready: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 30.0,
    ) -> list[dict[str, Any]]:
        """Poll until ``ready(spans)``: Phoenix answers 200 before it has stored the spans."""
        deadline = time.monotonic() + timeout
        spans: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            spans = self.spans(project)
            if ready(spans):
                return spans
            time.sleep(0.1)
        raise AssertionError(f"Phoenix has {len(spans)} spans in {project!r} after {timeout}s")


@pytest.fixture(scope="session")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoenixServer]:
    """A running Phoenix for the whole session.

    Skips when Phoenix is not installed, except under CI (``CI`` set), where a
    missing receiver is a failure: a skipped proof proves nothing.
    """
    command = phoenix_command()
    if command is None:
        if os.environ.get("CI"):
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    workdir = tmp_path_factory.mktemp("phoenix")
    port, grpc_port = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        # cached bytecode turns a ~30 s cold start into a warm one on the next session
        if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith(("OTEL_", "PHOENIX_"))
    }
    env.update(
        PHOENIX_WORKING_DIR=str(workdir),
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(port),
        PHOENIX_GRPC_PORT=str(grpc_port),
        PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
        PHOENIX_TELEMETRY_ENABLED="false",
        PHOENIX_LOG_MIGRATIONS="false",
    )
    log_path = workdir / "phoenix.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [command, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir
        )
    server = PhoenixServer(f"http://127.0.0.1:{port}", process, log_path, 0.0)
    try:
        _wait_until_healthy(server, started)
        server.start_seconds = time.monotonic() - started
        yield server
    finally:
        _stop(process)


def _wait_until_healthy(server: PhoenixServer, started: float) -> None:
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"Phoenix exited with {server.process.returncode}:\n{server.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{server.base_url}/healthz").status_code == 200:
                    return
            if time.monotonic() - started > START_TIMEOUT_S:
                raise RuntimeError(
                    f"Phoenix not healthy after {START_TIMEOUT_S}s:\n{server.log_tail()}"
                )
            time.sleep(0.25)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT (graceful); a second SIGINT after 5 s makes uvicorn exit at once; then kill."""
    for wait_s in (5.0, 10.0):
        if process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait_s)
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)
