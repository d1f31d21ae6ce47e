"""aitel for LlamaIndex: one context packet per query, chat, agent or workflow run.

>>> from llama_index.core import set_global_handler
>>> set_global_handler("aitel", ab_variant="B")

or explicitly:

>>> from llama_index.callbacks.aitel import AITelInstrumentation
>>> instrumentation = AITelInstrumentation(ab_variant="B").instrument()
"""

from __future__ import annotations

from llama_index_instrumentation.dispatcher import instrument_tags

from ._global import (
    aitel_callback_handler,
    current_instrumentation,
    instrument,
    register_global_handler_name,
    uninstrument,
)
from ._version import __version__
from .instrumentation import AITelEventHandler, AITelInstrumentation, AITelSpanHandler
from .legacy import AITelCallbackHandler

register_global_handler_name()

__all__ = [
    "AITelInstrumentation",
    "instrument",
    "uninstrument",
    "current_instrumentation",
    "instrument_tags",
    "aitel_callback_handler",
    "AITelCallbackHandler",
    "AITelSpanHandler",
    "AITelEventHandler",
    "register_global_handler_name",
    "__version__",
]
