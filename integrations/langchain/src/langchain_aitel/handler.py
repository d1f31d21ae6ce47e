"""LangChain callbacks -> aitel builder events. Nothing else happens here.

Each callback records references and a clock reading and returns; the
objects are read later, on the export worker (:mod:`.interpret`). The
handler runs inline (``run_inline = True``): in async chains LangChain calls
it directly on the event loop instead of hopping to a thread per callback,
which is safe because no callback blocks.

Errors inside aitel never reach the application: the callbacks every request
makes catch them in their own body (a generic wrapper would repack the
arguments and double their cost); the rare ones are wrapped with ``guarded``.
Both report through the same counter and rate-limited log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from aitel import Tracer
from aitel._safety import guarded, report_internal_error
from aitel.builder import PacketBuilder
from aitel.integration import HandlerOptions

from ._version import __version__
from .interpret import INTERPRETER

# LangGraph unwinds runs with exceptions that are not failures: ``interrupt()``
# waiting for input (GraphInterrupt, NodeInterrupt), a ``Command`` addressed
# to the parent graph (ParentCommand), a run drained at a step boundary
# (GraphDrained). All derive from GraphBubbleUp; they are matched by class
# name along the MRO, so that langgraph is never imported.
_CONTROL_FLOW = frozenset(
    {"GraphBubbleUp", "GraphInterrupt", "NodeInterrupt", "ParentCommand", "GraphDrained"}
)


def control_flow(error: BaseException) -> str | None:
    """The name of the signal when ``error`` is control flow rather than a failure.

    LangGraph's interrupts and commands, and ``GeneratorExit`` (the consumer
    of a stream stopped reading it).
    """
    if isinstance(error, GeneratorExit):
        return "GeneratorExit"
    if any(cls.__name__ in _CONTROL_FLOW for cls in type(error).__mro__):
        return type(error).__name__
    return None


def _name(serialized: dict[str, Any] | None, kwargs: dict[str, Any], default: str) -> str:
    name = kwargs.get("name")
    if name:
        return str(name)
    if serialized:
        value = serialized.get("name")
        if value:
            return str(value)
        ids = serialized.get("id")
        if isinstance(ids, list) and ids:
            return str(ids[-1])
    return default


class AITelHandler(BaseCallbackHandler):
    """Turns every LangChain request it sees into one aitel context packet.

    Pass it in ``config={"callbacks": [AITelHandler()]}`` (or ``callbacks=``).
    Options set pipeline metadata on every packet; per-call
    ``config={"metadata": ..., "tags": ...}`` adds to them.
    """

    run_inline = True
    raise_error = False

    def __init__(
        self,
        *,
        tracer: Tracer | None = None,
        exporter: Any = None,
        model_name: str | None = None,
        model_version: str | None = None,
        model_provider: str | None = None,
        ab_variant: str | None = None,
        preprocessing_version: str | None = None,
        app_version: str | None = None,
        environment: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        capture_logprobs: bool | None = None,
    ) -> None:
        super().__init__()
        self._handler_options = HandlerOptions(
            "langchain",
            __version__,
            tracer=tracer,
            exporter=exporter,
            model_name=model_name,
            model_version=model_version,
            model_provider=model_provider,
            ab_variant=ab_variant,
            preprocessing_version=preprocessing_version,
            app_version=app_version,
            environment=environment,
            session_id=session_id,
            user_id=user_id,
            tags=tags,
            metadata=metadata,
            capture_logprobs=capture_logprobs,
        )

    @property
    def tracer(self) -> Tracer:
        """The tracer packets go to (the process-wide one unless given)."""
        return self._handler_options.tracer

    def _builder(self) -> PacketBuilder:
        return self._handler_options.tracer.builder

    def flush(self, timeout: float = 5.0) -> bool:
        """Export every finished request now (serverless handlers, scripts)."""
        return self.tracer.flush(timeout)

    def _start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        kind: str,
        name: str,
        inputs: Any,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        tracer, options = self._handler_options.resolve()
        tracer.builder.start(
            run_id, parent_run_id, kind, name, inputs, tags, metadata, attrs, options, INTERPRETER
        )

    # -- chains ----------------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            name = _name(serialized, kwargs, "chain")
            lowered = name.lower()
            kind = "agent" if "agent" in lowered and "executor" in lowered else "chain"
            self._start(run_id, parent_run_id, kind, name, inputs, tags, metadata)
        except Exception as exc:
            report_internal_error("AITelHandler.on_chain_start", exc)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            builder = self._builder()
            # A streamed run (stream, astream, astream_events, transform) starts with
            # the placeholder {"input": ""}: its input is a stream too, and LangChain
            # passes what it was (the chunks added up) with the run's end or error.
            inputs = kwargs.get("inputs")
            if inputs is None:
                builder.end(run_id, outputs)
                return
            builder.set_inputs(run_id, inputs)
            # A stream its consumer stopped reading ends its root first (an async one
            # with GeneratorExit, see _error); the runs inside end right after, as
            # their generators are closed: wait for them.
            builder.end(run_id, outputs, wait_for_children=True)
        except Exception as exc:
            report_internal_error("AITelHandler.on_chain_end", exc)

    @guarded
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        inputs = kwargs.get("inputs")  # a streamed run's (see on_chain_end)
        if inputs is not None:
            self._builder().set_inputs(run_id, inputs)
        self._error(run_id, error)

    def _error(self, run_id: UUID, error: BaseException, outputs: Any = None) -> None:
        """A failure, or the end of a run unwound by control flow (with what it carried)."""
        signal = control_flow(error)
        builder = self._builder()
        if signal is None:
            builder.fail(run_id, error, outputs=outputs)
            return
        if error.args:  # the interrupts, the Command, the drain reason
            builder.event(run_id, signal, error.args[0])
        # a stream closed by its consumer: the runs inside end right after (on_chain_end)
        closed = signal == "GeneratorExit"
        builder.end(run_id, outputs, attrs={"control_flow": signal}, wait_for_children=closed)

    # -- models ----------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            attrs = {"invocation_params": kwargs.get("invocation_params"), "serialized": serialized}
            name = _name(serialized, kwargs, "chat_model")
            self._start(run_id, parent_run_id, "chat_model", name, messages, tags, metadata, attrs)
        except Exception as exc:
            report_internal_error("AITelHandler.on_chat_model_start", exc)

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            attrs = {"invocation_params": kwargs.get("invocation_params"), "serialized": serialized}
            name = _name(serialized, kwargs, "llm")
            self._start(run_id, parent_run_id, "llm", name, prompts, tags, metadata, attrs)
        except Exception as exc:
            report_internal_error("AITelHandler.on_llm_start", exc)

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: Any = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            self._builder().token(run_id)
        except Exception as exc:
            report_internal_error("AITelHandler.on_llm_new_token", exc)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._builder().end(run_id, response)
        except Exception as exc:
            report_internal_error("AITelHandler.on_llm_end", exc)

    @guarded
    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._error(run_id, error, kwargs.get("response"))

    # -- tools -------------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            name = _name(serialized, kwargs, "tool")
            attrs = {"tool_call_id": kwargs.get("tool_call_id")}
            arguments = inputs if inputs is not None else input_str
            self._start(run_id, parent_run_id, "tool", name, arguments, tags, metadata, attrs)
        except Exception as exc:
            report_internal_error("AITelHandler.on_tool_start", exc)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._builder().end(run_id, output)
        except Exception as exc:
            report_internal_error("AITelHandler.on_tool_end", exc)

    @guarded
    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._error(run_id, error)

    # -- retrievers ----------------------------------------------------------------

    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            name = _name(serialized, kwargs, "retriever")
            self._start(run_id, parent_run_id, "retriever", name, query, tags, metadata)
        except Exception as exc:
            report_internal_error("AITelHandler.on_retriever_start", exc)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._builder().end(run_id, documents)
        except Exception as exc:
            report_internal_error("AITelHandler.on_retriever_end", exc)

    @guarded
    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._error(run_id, error)

    # -- agents, retries, custom events --------------------------------------------

    @guarded
    def on_agent_action(self, action: Any, *, run_id: UUID, **kwargs: Any) -> None:
        builder = self._builder()
        builder.update(run_id, {"agent": True})
        builder.event(run_id, "agent_action", action)

    @guarded
    def on_agent_finish(self, finish: Any, *, run_id: UUID, **kwargs: Any) -> None:
        builder = self._builder()
        builder.update(run_id, {"agent": True})
        builder.event(run_id, "agent_finish", finish)

    @guarded
    def on_retry(self, retry_state: Any, *, run_id: UUID, **kwargs: Any) -> None:
        # tenacity's state object changes after this call: copy the two facts now.
        outcome = getattr(retry_state, "outcome", None)
        error = None
        if outcome is not None and getattr(outcome, "failed", False):
            exc = outcome.exception()
            error = f"{type(exc).__name__}: {exc}"
        data = {"attempt": getattr(retry_state, "attempt_number", None), "error": error}
        self._builder().event(run_id, "retry", data)

    @guarded
    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._builder().event(run_id, name, data)
