"""The fault-injection harness: real processes on loopback, bounded in time.

* :class:`CollectorProcess` runs ``python -m aitel.collector`` on a fixed port
  (so it can be killed and restarted) and reads its SQLite store.
* :class:`FaultProxy` is an HTTP server on a thread that answers each request
  according to a script (status, Retry-After, reset, hang, delay, 413 above a
  size) and otherwise forwards to the collector.
* :func:`run_app` / :func:`start_app` run ``_app.py``, an application process
  that emits packets through ``Tracer(HttpExporter, spool=DiskSpool)``.
* :func:`drain` delivers what dead processes left in a spool directory.

Synchronisation is by polling with deadlines, never by sleeping a fixed time.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import queue
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

HERE = Path(__file__).parent
APP = HERE / "_app.py"
PY = sys.executable
TOKEN = "T0k3n"


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_endpoint() -> str:
    """A URL where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}/v1/packets"


_PYCACHE: list[str] = []


WARM_UP = (
    "import aitel, aitel.assembly, aitel.exporters.http, aitel.spool, aitel.collector.server, "
    "multiprocessing.pool, uuid"
)


@pytest.fixture(scope="session", autouse=True)
def _bytecode_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Child processes share compiled bytecode in a temporary directory (not in the tree),
    compiled once up front rather than by every process that starts."""
    _PYCACHE.append(str(tmp_path_factory.mktemp("pycache")))
    subprocess.run([PY, "-c", WARM_UP], env=child_env(), check=True, timeout=120)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    if _PYCACHE:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = _PYCACHE[0]
    env.pop("AITEL_TOKEN", None)
    env.pop("AITEL_NO_SIGNAL_HANDLERS", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


# -- the collector process ---------------------------------------------------------------


class CollectorProcess:
    def __init__(self, store: Path, *, token: str = TOKEN, port: int | None = None) -> None:
        self.store = store
        self.token = token
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/packets"

    @property
    def log(self) -> Path:
        return self.store.with_suffix(".log")

    def start(self, timeout: float = 20.0) -> CollectorProcess:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    PY,
                    "-m",
                    "aitel.collector",
                    "--port",
                    str(self.port),
                    "--store",
                    str(self.store),
                    "--token",
                    self.token,
                ],
                env=child_env(),
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        wait_for(self._ready, timeout, "the collector to answer /healthz")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            err = self.log.read_text(errors="replace")
            raise AssertionError(f"collector exited with {self.proc.returncode}: {err}")
        try:
            self.health()
        except OSError:
            return False
        return True

    def health(self) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", "/healthz")
            return dict(json.loads(conn.getresponse().read()))
        finally:
            conn.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def request_ids(self, prefix: str) -> list[str]:
        """Request ids of stored packets whose id starts with ``prefix-`` (one entry per row)."""
        if not self.store.exists():
            return []
        conn = sqlite3.connect(f"file:{self.store}?mode=ro", uri=True, timeout=10)
        try:
            rows = conn.execute("SELECT body FROM packets").fetchall()
        finally:
            conn.close()
        ids = [str(orjson.loads(body)["request_id"]) for (body,) in rows]
        return [i for i in ids if i.startswith(prefix + "-")]

    def bodies(self) -> list[bytes]:
        conn = sqlite3.connect(f"file:{self.store}?mode=ro", uri=True, timeout=10)
        try:
            return [bytes(body) for (body,) in conn.execute("SELECT body FROM packets")]
        finally:
            conn.close()


# -- the fault proxy -----------------------------------------------------------------------

Action = tuple[Any, ...]


@dataclass
class Seen:
    at: float
    action: str
    packets: int
    status: int | None


@dataclass
class FaultProxy:
    """Answers requests from a script of actions, then forwards to ``upstream``.

    Actions: ``("forward",)``, ``("status", code, headers)``, ``("reset",)``,
    ``("hang",)``, ``("delay", seconds)``, ``("limit", max_packets)``.
    ``default`` is used once the script is exhausted.
    """

    upstream: str | None
    default: Action = ("forward",)
    script: deque[Action] = field(default_factory=deque)
    seen: list[Seen] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1/packets"

    def next_action(self) -> Action:
        with self._lock:
            return self.script.popleft() if self.script else self.default

    def record(self, action: str, packets: int, status: int | None) -> None:
        with self._lock:
            self.seen.append(Seen(time.monotonic(), action, packets, status))

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                packets = _count_packets(body, self.headers.get("Content-Encoding"))
                action = proxy.next_action()
                kind = action[0]
                if kind == "reset":
                    proxy.record(kind, packets, None)
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.connection.close()
                    self.close_connection = True
                    return
                if kind == "hang":
                    proxy.record(kind, packets, None)
                    proxy._stop.wait()
                    self.close_connection = True
                    return
                if kind == "status":
                    _, code, headers = action
                    proxy.record(kind, packets, code)
                    values = {k: v() if callable(v) else v for k, v in headers.items()}
                    self._answer(code, b'{"error": "injected"}', values)
                    return
                if kind == "limit" and packets > action[1]:
                    proxy.record(kind, packets, 413)
                    self._answer(413, b'{"error": "too large"}', {})
                    return
                if kind == "delay":
                    proxy._stop.wait(action[1])
                status, payload, headers = self._forward(body)
                proxy.record(kind, packets, status)
                self._answer(status, payload, headers)

            def _forward(self, body: bytes) -> tuple[int, bytes, dict[str, str]]:
                assert proxy.upstream is not None
                target = urlsplit(proxy.upstream)
                conn = http.client.HTTPConnection(str(target.hostname), target.port, timeout=30)
                try:
                    headers = {
                        k: v
                        for k, v in self.headers.items()
                        if k.lower() in {"authorization", "content-type", "content-encoding"}
                    }
                    conn.request("POST", target.path, body=body, headers=headers)
                    response = conn.getresponse()
                    keep = {
                        k: v
                        for k, v in response.getheaders()
                        if k.lower() in {"content-type", "retry-after"}
                    }
                    return response.status, response.read(), keep
                finally:
                    conn.close()

            def _answer(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if "Content-Type" not in headers and "content-type" not in headers:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server = server
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class _QuietServer(ThreadingHTTPServer):
    """Clients that give up (deadline reached, process ended) are part of the script."""

    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        return


def _count_packets(body: bytes, encoding: str | None) -> int:
    try:
        raw = gzip.decompress(body) if encoding == "gzip" else body
        data = orjson.loads(raw)
    except (OSError, ValueError):
        return -1
    return len(data) if isinstance(data, list) else 1


# -- the application process ---------------------------------------------------------------


@dataclass
class AppRun:
    returncode: int
    report: dict[str, Any]
    stdout: str
    stderr: str
    elapsed_s: float

    @property
    def stats(self) -> dict[str, int]:
        return dict(self.report.get("stats", {}))


def app_command(tmp: Path, endpoint: str, **options: Any) -> tuple[list[str], Path]:
    report = tmp / f"report-{time.monotonic_ns()}.json"
    cmd = [
        PY,
        str(APP),
        "--endpoint",
        endpoint,
        "--token",
        options.pop("token", TOKEN),
        "--report",
        str(report),
    ]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            cmd.append(flag)
        elif value is not None and value is not False:
            cmd += [flag, str(value)]
    return cmd, report


def _read_report(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def run_app(tmp: Path, endpoint: str, *, timeout: float = 60.0, **options: Any) -> AppRun:
    """Run the application to completion."""
    cmd, report = app_command(tmp, endpoint, **options)
    started = time.monotonic()
    done = subprocess.run(cmd, env=child_env(), capture_output=True, timeout=timeout, check=False)
    return AppRun(
        done.returncode,
        _read_report(report),
        done.stdout.decode(),
        done.stderr.decode(),
        time.monotonic() - started,
    )


class RunningApp:
    def __init__(self, cmd: list[str], report: Path) -> None:
        self.report_path = report
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[bytes] = []
        self._pumps = [
            threading.Thread(target=self._pump, daemon=True),
            threading.Thread(target=self._pump_err, daemon=True),
        ]
        for pump in self._pumps:
            pump.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.decode().strip())
        self._lines.put(None)

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        self._stderr.extend(self.proc.stderr)

    def wait_line(self, expected: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {expected!r} line from the app in {timeout}s")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"app ended before {expected!r}: {self.stderr}")
            if line == expected:
                return

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float = 60.0) -> AppRun:
        self.proc.wait(timeout)
        for pump in self._pumps:
            pump.join(10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        return AppRun(
            self.proc.returncode,
            _read_report(self.report_path),
            "",
            self.stderr,
            time.monotonic() - self.started,
        )

    @property
    def stderr(self) -> str:
        return b"".join(self._stderr).decode(errors="replace")


def start_app(tmp: Path, endpoint: str, **options: Any) -> RunningApp:
    cmd, report = app_command(tmp, endpoint, **options)
    return RunningApp(cmd, report)


# -- delivering what dead processes left behind -----------------------------------------


def drain(spool_dir: Path, endpoint: str, *, timeout: float = 30.0, token: str = TOKEN) -> int:
    """Deliver every packet spooled in ``spool_dir`` (by processes that ended); returns the count."""
    from aitel.exporters.http import HttpExporter
    from aitel.exporters.retry import RetryPolicy
    from aitel.pipeline import ExportPipeline, PipelineConfig
    from aitel.spool import DiskSpool

    spool = DiskSpool(spool_dir, adopt_interval_s=0.2)
    exporter = HttpExporter(
        endpoint,
        token=token,
        retry=RetryPolicy(initial_backoff_s=0.05, max_backoff_s=0.5, max_elapsed_s=5),
        cooldown_s=0.2,
        max_cooldown_s=1.0,
    )
    previous = os.environ.get("AITEL_NO_SIGNAL_HANDLERS")
    os.environ["AITEL_NO_SIGNAL_HANDLERS"] = "1"  # leave the test runner's signals alone
    try:
        pipeline = ExportPipeline(
            exporter,
            spool=spool,
            config=PipelineConfig(schedule_delay_s=0.05, spool_retry_interval_s=0.2),
        )
    finally:
        if previous is None:
            os.environ.pop("AITEL_NO_SIGNAL_HANDLERS", None)
    try:
        wait_for(lambda: spool.pending() == 0, timeout, "the spool to drain")
        return pipeline.stats().exported
    finally:
        pipeline.shutdown(5)


def spooled_files(spool_dir: Path) -> list[Path]:
    return sorted(spool_dir.rglob("*.seg")) if spool_dir.exists() else []


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def shared_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    """One collector for the scenarios that do not restart it (packets told apart by prefix)."""
    store = tmp_path_factory.mktemp("collector") / "store.db"
    collector = CollectorProcess(store).start()
    yield collector
    collector.stop()


@pytest.fixture
def proxy_to(shared_collector: CollectorProcess) -> Iterator[Callable[..., FaultProxy]]:
    proxies: list[FaultProxy] = []

    def make(*script: Action, default: Action = ("forward",)) -> FaultProxy:
        proxy = FaultProxy(shared_collector.url, default=default, script=deque(script)).start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()


def assert_exactly_once(collector: CollectorProcess, prefix: str, expected: set[str]) -> None:
    stored = collector.request_ids(prefix)
    assert len(stored) == len(set(stored)), "a packet was stored twice"
    missing = expected - set(stored)
    extra = set(stored) - expected
    assert not missing, f"{len(missing)} packets never arrived, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} unexpected packets, e.g. {sorted(extra)[:3]}"


def ids(prefix: str, count: int) -> set[str]:
    return {f"{prefix}-{n}" for n in range(count)}
