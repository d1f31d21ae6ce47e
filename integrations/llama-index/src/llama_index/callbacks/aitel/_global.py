"""``set_global_handler("aitel", **options)``: one process-wide instrumentation.

LlamaIndex's ``create_global_handler`` knows handlers by a fixed list of
names. :func:`register_global_handler_name` (run when this package is
imported, and at interpreter start-up by the ``.pth`` file the wheel
installs) wraps it so that ``"aitel"`` is one of them.
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

from .instrumentation import AITelInstrumentation

HANDLER_NAME = "aitel"
_PATCHED = "__aitel_global_handler__"

_lock = threading.Lock()
_current: AITelInstrumentation | None = None


def instrument(**options: Any) -> AITelInstrumentation:
    """Instrument LlamaIndex process-wide, replacing an earlier :func:`instrument`."""
    global _current
    instrumentation = AITelInstrumentation(**options)
    with _lock:
        previous, _current = _current, instrumentation
    if previous is not None:
        previous.uninstrument()
    return instrumentation.instrument()


def uninstrument() -> None:
    """Undo :func:`instrument` (and ``set_global_handler("aitel")``)."""
    global _current
    with _lock:
        previous, _current = _current, None
    if previous is not None:
        previous.uninstrument()


def current_instrumentation() -> AITelInstrumentation | None:
    """The instrumentation set up by :func:`instrument`, if any."""
    return _current


def aitel_callback_handler(**options: Any) -> None:
    """The factory ``set_global_handler("aitel", **options)`` calls.

    It instruments LlamaIndex's root dispatcher and returns None, so
    LlamaIndex's legacy ``global_handler`` stays untouched (the
    instrumentation already sees everything the callbacks would).
    """
    instrument(**options)


def patch_global_handlers(module: ModuleType) -> None:
    """Wrap ``module.create_global_handler`` so that it knows "aitel" (idempotent)."""
    original = getattr(module, "create_global_handler", None)
    if original is None or getattr(original, _PATCHED, False):
        return

    def create_global_handler(eval_mode: str, **eval_params: Any) -> Any:
        if eval_mode == HANDLER_NAME:
            aitel_callback_handler(**eval_params)
            return None
        return original(eval_mode, **eval_params)

    create_global_handler.__doc__ = original.__doc__
    create_global_handler.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(create_global_handler, _PATCHED, True)
    module.create_global_handler = create_global_handler  # type: ignore[attr-defined]


def register_global_handler_name() -> None:
    """Make ``llama_index.core.set_global_handler("aitel", ...)`` work."""
    from llama_index.core.callbacks import global_handlers

    patch_global_handlers(global_handlers)
