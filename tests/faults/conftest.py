"""Fixtures of the fault-injection suite (the harness itself is in ``harness.py``)."""

from .harness import _bytecode_cache, proxy_to, shared_collector

__all__ = ["_bytecode_cache", "proxy_to", "shared_collector"]
