"""The aitel collector: an HTTP endpoint that stores every packet exactly once.

Run it with ``aitel collect --port 4319 --store aitel.db --token T`` or, from
Python, ``run_collector(...)`` (foreground) or ``CollectorServer(...)`` (a
background thread, handy in tests). Needs ``pip install 'aitel[collector]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .cli import register
from .store import PacketStore, StoreBusy, WriteResult, connect

if TYPE_CHECKING:
    from .app import CollectorConfig, create_app
    from .server import CollectorServer, run_collector, serve_in_thread

__all__ = [
    "CollectorConfig",
    "CollectorServer",
    "PacketStore",
    "StoreBusy",
    "WriteResult",
    "connect",
    "create_app",
    "register",
    "run_collector",
    "serve_in_thread",
]

_LAZY = {
    "CollectorConfig": "app",
    "create_app": "app",
    "CollectorServer": "server",
    "run_collector": "server",
    "serve_in_thread": "server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aitel.collector' has no attribute {name!r}")
    import importlib

    try:
        return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    except ImportError as exc:
        if "starlette" in str(exc) or "uvicorn" in str(exc):
            raise ImportError(
                "the collector needs starlette and uvicorn: pip install 'aitel[collector]'"
            ) from exc
        raise
