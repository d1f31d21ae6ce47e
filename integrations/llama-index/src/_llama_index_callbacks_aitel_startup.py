"""Teach ``llama_index.core.set_global_handler`` the name "aitel" at start-up.

Loaded by ``llama_index_callbacks_aitel.pth``. It imports nothing of
LlamaIndex or aitel: a finder waits for LlamaIndex's ``global_handlers``
module to be imported, wraps its ``create_global_handler`` (the wrapper
imports ``llama_index.callbacks.aitel`` only when "aitel" is asked for) and
removes itself.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

_TARGET = "llama_index.core.callbacks.global_handlers"
_PATCHED = "__aitel_global_handler__"


def _patch(module: Any) -> None:
    original = getattr(module, "create_global_handler", None)
    if original is None or getattr(original, _PATCHED, False):
        return

    def create_global_handler(eval_mode: str, **eval_params: Any) -> Any:
        if eval_mode == "aitel":
            from llama_index.callbacks.aitel import aitel_callback_handler

            aitel_callback_handler(**eval_params)
            return None
        return original(eval_mode, **eval_params)

    create_global_handler.__doc__ = original.__doc__
    create_global_handler.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(create_global_handler, _PATCHED, True)
    module.create_global_handler = create_global_handler


class _Loader:
    """Runs the real loader, then patches the module."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        with contextlib.suppress(Exception):  # never break LlamaIndex's import
            _patch(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _Finder:
    """Finds nothing itself; wraps the loader of one module, once."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != _TARGET:
            return None
        _remove()
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


_FINDER = _Finder()


def _remove() -> None:
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(_FINDER)


def install() -> None:
    module = sys.modules.get(_TARGET)
    if module is not None:
        _patch(module)
    elif _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


with contextlib.suppress(Exception):  # a start-up file must never stop the interpreter
    install()
