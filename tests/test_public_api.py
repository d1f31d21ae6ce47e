"""The public API is curated, and the core stands without any framework."""

from __future__ import annotations

import subprocess
import sys

import aitel


def test_every_exported_name_resolves() -> None:
    for name in aitel.__all__:
        assert getattr(aitel, name) is not None, name


def test_langchain_handler_is_reachable_from_aitel() -> None:
    from langchain_aitel import AITelHandler

    assert aitel.AITelHandler is AITelHandler


def test_core_imports_without_langchain_or_llama_index() -> None:
    """Blocking the frameworks' imports, the core still imports and records a packet."""
    code = """
import sys
for name in ("langchain_core", "langchain", "llama_index", "llama_index.core"):
    sys.modules[name] = None
import aitel, aitel.cli, aitel.tracing, aitel.pipeline
from aitel.testing import capture_packets
with capture_packets() as captured:
    with aitel.trace("x"):
        pass
    assert captured.one()["status"] == "SUCCESS"
assert not any(m.startswith(("langchain", "llama_index")) and sys.modules[m] is not None for m in sys.modules)
try:
    aitel.AITelHandler
except ImportError as exc:
    assert "pip install langchain-aitel" in str(exc)
else:
    raise AssertionError("expected ImportError")
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_documented_submodules_need_no_import_of_their_own() -> None:
    """``aitel.asgi.AITelMiddleware`` and ``aitel.testing`` work after ``import aitel`` alone."""
    code = """
import aitel
assert "aitel.asgi" not in __import__("sys").modules
print(aitel.asgi.AITelMiddleware.__name__, aitel.testing.capture_packets.__name__)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.split() == ["AITelMiddleware", "capture_packets"], result.stderr
