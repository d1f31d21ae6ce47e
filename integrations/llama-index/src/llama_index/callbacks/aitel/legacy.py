"""LlamaIndex's legacy callbacks -> aitel builder events.

For applications that configure ``Settings.callback_manager =
CallbackManager([AITelCallbackHandler()])``. The instrumentation handlers
(:class:`~.instrumentation.AITelInstrumentation`) see more: legacy callbacks
report no agent tool calls, no streamed tokens (no time to first token), and
a streamed query's model call arrives after the query event has ended, as a
request of its own. Use one or the other, not both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from llama_index.core.callbacks.schema import CBEventType, EventPayload

from aitel import Tracer
from aitel._ids import new_id
from aitel._safety import guarded
from aitel.builder import active_run

from ._options import HandlerOptions
from .interpret import INTERPRETER

_LLM_KINDS = frozenset({"llm", "chat_model"})
_SKIPPED = frozenset(
    {CBEventType.CHUNKING, CBEventType.NODE_PARSING, CBEventType.TREE, CBEventType.EXCEPTION}
)


class _LegacyRun:
    __slots__ = ("anchor", "call", "child_error", "kind", "op", "run_id")

    def __init__(self, run_id: str, kind: str, op: str, anchor: _LegacyRun | None = None) -> None:
        self.run_id = run_id
        self.kind = kind
        self.op = op
        self.anchor = anchor
        self.call: Any = None  # (model, prompt) of a model call
        self.child_error: BaseException | None = None


class AITelCallbackHandler(BaseCallbackHandler):
    """A legacy callback handler that writes one aitel context packet per request.

    >>> Settings.callback_manager = CallbackManager([AITelCallbackHandler()])
    """

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
        event_starts_to_ignore: Sequence[CBEventType] = (),
        event_ends_to_ignore: Sequence[CBEventType] = (),
    ) -> None:
        super().__init__(
            event_starts_to_ignore=list(event_starts_to_ignore),
            event_ends_to_ignore=list(event_ends_to_ignore),
        )
        self._options = HandlerOptions(
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
        self._runs: dict[str, _LegacyRun] = {}
        self._skipped: dict[str, _LegacyRun | None] = {}
        self._open_calls: dict[str, _LegacyRun] = {}

    @property
    def tracer(self) -> Tracer:
        return self._options.tracer

    def flush(self, timeout: float = 5.0) -> bool:
        """Export every finished request now."""
        return self.tracer.flush(timeout)

    def start_trace(self, trace_id: str | None = None) -> None:
        return None

    def end_trace(
        self, trace_id: str | None = None, trace_map: dict[str, list[str]] | None = None
    ) -> None:
        return None

    def on_event_start(
        self,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str = "",
        parent_id: str = "",
        **kwargs: Any,
    ) -> str:
        self._start(event_type, payload or {}, event_id, parent_id)
        return event_id

    def on_event_end(
        self,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str = "",
        **kwargs: Any,
    ) -> None:
        self._end(event_type, payload or {}, event_id)

    # -- translation (hot path) ------------------------------------------------------

    def _anchor(self, parent_id: str) -> _LegacyRun | None:
        run = self._runs.get(parent_id)
        if run is not None:
            return run
        if parent_id in self._skipped:
            return self._skipped[parent_id]
        active = active_run()
        if active is not None and active[0] is self.tracer.builder:
            return _LegacyRun(str(active[1]), "chain", "external")
        return None

    @guarded
    def _start(
        self, event_type: CBEventType, payload: dict[str, Any], event_id: str, parent_id: str
    ) -> None:
        anchor = self._anchor(parent_id)
        spec = self._classify(event_type, payload, anchor)
        if spec is None:
            if event_type is not CBEventType.EXCEPTION:
                self._skipped[event_id] = anchor
            return
        kind, op, name, inputs = spec
        call = None
        if op == "llm":
            # Model events are leaves: acomplete -> complete arrive as two
            # siblings with the same model and prompt. The inner one is the
            # same call.
            call = (name, inputs["prompt"], inputs["messages"])
            for other in list(self._open_calls.values()):
                if other.anchor is anchor and other.call == call:
                    self._skipped[event_id] = other
                    return
        tracer, options = self._options.resolve()
        run = _LegacyRun(new_id(), kind, op, anchor)
        run.call = call
        if call is not None:
            self._open_calls[event_id] = run
        tracer.builder.start(
            run.run_id,
            anchor.run_id if anchor is not None else None,
            kind,
            name,
            inputs,
            attrs={"op": op},
            options=options,
            interpreter=INTERPRETER,
        )
        self._runs[event_id] = run

    @staticmethod
    def _classify(
        event_type: CBEventType, payload: dict[str, Any], anchor: _LegacyRun | None
    ) -> tuple[str, str, str, Any] | None:
        if event_type in _SKIPPED:
            return None
        if event_type is CBEventType.LLM:
            if anchor is not None and anchor.kind in _LLM_KINDS:
                return None  # achat -> chat: one model call
            serialized = payload.get(EventPayload.SERIALIZED) or {}
            name = (
                str(serialized.get("class_name") or "llm")
                if isinstance(serialized, dict)
                else "llm"
            )
            inputs = {
                "messages": payload.get(EventPayload.MESSAGES),
                "prompt": payload.get(EventPayload.PROMPT),
                "model_dict": serialized,
                "additional_kwargs": payload.get(EventPayload.ADDITIONAL_KWARGS),
            }
            kind = "chat_model" if EventPayload.MESSAGES in payload else "llm"
            return kind, "llm", name, inputs
        if event_type is CBEventType.EMBEDDING:
            if anchor is not None and anchor.kind == "embedding":
                return None
            serialized = payload.get(EventPayload.SERIALIZED) or {}
            name = (
                str(serialized.get("class_name") or "embedding")
                if isinstance(serialized, dict)
                else "embedding"
            )
            return "embedding", "embedding", name, {"model_dict": serialized}
        query = payload.get(EventPayload.QUERY_STR)
        if event_type is CBEventType.QUERY:
            return "chain", "query", "query", query
        if event_type is CBEventType.RETRIEVE:
            return "retriever", "retrieve", "retrieve", query
        if event_type is CBEventType.SYNTHESIZE:
            return "chain", "synthesize", "synthesize", query
        if event_type is CBEventType.TEMPLATING:
            inputs = {
                "template": payload.get(EventPayload.TEMPLATE),
                "template_args": payload.get(EventPayload.TEMPLATE_VARS),
            }
            return "chain", "templating", "templating", inputs
        if event_type is CBEventType.RERANKING:
            inputs = {
                "query": query,
                "nodes": payload.get(EventPayload.NODES),
                "top_n": payload.get(EventPayload.TOP_K),
                "model_name": payload.get(EventPayload.MODEL_NAME),
            }
            return "reranker", "rerank", "rerank", inputs
        if event_type is CBEventType.FUNCTION_CALL:
            tool = payload.get(EventPayload.TOOL)
            name = str(getattr(tool, "name", None) or "tool")
            arguments = payload.get(EventPayload.FUNCTION_CALL)
            return "tool", "tool", name, {"kwargs": _arguments(arguments)}
        if event_type is CBEventType.AGENT_STEP:
            return "agent", "generic", "agent_step", payload.get(EventPayload.MESSAGES)
        return "chain", "generic", str(getattr(event_type, "value", event_type)), query

    @guarded
    def _end(self, event_type: CBEventType, payload: dict[str, Any], event_id: str) -> None:
        run = self._runs.pop(event_id, None)
        if run is None:
            self._skipped.pop(event_id, None)
            return
        self._open_calls.pop(event_id, None)
        builder = self.tracer.builder
        error = payload.get(EventPayload.EXCEPTION)
        if error is None and not payload and run.child_error is not None:
            # LlamaIndex reports an exception only to the innermost event it
            # leaves; the events around it end with an empty payload.
            error = run.child_error
        if isinstance(error, BaseException) and run.anchor is not None:
            run.anchor.child_error = error
        if run.op == "llm":
            output = payload.get(EventPayload.RESPONSE) or payload.get(EventPayload.COMPLETION)
        elif run.op in ("retrieve", "rerank"):
            output = payload.get(EventPayload.NODES)
        elif run.op == "embedding":
            output = {
                "chunks": payload.get(EventPayload.CHUNKS),
                "embeddings": payload.get(EventPayload.EMBEDDINGS),
            }
        elif run.op == "tool":
            output = payload.get(EventPayload.FUNCTION_OUTPUT)
        else:
            output = payload.get(EventPayload.RESPONSE)
        if isinstance(error, BaseException):
            builder.fail(run.run_id, error, outputs=output)
        else:
            builder.end(run.run_id, output)


def _arguments(value: Any) -> Any:
    if isinstance(value, str):
        import json

        try:
            return json.loads(value)
        except ValueError:
            return {"input": value}
    return value if isinstance(value, dict) else {"input": value}
