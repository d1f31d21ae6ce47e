"""Handler options -> :class:`~aitel.builder.TraceOptions`, shared by both handlers."""

from __future__ import annotations

from typing import Any

from aitel.integration import HandlerOptions as _CoreOptions

from ._version import __version__


class HandlerOptions(_CoreOptions):
    """The tracer a LlamaIndex handler writes to and the request-level options it adds."""

    def __init__(self, **options: Any) -> None:
        super().__init__("llama_index", __version__, **options)
