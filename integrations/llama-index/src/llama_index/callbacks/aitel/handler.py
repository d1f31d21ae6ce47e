"""LlamaIndex instrumentation spans and events -> aitel builder events.

Nothing else happens here: each span or event records references and a
clock reading and returns; :mod:`.interpret` reads the objects later, on the
export worker.

LlamaIndex opens a span for nearly every method call (a query makes ~15).
Only the meaningful ones become steps: queries, retrievals, syntheses, chat
engines, prompt templating, the *one* span per model call, embeddings,
reranking, tool calls, agent and workflow runs and workflow steps. Every
other span is remembered only as a pointer to its nearest recorded ancestor,
so that what happens inside it still nests correctly.

Model calls are recognised by their start events, not by their spans: a call
is wrapped in two or three spans (``predict`` over ``complete``, ``achat``
over ``chat``, ``_prepare_chat_with_tools`` next to ``astream_chat``). The
outermost span that reports ``LLMChatStartEvent`` / ``LLMCompletionStartEvent``
becomes the step; start events from spans nested inside it are ignored, so
tokens and cost are counted once. A streamed call's span returns a generator
immediately: its step stays open until the stream's end event.

A streamed query returns before the model is even called (LlamaIndex's
streaming generators are lazy). The step that returned the stream stays open
and the stream is wrapped so that the model call made while it is drained is
recorded inside the same request; the request ends when the stream does.
A chat engine's streamed turn ends when LlamaIndex has written its answer
(``StreamChatEndEvent``, from the thread or task that drains the model).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import AsyncGenerator, Generator, Mapping
from typing import Any

from llama_index.core.agent.workflow import AgentWorkflow, BaseWorkflowAgent
from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.llms.base import BaseLLM
from llama_index.core.base.response.schema import AsyncStreamingResponse, StreamingResponse
from llama_index.core.chat_engine.types import BaseChatEngine, StreamingAgentChatResponse
from llama_index.core.instrumentation.events.chat_engine import (
    StreamChatEndEvent,
    StreamChatErrorEvent,
)
from llama_index.core.instrumentation.events.embedding import (
    EmbeddingEndEvent,
    EmbeddingStartEvent,
)
from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatInProgressEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionInProgressEvent,
    LLMCompletionStartEvent,
    LLMPredictStartEvent,
    LLMStructuredPredictStartEvent,
)
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.response_synthesizers.base import BaseSynthesizer
from llama_index.core.tools.types import BaseTool
from llama_index_instrumentation.dispatcher import active_instrument_tags
from workflows import Workflow
from workflows.events import Event as WorkflowEvent

from aitel._ids import new_id
from aitel.builder import PacketBuilder, TraceOptions, active_run

from ._options import HandlerOptions
from .interpret import INTERPRETER
from .streams import AsyncTokenStream, TokenStream

_AGENT_TYPES: tuple[type, ...] = (BaseWorkflowAgent, AgentWorkflow)

_LLM_KINDS = frozenset({"llm", "chat_model"})
_RAW_MODEL_CALLS = frozenset(
    {
        "chat",
        "achat",
        "stream_chat",
        "astream_chat",
        "complete",
        "acomplete",
        "stream_complete",
        "astream_complete",
    }
)
# Model methods that wrap templating and one or more calls: recorded only
# when nothing around them is (``llm.predict(...)`` called directly).
_COMPOUND_MODEL_CALLS = frozenset(
    {
        "predict",
        "apredict",
        "stream",
        "astream",
        "structured_predict",
        "astructured_predict",
        "stream_structured_predict",
        "astream_structured_predict",
        "predict_and_call",
        "apredict_and_call",
        "chat_with_tools",
        "achat_with_tools",
        "stream_chat_with_tools",
        "astream_chat_with_tools",
    }
)
_QUERY_METHODS = frozenset({"query", "aquery"})
_RETRIEVE_METHODS = frozenset({"retrieve", "aretrieve"})
_SYNTHESIZE_METHODS = frozenset({"synthesize", "asynthesize"})
_CHAT_ENGINE_METHODS = frozenset({"chat", "achat", "stream_chat", "astream_chat"})
_TOOL_METHODS = frozenset({"call", "acall", "__call__"})
# Agent workflow steps that only move data around; their work is in the others.
_AGENT_PLUMBING_STEPS = frozenset(
    {"init_run", "setup_agent", "parse_agent_output", "aggregate_tool_results"}
)
_STEP_INPUT_TAG = "llamaindex.step.input_event"
_RUN_ID_TAG = "llamaindex.run_id"
_STREAM_TYPES = (StreamingResponse, AsyncStreamingResponse, Generator, AsyncGenerator)
_EARLY_CLOSE = (GeneratorExit, StopAsyncIteration)
_MAX_TRACKED_SPANS = 50_000


def span_name(span_id: str) -> str:
    """``"RetrieverQueryEngine.query-<uuid4>"`` -> ``"RetrieverQueryEngine.query"``."""
    if len(span_id) > 37 and span_id[-37] == "-":
        return span_id[:-37]
    return span_id


class _Run:
    """A span (or event) recorded as a builder run."""

    __slots__ = (
        "anchor_id",
        "chat_stream",
        "instance",
        "kind",
        "op",
        "parent_span",
        "prompt",
        "response",
        "root",
        "run_id",
        "streaming",
        "templating",
    )

    def __init__(
        self, run_id: str, kind: str, op: str, root: bool, parent_span: str | None = None
    ) -> None:
        self.run_id = run_id
        self.kind = kind
        self.op = op
        self.root = root
        self.parent_span = parent_span
        self.response: Any = None
        self.streaming = False
        self.templating: _Run | None = None
        self.instance: Any = None
        self.prompt: Any = None
        self.anchor_id: str | None = None
        # a chat engine's streamed answer (see SpanTranslator._await_chat_stream):
        # the span id it waits under, or what the writer reported first
        self.chat_stream: _ChatStream | None = None


class _ChatStream:
    """How far a streamed chat answer has got: written (or failed), and who waits for it."""

    __slots__ = ("done", "error", "span_id")

    def __init__(self) -> None:
        self.span_id: str | None = None
        self.done = False
        self.error: BaseException | None = None


class _Skip:
    """A span not recorded: where its children attach, and what it may become."""

    __slots__ = ("anchor", "instance", "parent_span", "span_id", "templating")

    def __init__(
        self, anchor: _Run | None, parent_span: str | None, instance: Any, span_id: str
    ) -> None:
        self.anchor = anchor
        self.parent_span = parent_span
        self.instance = instance
        self.span_id = span_id
        self.templating: _Run | None = None


class SpanTranslator:
    """The state machine shared by the span handler and the event handler."""

    def __init__(self, options: HandlerOptions) -> None:
        self.options = options
        self._runs: dict[str, _Run] = {}
        self._skipped: dict[str, _Skip] = {}
        self._streaming: dict[str, _Run] = {}
        self._event_handlers: dict[type, Any] = {}
        self._categories: dict[type, int] = {}
        self._chat_lock = threading.Lock()

    # -- helpers -------------------------------------------------------------

    def _start(
        self,
        builder: PacketBuilder,
        options: TraceOptions,
        run: _Run,
        anchor: _Run | None,
        name: str,
        inputs: Any,
        attrs: dict[str, Any],
        metadata: Any = None,
        tags: Any = None,
    ) -> None:
        builder.start(
            run.run_id,
            anchor.run_id if anchor is not None else None,
            run.kind,
            name,
            inputs,
            tags,
            metadata,
            attrs,
            options,
            INTERPRETER,
        )

    def _resolve(self, span_id: str | None) -> _Run | None:
        """The run that an event raised inside ``span_id`` belongs to."""
        if span_id is None:
            return None
        run = self._runs.get(span_id)
        if run is not None:
            return run
        skip = self._skipped.get(span_id)
        return skip.anchor if skip is not None else None

    def _prune(self, builder: PacketBuilder) -> None:
        """Forget spans whose request is gone (spans that never reported an exit)."""
        self._runs = {k: r for k, r in self._runs.items() if builder.is_open(r.run_id)}
        self._streaming = {k: r for k, r in self._streaming.items() if k in self._runs}
        self._skipped = {
            k: s
            for k, s in self._skipped.items()
            if s.anchor is None or builder.is_open(s.anchor.run_id)
        }

    # -- spans (hot path) ------------------------------------------------------

    def span_enter(
        self,
        span_id: str,
        bound_args: inspect.BoundArguments,
        instance: Any,
        parent_id: str | None,
        tags: dict[str, Any] | None,
    ) -> None:
        anchor: _Run | None = None
        found = False
        if parent_id is not None:
            anchor = self._runs.get(parent_id)
            if anchor is not None:
                found = True
            else:
                parent = self._skipped.get(parent_id)
                if parent is not None:
                    anchor, found = parent.anchor, True
        if not found:
            anchor = self._active_anchor()
        if instance is None:
            category = _STEP if tags and _STEP_INPUT_TAG in tags else _OTHER
        else:
            cls = type(instance)
            category = self._categories.get(cls, -1)
            if category < 0:
                category = _category(cls)
                self._categories[cls] = category
        if category == _OTHER or (category == _LLM and anchor is not None):
            # The common case: a span that is not a step (model spans become
            # steps when their start event arrives).
            self._skipped[span_id] = _Skip(anchor, parent_id, instance, span_id)
        else:
            self._classify(span_id, bound_args, instance, parent_id, tags, anchor, category)
        if len(self._skipped) + len(self._runs) > _MAX_TRACKED_SPANS:
            self._prune(self.options.tracer.builder)

    def _active_anchor(self) -> _Run | None:
        """The aitel run this context is inside (aitel's trace()/observe(), a drained stream)."""
        active = active_run()
        if active is not None and active[0] is self.options.tracer.builder:
            return _Run(str(active[1]), "chain", "external", False)
        return None

    def _classify(
        self,
        span_id: str,
        bound_args: inspect.BoundArguments,
        instance: Any,
        parent_id: str | None,
        tags: dict[str, Any] | None,
        anchor: _Run | None,
        category: int,
    ) -> None:
        name = span_name(span_id)
        method = name.rpartition(".")[2]
        kind = op = None
        inputs: Any = None
        attrs: dict[str, Any] | None = None
        arguments = bound_args.arguments

        if category == _STEP:
            parent = self._runs.get(parent_id) if parent_id is not None else None
            if tags and parent is not None and parent.op == "workflow":
                event = _step_event(bound_args, tags[_STEP_INPUT_TAG])
                if parent.kind == "agent":
                    if method == "call_tool":
                        kind, op = "tool", "tool_call"
                        name = str(getattr(event, "tool_name", None) or "tool")
                    elif method == "run_agent_step":
                        kind, op = "agent", "agent_step"
                        name = str(getattr(event, "current_agent_name", None) or method)
                    elif method not in _AGENT_PLUMBING_STEPS:
                        kind, op = "chain", "step"
                else:
                    kind, op = "chain", "step"
                inputs = event
                attrs = {"op": op, "step": method}
        elif category == _LLM:
            if method in _COMPOUND_MODEL_CALLS:  # called directly, not inside a step
                kind, op = "chain", "model_call"
                inputs = arguments
        elif category == _QUERY:
            if method in _QUERY_METHODS:
                kind, op = "chain", "query"
                inputs = arguments.get("str_or_query_bundle")
        elif category == _RETRIEVER:
            if method in _RETRIEVE_METHODS:
                kind, op = "retriever", "retrieve"
                inputs = arguments.get("str_or_query_bundle")
        elif category == _SYNTHESIZER:
            if method in _SYNTHESIZE_METHODS:
                kind, op = "chain", "synthesize"
                inputs = arguments.get("query")
                attrs = {"op": op, "nodes": arguments.get("nodes")}
        elif category == _CHAT_ENGINE:
            if method in _CHAT_ENGINE_METHODS:
                kind, op = "chain", "chat_engine"
                inputs = arguments.get("message")
        elif category == _TOOL:
            if method in _TOOL_METHODS and (anchor is None or anchor.kind != "tool"):
                kind, op = "tool", "tool"
                metadata = getattr(instance, "metadata", None)
                name = str(getattr(metadata, "name", None) or type(instance).__name__)
                inputs = arguments
        elif category in (_WORKFLOW, _AGENT) and method == "run":
            kind = "agent" if category == _AGENT else "chain"
            op = "workflow"
            inputs = arguments.get("start_event")

        if kind is None or op is None:
            self._skipped[span_id] = _Skip(anchor, parent_id, instance, span_id)
            return
        tracer, options = self.options.resolve()
        run = _Run(new_id(), kind, op, anchor is None, parent_id)
        metadata_value: Any = None
        tags_value: Any = None
        if anchor is None:
            metadata_value, tags_value = _request_metadata(
                tags if tags is not None else active_instrument_tags.get()
            )
        self._start(
            tracer.builder,
            options,
            run,
            anchor,
            name,
            inputs,
            attrs or {"op": op},
            metadata_value,
            tags_value,
        )
        self._runs[span_id] = run

    def span_exit(self, span_id: str, result: Any) -> None:
        builder = self.options.tracer.builder
        run = self._runs.pop(span_id, None)
        if run is None:
            skip = self._skipped.pop(span_id, None)
            if skip is not None and skip.templating is not None:
                self._end_templating(builder, skip, None)
            return
        if run.templating is not None:
            self._end_templating(builder, run, None)
        if run.op == "llm":
            if isinstance(result, Generator | AsyncGenerator):
                run.streaming = True  # ends with its end event
                self._runs[span_id] = run
                self._streaming[span_id] = run
            else:
                builder.end(run.run_id, run.response if run.response is not None else result)
            return
        if run.op in ("embedding", "rerank"):
            builder.end(run.run_id, run.response if run.response is not None else result)
            return
        if isinstance(result, StreamingAgentChatResponse) and self._await_chat_stream(
            span_id, run, result
        ):
            return
        if isinstance(result, StreamingResponse | AsyncStreamingResponse):
            # The model has not run yet: this step (and every step that passes
            # the response on) ends when the stream does.
            gen: Any = result.response_gen
            if isinstance(gen, TokenStream | AsyncTokenStream):
                if not gen.finished:
                    gen.keep_open(run.run_id, result)
                    return
            elif isinstance(result, StreamingResponse) and gen is not None:
                result.response_gen = TokenStream(gen, builder, run.run_id, result)
                return
            elif isinstance(result, AsyncStreamingResponse) and gen is not None:
                result.response_gen = AsyncTokenStream(gen, builder, run.run_id, result)
                return
        if run.op == "tool_call":
            output = getattr(result, "tool_output", None)
            if getattr(output, "is_error", False):
                error = getattr(output, "exception", None) or str(output)
                builder.fail(run.run_id, error, outputs=result)
                return
        builder.end(
            run.run_id,
            result,
            wait_for_children=run.root and isinstance(result, _STREAM_TYPES),
        )

    def _await_chat_stream(
        self, span_id: str, run: _Run, response: StreamingAgentChatResponse
    ) -> bool:
        """Keep a chat engine's run open until its streamed answer is written.

        ``stream_chat`` / ``astream_chat`` return at once; a thread (or task)
        of LlamaIndex's then drains the model's stream into the response and
        the chat memory, and reports ``StreamChatEndEvent`` (or
        ``StreamChatErrorEvent``) from inside this span's context. The run
        ends then (:meth:`_on_chat_stream_end`), so that the model call made
        meanwhile belongs to this request; if the writer has finished already,
        it ends now with what the writer reported. False for any other run.
        """
        if run.op != "chat_engine":
            return False
        with self._chat_lock:
            state = run.chat_stream
            if state is None or not state.done:
                run.chat_stream = state or _ChatStream()
                run.chat_stream.span_id = span_id
                run.response = response
                self._runs[span_id] = run
                return True
        run.chat_stream = None
        builder = self.options.tracer.builder
        if state.error is not None:
            builder.fail(run.run_id, state.error, outputs=response)
        else:
            builder.end(run.run_id, response)
        return True

    def _on_chat_stream_end(self, event: Any) -> None:
        run = self._resolve(event.span_id)
        if run is None or run.op != "chat_engine":
            return
        error = event.exception if isinstance(event, StreamChatErrorEvent) else None
        with self._chat_lock:
            state = run.chat_stream
            if state is None or state.span_id is None:  # before the span's exit
                run.chat_stream = state or _ChatStream()
                run.chat_stream.done = True
                run.chat_stream.error = error
                return
            run.chat_stream = None
            self._runs.pop(state.span_id, None)
        builder = self.options.tracer.builder
        if error is not None:
            builder.fail(run.run_id, error, outputs=run.response)
        else:
            builder.end(run.run_id, run.response)

    def span_drop(self, span_id: str, err: BaseException | None) -> None:
        builder = self.options.tracer.builder
        run = self._runs.pop(span_id, None)
        error: BaseException | str = err if err is not None else "span dropped"
        if run is None:
            skip = self._skipped.pop(span_id, None)
            if skip is not None and skip.templating is not None:
                builder.fail(skip.templating.run_id, error)
            return
        if run.templating is not None:
            builder.fail(run.templating.run_id, error)
        builder.fail(run.run_id, error, outputs=run.response)

    # -- events (hot path) -----------------------------------------------------

    def handle(self, event: Any) -> None:
        cls = type(event)
        method = self._event_handlers.get(cls)
        if method is None:
            method = self._event_method(cls)
            self._event_handlers[cls] = method
        method(event)

    def _event_method(self, cls: type) -> Any:
        table: list[tuple[type, Any]] = [
            (LLMChatStartEvent, self._on_chat_start),
            (LLMCompletionStartEvent, self._on_completion_start),
            (LLMChatInProgressEvent, self._on_model_progress),
            (LLMCompletionInProgressEvent, self._on_model_progress),
            (LLMChatEndEvent, self._on_model_end),
            (LLMCompletionEndEvent, self._on_model_end),
            (LLMPredictStartEvent, self._on_templating),
            (LLMStructuredPredictStartEvent, self._on_templating),
            (EmbeddingStartEvent, self._on_embedding_start),
            (EmbeddingEndEvent, self._on_embedding_end),
            (ReRankStartEvent, self._on_rerank_start),
            (ReRankEndEvent, self._on_rerank_end),
            (ExceptionEvent, self._on_exception),
            (StreamChatEndEvent, self._on_chat_stream_end),
            (StreamChatErrorEvent, self._on_chat_stream_end),
        ]
        for base, method in table:
            if issubclass(cls, base):
                return method
        module = cls.__module__
        if module.startswith(("llama_index", "workflows")):
            return _ignore
        return self._on_custom

    def _promote(
        self,
        event: Any,
        kind: str,
        op: str,
        attrs: dict[str, Any],
        same_kinds: frozenset[str],
        prompt: Any = None,
    ) -> _Run | None:
        """Record the span an event was raised in, unless a run of its kind encloses it."""
        span_id = event.span_id
        if span_id is None or span_id in self._runs:
            return None
        skip = self._skipped.get(span_id)
        if skip is None:
            return None
        anchor = skip.anchor
        if anchor is not None and anchor.kind in same_kinds:
            return None  # a call nested inside the same call (achat -> chat)
        anchor_id = anchor.run_id if anchor is not None else None
        if prompt is not None and self._streaming:
            outer = self._streamed_by(skip.instance, anchor_id, prompt)
            if outer is not None:
                skip.anchor = outer
                return None
        tracer, options = self.options.resolve()
        run = _Run(new_id(), kind, op, anchor is None, skip.parent_span)
        if prompt is not None:
            run.instance = skip.instance
            run.prompt = prompt
            run.anchor_id = anchor_id
        metadata: Any = None
        tags: Any = None
        if anchor is None:
            metadata, tags = _request_metadata(event.tags or active_instrument_tags.get())
        attrs["instance"] = skip.instance
        name = span_name(skip.span_id)
        self._start(tracer.builder, options, run, anchor, name, event, attrs, metadata, tags)
        del self._skipped[span_id]
        self._runs[span_id] = run
        return run

    def _streamed_by(self, instance: Any, anchor_id: str | None, prompt: Any) -> _Run | None:
        """The open streamed call that a model call with no parent span belongs to.

        A streamed call can make its real call lazily, from inside its
        generator (``astream_complete`` iterating ``stream_complete``): that
        span has no parent, but the same model gets the same prompt while
        the outer stream is open in the same request.
        """
        for run in list(self._streaming.values()):
            if run.instance is instance and run.anchor_id == anchor_id and run.prompt == prompt:
                return run
        return None

    def _on_chat_start(self, event: Any) -> None:
        messages = event.messages
        run = self._promote(event, "chat_model", "llm", {"op": "llm"}, _LLM_KINDS, messages)
        if run is not None:
            self._templated(run, messages)

    def _on_completion_start(self, event: Any) -> None:
        prompt = event.prompt
        run = self._promote(event, "llm", "llm", {"op": "llm"}, _LLM_KINDS, prompt)
        if run is not None:
            self._templated(run, prompt)

    def _on_model_progress(self, event: Any) -> None:
        run = self._runs.get(event.span_id) if event.span_id is not None else None
        if run is not None and run.op == "llm":
            self.options.tracer.builder.token(run.run_id)

    def _on_model_end(self, event: Any) -> None:
        span_id = event.span_id
        run = self._runs.get(span_id) if span_id is not None else None
        if run is None or run.op != "llm":
            return
        response = run.response = event.response
        message = getattr(response, "message", None)
        if message is not None:
            # the text as answered: agents edit the message in place afterwards
            # (ReActAgent strips "Answer:" from it), and it is read later
            self.options.tracer.builder.update(run.run_id, {"output_text": message.content})
        if run.streaming:
            del self._runs[span_id]
            self._streaming.pop(span_id, None)
            self.options.tracer.builder.end(run.run_id, event.response)

    def _on_exception(self, event: Any) -> None:
        span_id = event.span_id
        run = self._runs.get(span_id) if span_id is not None else None
        if run is None or not run.streaming:
            return
        del self._runs[span_id]
        self._streaming.pop(span_id, None)
        builder = self.options.tracer.builder
        if isinstance(event.exception, _EARLY_CLOSE):
            builder.end(run.run_id, run.response, attrs={"stream_closed_early": True})
        else:
            builder.fail(run.run_id, event.exception, outputs=run.response)

    def _on_templating(self, event: Any) -> None:
        span_id = event.span_id
        if span_id is None:
            return
        holder: _Run | _Skip
        anchor: _Run | None
        recorded = self._runs.get(span_id)
        if recorded is not None:
            holder = anchor = recorded  # a recorded ``llm.predict(...)``
        else:
            skip = self._skipped.get(span_id)
            if skip is None:
                return
            holder, anchor = skip, skip.anchor
        if anchor is None or anchor.kind in _LLM_KINDS:
            return
        tracer, options = self.options.resolve()
        run = _Run(new_id(), "chain", "templating", False)
        self._start(tracer.builder, options, run, anchor, "templating", event, {"op": "templating"})
        holder.templating = run

    def _templated(self, run: _Run, prompt: Any) -> None:
        """A model call started: the templating around it produced ``prompt``."""
        span_id = run.parent_span
        for _ in range(32):
            if span_id is None:
                return
            skip = self._skipped.get(span_id)
            if skip is None:
                recorded = self._runs.get(span_id)  # e.g. a recorded ``llm.predict(...)``
                if recorded is not None and recorded.templating is not None:
                    self._end_templating(self.options.tracer.builder, recorded, prompt)
                return
            if skip.templating is not None:
                self._end_templating(self.options.tracer.builder, skip, prompt)
                return
            span_id = skip.parent_span

    @staticmethod
    def _end_templating(builder: PacketBuilder, holder: _Run | _Skip, prompt: Any) -> None:
        run = holder.templating
        holder.templating = None
        if run is not None:
            builder.end(run.run_id, prompt)

    def _on_embedding_start(self, event: Any) -> None:
        self._promote(
            event, "embedding", "embedding", {"op": "embedding"}, frozenset({"embedding"})
        )

    def _on_embedding_end(self, event: Any) -> None:
        run = self._runs.get(event.span_id) if event.span_id is not None else None
        if run is not None and run.op == "embedding":
            run.response = event

    def _on_rerank_start(self, event: Any) -> None:
        self._promote(event, "reranker", "rerank", {"op": "rerank"}, frozenset({"reranker"}))

    def _on_rerank_end(self, event: Any) -> None:
        run = self._runs.get(event.span_id) if event.span_id is not None else None
        if run is not None and run.op == "rerank":
            run.response = event

    def _on_custom(self, event: Any) -> None:
        run = self._resolve(event.span_id)
        if run is not None:
            self.options.tracer.builder.event(run.run_id, type(event).__name__, event)


_OTHER, _STEP, _LLM, _QUERY, _RETRIEVER, _SYNTHESIZER, _CHAT_ENGINE, _TOOL, _WORKFLOW, _AGENT = (
    range(10)
)


def _category(cls: type) -> int:
    """What kind of LlamaIndex object a span's instance is (computed once per class)."""
    if issubclass(cls, BaseLLM):
        return _LLM
    if issubclass(cls, BaseQueryEngine):
        return _QUERY
    if issubclass(cls, BaseRetriever):
        return _RETRIEVER
    if issubclass(cls, BaseSynthesizer):
        return _SYNTHESIZER
    if issubclass(cls, BaseChatEngine):
        return _CHAT_ENGINE
    if issubclass(cls, BaseTool):
        return _TOOL
    if issubclass(cls, _AGENT_TYPES):
        return _AGENT
    if issubclass(cls, Workflow):
        return _WORKFLOW
    return _OTHER


def _ignore(event: Any) -> None:
    return None


def _step_event(bound_args: inspect.BoundArguments, type_name: Any) -> Any:
    """The event a workflow step was called with."""
    for value in bound_args.arguments.values():
        if type(value).__name__ == type_name:
            return value
    for value in bound_args.arguments.values():
        if isinstance(value, WorkflowEvent):
            return value
    return None


def _request_metadata(tags: Mapping[str, Any] | None) -> tuple[Any, Any]:
    """``instrument_tags({...})`` of a request -> (root metadata, root tags)."""
    if not tags:
        return None, None
    metadata: dict[str, Any] = {}
    labels: Any = None
    for key, value in tags.items():
        if key == "tags":
            labels = [value] if isinstance(value, str) else list(value or ())
        elif key == _RUN_ID_TAG:
            metadata["workflow_run_id"] = value
        elif not key.startswith("llamaindex."):
            metadata[key] = value
    return (metadata or None), labels
