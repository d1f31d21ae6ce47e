"""Zero-code mode: trace every LangChain and LlamaIndex run in the process.

>>> import aitel
>>> aitel.instrument(app_version="1.4.2")     # every installed integration
['langchain', 'llama_index']
>>> chain.invoke(question)                     # a packet, no callbacks= needed
>>> aitel.uninstrument()

Without code: ``AITEL_TRACING=true`` turns it on when ``langchain_aitel``
is imported (and when ``aitel`` is, if an integration is installed).

A run that is given its own ``AITelHandler`` keeps it and is not traced
twice; runs started inside ``aitel.trace(...)`` (for example in a request
traced by :class:`aitel.asgi.AITelMiddleware`) become steps of that trace.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from ._safety import report_internal_error
from .config import ConfigError, _bool

__all__ = ["INTEGRATIONS", "instrument", "instrumented", "tracing_requested", "uninstrument"]

#: framework -> the module of its integration that offers instrument()/uninstrument()
INTEGRATIONS: Mapping[str, str] = {
    "langchain": "langchain_aitel.auto",
    "llama_index": "llama_index.callbacks.aitel",
}
_PACKAGES = {"langchain": "langchain_aitel", "llama_index": "llama_index.callbacks.aitel"}
_INSTALL = {"langchain": "langchain-aitel", "llama_index": "llama-index-callbacks-aitel"}


def instrument(
    *, langchain: bool | None = None, llama_index: bool | None = None, **options: Any
) -> list[str]:
    """Trace every run of the installed frameworks; returns the ones turned on.

    For each framework, ``None`` (the default) means "if its integration is
    installed", ``True`` requires it (``ImportError`` otherwise) and
    ``False`` leaves it alone. ``options`` are handler options shared by all
    (``ab_variant``, ``app_version``, ``environment``, ``tags``,
    ``metadata``, ``tracer``, ...). Calling it again replaces the options.
    """
    turned_on: list[str] = []
    for framework, wanted in (("langchain", langchain), ("llama_index", llama_index)):
        if wanted is False:
            continue
        module = _load(framework, required=wanted is True)
        if module is None:
            continue
        hook = getattr(module, "instrument", None)
        if not callable(hook):
            if wanted:
                raise ImportError(f"{INTEGRATIONS[framework]} has no instrument()")
            continue
        hook(**options)
        turned_on.append(framework)
    return turned_on


def uninstrument() -> None:
    """Stop tracing runs that were not given a handler explicitly (every framework)."""
    for module_name in INTEGRATIONS.values():
        module = sys.modules.get(module_name)
        hook = getattr(module, "uninstrument", None) if module is not None else None
        if callable(hook):
            hook()


def instrumented() -> list[str]:
    """The frameworks whose runs are traced without a handler right now."""
    on: list[str] = []
    langchain = sys.modules.get(INTEGRATIONS["langchain"])
    if langchain is not None and langchain.global_handler() is not None:
        on.append("langchain")
    llama = sys.modules.get(INTEGRATIONS["llama_index"])
    current = getattr(llama, "current_instrumentation", None) if llama is not None else None
    if callable(current) and current() is not None:
        on.append("llama_index")
    return on


def tracing_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``AITEL_TRACING`` asks for every run to be traced."""
    source = os.environ if environ is None else environ
    try:
        return _bool(source.get("AITEL_TRACING", ""))
    except ConfigError as exc:
        report_internal_error("config.AITEL_TRACING", exc)
        return False


def instrument_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """Run at ``import aitel``: :func:`instrument` when ``AITEL_TRACING`` is true.

    An integration that is being imported right now (it imports aitel first)
    is left to check the variable itself when its own import finishes.
    """
    if not tracing_requested(environ):
        return []
    turned_on: list[str] = []
    for framework in INTEGRATIONS:
        if _PACKAGES[framework] in sys.modules or not _installed(framework):
            continue
        try:
            turned_on += instrument(
                langchain=framework == "langchain", llama_index=framework == "llama_index"
            )
        except Exception as exc:  # never break ``import aitel``
            report_internal_error(f"instrument.{framework}", exc)
    return turned_on


def _installed(framework: str) -> bool:
    try:
        return importlib.util.find_spec(_PACKAGES[framework]) is not None
    except (ImportError, ValueError):
        return False


def _load(framework: str, *, required: bool) -> ModuleType | None:
    name = INTEGRATIONS[framework]
    if name not in sys.modules and not _installed(framework):
        if required:
            raise ImportError(f"tracing {framework} needs: pip install {_INSTALL[framework]}")
        return None
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if required:
            raise
        report_internal_error(f"instrument.{framework}", exc)
        return None
