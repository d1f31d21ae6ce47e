"""The one boundary between aitel and the application.

Every entry point that the application (or its framework) calls is wrapped
with :func:`guarded`: an exception inside aitel is counted, logged at most
once per interval per call site, and swallowed. The application never sees it.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

logger = logging.getLogger("aitel")

P = ParamSpec("P")
R = TypeVar("R")


class RateLimitedLogger:
    """Logs a message per key at most once per ``interval_s``; counts the rest."""

    def __init__(self, interval_s: float = 60.0) -> None:
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def log(self, level: int, key: str, message: str, *, exc_info: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message = f"{message} ({suppressed} similar messages suppressed)"
        logger.log(level, message, exc_info=exc_info)


internal_log = RateLimitedLogger()


class ErrorCounter:
    """Internal errors caught at the boundary, by call site."""

    def __init__(self) -> None:
        self.by_site: dict[str, int] = {}

    @property
    def total(self) -> int:
        return sum(self.by_site.values())

    def record(self, site: str) -> None:
        self.by_site[site] = self.by_site.get(site, 0) + 1


internal_errors = ErrorCounter()


def report_internal_error(site: str, exc: BaseException) -> None:
    """Count and (rate-limited) log an exception raised inside aitel."""
    internal_errors.record(site)
    internal_log.log(
        logging.WARNING,
        site,
        f"aitel: internal error in {site}: {type(exc).__name__}: {exc}",
        exc_info=True,
    )


def guarded(func: Callable[P, R | None]) -> Callable[P, R | None]:
    """Run ``func``; on any exception, report it and return None."""
    site = func.__qualname__

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            report_internal_error(site, exc)
            return None

    return wrapper


def call_safely(func: Callable[..., Any], *args: Any, site: str, **kwargs: Any) -> Any:
    """``func(*args, **kwargs)``, reporting and swallowing any exception."""
    try:
        return func(*args, **kwargs)
    except Exception as exc:
        report_internal_error(site, exc)
        return None
