"""aitel for LangChain: ``callbacks=[AITelHandler()]`` gives one context packet per request."""

from ._version import __version__
from .handler import AITelHandler

__all__ = ["AITelHandler", "__version__"]
