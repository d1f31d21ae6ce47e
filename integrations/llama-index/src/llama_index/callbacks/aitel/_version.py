from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("llama-index-callbacks-aitel")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"
