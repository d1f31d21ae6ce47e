"""aitel: one structured context packet per LLM request.

>>> from langchain_aitel import AITelHandler
>>> chain.invoke(question, config={"callbacks": [AITelHandler()]})

See https://github.com/aitel-dev/aitel for the full guide.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .builder import PacketBuilder, TraceOptions
from .config import ConfigError, Settings
from .exporters import EncodedPacket, Exporter, ExportResult, InMemoryExporter, JsonlExporter
from .instrument import instrument, instrumented, uninstrument
from .instrument import instrument_from_env as _instrument_from_env
from .jsonable import register_encoder
from .pipeline import ExportPipeline, PipelineConfig, PipelineStats
from .pricing import ModelPrice, PricingTable
from .processors import Processor, SamplingProcessor, SizeLimitProcessor
from .schema import SCHEMA_VERSION, ContextPacket, StepKind, json_schema
from .tracer import Tracer, configure, flush, get_tracer, shutdown
from .tracing import Span, observe, trace

if TYPE_CHECKING:
    from langchain_aitel import AITelHandler as AITelHandler

    from . import asgi as asgi
    from . import testing as testing

__all__ = [
    # record
    "trace",
    "observe",
    "Span",
    "instrument",
    "uninstrument",
    "instrumented",
    # configure
    "configure",
    "get_tracer",
    "flush",
    "shutdown",
    "Tracer",
    "Settings",
    "ConfigError",
    "TraceOptions",
    "PacketBuilder",
    "register_encoder",
    # export
    "ExportPipeline",
    "PipelineConfig",
    "PipelineStats",
    "Exporter",
    "ExportResult",
    "EncodedPacket",
    "JsonlExporter",
    "InMemoryExporter",
    "Processor",
    "SamplingProcessor",
    "SizeLimitProcessor",
    # schema
    "ContextPacket",
    "StepKind",
    "SCHEMA_VERSION",
    "json_schema",
    # cost
    "ModelPrice",
    "PricingTable",
    "__version__",
]


_SUBMODULES = frozenset({"asgi", "testing"})
"""Loaded on first use: ``aitel.asgi.AITelMiddleware``, ``aitel.testing.capture_packets``."""


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name == "AITelHandler":
        try:
            from langchain_aitel import AITelHandler
        except ImportError as exc:
            raise ImportError(
                "aitel.AITelHandler needs the LangChain integration: pip install langchain-aitel"
            ) from exc
        return AITelHandler
    raise AttributeError(f"module 'aitel' has no attribute {name!r}")


_instrument_from_env()  # AITEL_TRACING=true: trace every run of the installed integrations
