"""Local services the benchmarks export to, each in its own process.

* :class:`Sink` - ``benchmarks/sink.py``: accepts anything, counts what arrived.
* :class:`Collector` - the aitel collector (``python -m aitel.collector``), when
  its dependencies are installed; packets are validated and stored in SQLite.

Both listen on 127.0.0.1 only and are stopped (by their own pid) on exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read() or b"{}")


def _stop(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sink:
    """The counting sink in a child process."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Sink:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "sink.py"), "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("port "):
            self.stop()
            raise RuntimeError(f"the sink did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)

    def stats(self) -> dict[str, dict[str, int]]:
        data: dict[str, dict[str, int]] = _get_json(f"{self.url}/_sink/stats")
        return data

    def items(self, key: str) -> int:
        return int(self.stats().get(key, {}).get("items", 0))

    def settle(self, keys: list[str], quiet_s: float = 0.5, max_s: float = 15.0) -> dict[str, Any]:
        """Counters once nothing new arrived for ``quiet_s`` (exporters still sending)."""
        deadline = time.monotonic() + max_s
        last = self.stats()
        still = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.stats()
            if any(now.get(k) != last.get(k) for k in keys):
                last = now
                still = time.monotonic()
            elif time.monotonic() - still >= quiet_s:
                break
        return last

    def __enter__(self) -> Sink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def collector_available() -> str | None:
    """None when the aitel collector can run here, else why not."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401

        from aitel.collector import app  # noqa: F401
    except ImportError as exc:
        return f"aitel collector not installed ({exc.name or exc})"
    return None


class Collector:
    """``python -m aitel.collector`` on a free loopback port, storing into a temp dir."""

    def __init__(self, synchronous: str = "NORMAL") -> None:
        self.synchronous = synchronous
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/packets"

    def start(self, timeout: float = 30.0) -> Collector:
        self._tmp = tempfile.TemporaryDirectory(prefix="aitel-bench-collector-")
        self.port = _free_port()
        store = os.path.join(self._tmp.name, "aitel.db")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aitel.collector",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--store",
                store,
                "--synchronous",
                self.synchronous,
                "--queue",
                "1024",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the aitel collector exited with {self.proc.returncode}")
            try:
                self.health()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the aitel collector did not become ready")

    def health(self) -> dict[str, Any]:
        data: dict[str, Any] = _get_json(f"http://127.0.0.1:{self.port}/healthz", timeout=2.0)
        return data

    def stored(self) -> int:
        return int(self.health().get("packets", 0))

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, timeout=20.0)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


class Services:
    """The sink, and the collector when available; started once per run."""

    def __init__(self, want_collector: bool = True) -> None:
        self.sink = Sink()
        self.collector: Collector | None = None
        self.collector_missing: str | None = None
        self.want_collector = want_collector

    def __enter__(self) -> Services:
        self.sink.start()
        if self.want_collector:
            self.collector_missing = collector_available()
            if self.collector_missing is None:
                try:
                    self.collector = Collector().start()
                except RuntimeError as exc:
                    self.collector_missing = str(exc)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.collector is not None:
            self.collector.stop()
        self.sink.stop()
