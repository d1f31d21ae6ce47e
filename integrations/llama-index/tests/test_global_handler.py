"""set_global_handler("aitel", ...) and attaching/detaching the handlers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import llama_index.core
import pytest
from llama_index.callbacks.aitel import (
    AITelEventHandler,
    AITelInstrumentation,
    AITelSpanHandler,
    current_instrumentation,
    uninstrument,
)
from llama_index.core import set_global_handler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms.mock import MockLLM

import aitel


def _ours() -> list[object]:
    dispatcher = get_dispatcher()
    return [
        h
        for h in [*dispatcher.span_handlers, *dispatcher.event_handlers]
        if isinstance(h, AITelSpanHandler | AITelEventHandler)
    ]


def test_set_global_handler_instruments_the_root_dispatcher(tracer, packets) -> None:
    """set_global_handler("aitel", tracer=..., **options) makes packets with those options."""
    set_global_handler("aitel", tracer=tracer, ab_variant="B", environment="test")
    instrumentation = current_instrumentation()
    assert instrumentation is not None
    assert instrumentation.tracer is tracer
    assert llama_index.core.global_handler is None  # the legacy callbacks are left alone
    assert len(_ours()) == 2
    MockLLM(max_tokens=2).complete("hi")
    (packet,) = packets()
    assert packet["pipeline_metadata"]["ab_variant"] == "B"
    assert packet["pipeline_metadata"]["environment"] == "test"
    uninstrument()
    assert _ours() == []
    assert current_instrumentation() is None


def test_set_global_handler_again_replaces_the_first(tracer, packets) -> None:
    """A second set_global_handler("aitel") replaces the first: still one packet per request."""
    set_global_handler("aitel", tracer=tracer, ab_variant="A")
    set_global_handler("aitel", tracer=tracer, ab_variant="B")
    assert len(_ours()) == 2
    MockLLM(max_tokens=1).complete("hi")
    (packet,) = packets()
    assert packet["pipeline_metadata"]["ab_variant"] == "B"


def test_other_names_still_reach_llama_index() -> None:
    """Names LlamaIndex knows keep working; unknown ones keep failing as before."""
    set_global_handler("simple")
    assert type(llama_index.core.global_handler).__name__ == "SimpleLLMHandler"
    with pytest.raises(ValueError, match="not supported"):
        set_global_handler("no-such-handler")


def test_instrument_is_idempotent_and_uninstrument_detaches(tracer, packets) -> None:
    """instrument() twice attaches once; uninstrument() removes exactly our two handlers."""
    before = list(get_dispatcher().span_handlers), list(get_dispatcher().event_handlers)
    instrumentation = AITelInstrumentation(tracer=tracer)
    instrumentation.instrument()
    instrumentation.instrument()
    assert instrumentation.instrumented
    assert len(_ours()) == 2
    instrumentation.uninstrument()
    instrumentation.uninstrument()
    assert not instrumentation.instrumented
    after = list(get_dispatcher().span_handlers), list(get_dispatcher().event_handlers)
    assert [id(h) for h in after[0]] == [id(h) for h in before[0]]
    assert [id(h) for h in after[1]] == [id(h) for h in before[1]]
    MockLLM(max_tokens=1).complete("hi")
    assert packets() == []


@pytest.mark.slow
def test_set_global_handler_in_a_fresh_interpreter(tmp_path: Path) -> None:
    """Without importing this package first, set_global_handler("aitel") works (start-up file)."""
    script = textwrap.dedent(
        """
        import sys
        from llama_index.core import set_global_handler
        from llama_index.core.llms.mock import MockLLM

        assert "llama_index.callbacks.aitel" not in sys.modules
        set_global_handler("aitel", app_version="9.9")
        MockLLM(max_tokens=2).complete("hello")
        import aitel
        assert aitel.flush(10.0)
        """
    )
    env = {**os.environ, "AITEL_DIR": str(tmp_path), "AITEL_REDACTION": "none"}
    env.pop("AITEL_EXPORTER", None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = [
        line
        for path in sorted(tmp_path.rglob("*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    assert len(lines) == 1
    packet = json.loads(lines[0])
    aitel.ContextPacket.model_validate(packet)
    assert packet["pipeline_metadata"]["app_version"] == "9.9"
    assert packet["steps"][0]["name"] == "MockLLM.complete"
