"""Trace every LangChain run in the process, without ``callbacks=``.

>>> from langchain_aitel import auto
>>> auto.instrument(app_version="1.4.2")   # or AITEL_TRACING=true before import
>>> chain.invoke(question)                  # one packet, no handler passed
>>> auto.uninstrument()

LangChain builds a callback manager for every run; a hook registered with
``langchain_core.tracers.context.register_configure_hook`` adds a handler to
each of them (inheritably: child runs share it). The hook's handler class
is :class:`~langchain_aitel.AITelHandler`, so a run that already has an
``AITelHandler`` - passed explicitly, or inherited from its parent - does
not get a second one: nothing is traced twice.

The switch is process-wide: it reaches every thread and every asyncio task,
including those started before :func:`instrument` was called.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, cast

from aitel.instrument import tracing_requested

from .handler import AITelHandler

__all__ = ["global_handler", "instrument", "instrument_from_env", "uninstrument"]


class _ProcessWideHandler:
    """What LangChain reads, with ``get()``, each time it configures a run.

    LangChain's hooks take a ``ContextVar``, but only call its ``get()``. A
    ``ContextVar`` set by :func:`instrument` would reach only the contexts
    copied after the call (not threads or tasks that already exist), so the
    process-wide switch is this object with the same ``get()``.
    """

    def __init__(self) -> None:
        self.handler: AITelHandler | None = None

    def get(self) -> AITelHandler | None:
        return self.handler


_slot = _ProcessWideHandler()
_lock = threading.Lock()
_registered = False


def _register_hook() -> None:
    global _registered
    with _lock:
        if _registered:
            return
        from langchain_core.tracers.context import register_configure_hook

        register_configure_hook(
            cast("ContextVar[AITelHandler | None]", _slot),
            inheritable=True,
            handle_class=AITelHandler,
        )
        _registered = True


def instrument(handler: AITelHandler | None = None, **options: Any) -> AITelHandler:
    """Trace every LangChain run from now on; returns the handler used.

    ``options`` are :class:`~langchain_aitel.AITelHandler` arguments
    (``ab_variant``, ``app_version``, ``tracer``, ...); or pass a ready
    ``handler``. Calling it again replaces the handler. A run given its own
    ``AITelHandler`` uses that one instead.
    """
    if handler is not None and options:
        raise TypeError("pass either a handler or handler options, not both")
    chosen = handler if handler is not None else AITelHandler(**options)
    _register_hook()
    _slot.handler = chosen
    return chosen


def uninstrument() -> None:
    """Stop tracing runs that were not given an ``AITelHandler`` explicitly."""
    _slot.handler = None


def global_handler() -> AITelHandler | None:
    """The handler :func:`instrument` installed, or None when it is off."""
    return _slot.handler


def instrument_from_env(environ: Mapping[str, str] | None = None) -> AITelHandler | None:
    """:func:`instrument` when ``AITEL_TRACING`` is true (run when ``langchain_aitel`` is imported).

    Does nothing when tracing is already on, so an explicit :func:`instrument`
    with options is never replaced.
    """
    if _slot.handler is not None or not tracing_requested(environ):
        return _slot.handler
    return instrument()
