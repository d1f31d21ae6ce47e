"""Running the collector: in the foreground (``aitel collect``) or on a thread (tests, notebooks).

The stack is Starlette on uvicorn: both are small, typed, widely deployed
and maintained by the same community as httpx; uvicorn's programmatic
``Server`` runs in the main thread with graceful SIGINT/SIGTERM handling or on
a background thread, and needs no compiled extras.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import replace
from typing import Any

from .app import CollectorConfig, create_app
from .store import PacketStore


def _uvicorn() -> Any:
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the collector needs starlette and uvicorn: pip install 'aitel[collector]'"
        ) from exc
    return uvicorn


def _server(config: CollectorConfig, store: PacketStore | None = None) -> Any:
    uvicorn = _uvicorn()
    app = create_app(config, store)
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    return uvicorn.Server(uv_config)


def run_collector(config: CollectorConfig | None = None, **options: Any) -> int:
    """Serve until SIGINT/SIGTERM (graceful: queued batches are committed). Returns an exit code."""
    cfg = replace(config or CollectorConfig(), **options)
    _check_store(cfg)
    server = _server(cfg)
    server.run()
    return 0 if server.started else 1


def _check_store(config: CollectorConfig) -> None:
    """Open the store once before serving: a path that is not a database is an error now.

    Raises :class:`ValueError` (not an SQLite file, or a directory) or
    :class:`OSError` (cannot be created).
    """
    store = PacketStore(config.store, synchronous=config.synchronous)
    try:
        store.start()
    except sqlite3.Error as exc:
        raise ValueError(f"cannot use {config.store} as the store: {exc}") from None
    store.close()


class CollectorServer:
    """A collector on a background thread: ``with CollectorServer(store=...) as c: c.url``.

    ``port=0`` picks a free port; :attr:`url` is the packets endpoint. Pass a
    started ``packet_store`` to serve it instead of opening ``config.store``.
    """

    def __init__(
        self,
        config: CollectorConfig | None = None,
        *,
        packet_store: PacketStore | None = None,
        **options: Any,
    ) -> None:
        base = config or CollectorConfig(port=0)
        self.config = replace(base, **options)
        self.packet_store = packet_store
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = self.config.port

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1/packets"

    def start(self, timeout: float = 10.0) -> CollectorServer:
        self._server = _server(self.config, self.packet_store)
        self._thread = threading.Thread(
            target=self._server.run, name="aitel-collector", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the collector did not start (see the log for the reason)")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("the collector did not start in time")
            self._thread.join(0.01)
        sockets = self._server.servers[0].sockets if self._server.servers else []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout)

    @property
    def app(self) -> Any:
        return self._server.config.app if self._server is not None else None

    def __enter__(self) -> CollectorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_in_thread(**options: Any) -> CollectorServer:
    """Start a collector on a background thread (``port=0`` by default) and return it."""
    options.setdefault("port", 0)
    return CollectorServer(**options).start()
