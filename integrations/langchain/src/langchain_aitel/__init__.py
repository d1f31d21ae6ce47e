"""aitel for LangChain: ``callbacks=[AITelHandler()]`` gives one context packet per request.

With ``AITEL_TRACING=true`` (or :func:`langchain_aitel.auto.instrument`)
every run is traced without ``callbacks=``.
"""

from aitel._safety import call_safely

from . import auto
from ._version import __version__
from .handler import AITelHandler

__all__ = ["AITelHandler", "__version__", "auto"]

call_safely(auto.instrument_from_env, site="langchain_aitel.instrument_from_env")
