"""Packets for code outside the frameworks: ``trace()`` / ``step()`` and ``@observe``.

>>> with aitel.trace("rag-query", input={"query": q}) as t:
...     with t.step("vector_search", kind="retriever", input=q) as s:
...         docs = db.search(q)
...         s.set_retrieval(query=q, documents=docs)
...     t.set_output(answer)

Framework runs started inside a ``trace()`` (a LangChain chain with
``AITelHandler``, a LlamaIndex query) become steps of that trace.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from typing import Any, TypeVar, overload

from ._ids import new_id
from ._safety import call_safely, guarded, internal_log
from .assembly import NEUTRAL
from .builder import ActiveRun, TraceOptions, active_run
from .jsonable import safe_str
from .schema import StepKind
from .tracer import Tracer, get_tracer

F = TypeVar("F", bound=Callable[..., Any])

_DOC_FIELDS = ("id", "score", "source", "content", "metadata")
_TEXT_DOC_FIELDS = ("id", "source", "content")
_KINDS = frozenset(kind.value for kind in StepKind)
_MAX_ITEMS = 1_000
"""Items of a traced generator kept as its output."""


class Span:
    """An open run: the root of a trace, or a step inside one."""

    def __init__(
        self,
        tracer: Tracer,
        name: str,
        kind: str | StepKind,
        input: Any,
        parent_id: str | None,
        *,
        options: TraceOptions | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
    ) -> None:
        self.tracer = tracer
        self.name = name
        self.kind = _kind(kind)
        self.run_id = new_id()
        self.parent_id = parent_id
        self._input = input
        self._options = options
        self._metadata = dict(metadata) if metadata else None
        self._tags = list(tags) if tags else None
        self._output: Any = None
        self._active: ActiveRun | None = None
        self._closed = False

    @property
    def request_id(self) -> str | None:
        """The request id of a root span (what the packet's ``request_id`` will be)."""
        return self._options.request_id if self._options is not None else None

    # -- lifecycle -------------------------------------------------------------

    def __enter__(self) -> Span:
        self.open()
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.close(exc)

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.close(exc)

    def open(self, *, activate: bool = True) -> None:
        """Start the run; ``activate`` makes it the parent of runs started in this context."""
        call_safely(
            self.tracer.builder.start,
            self.run_id,
            self.parent_id,
            self.kind,
            self.name,
            self._input,
            tags=self._tags,
            metadata=self._metadata,
            options=self._options or self.tracer.options,
            interpreter=NEUTRAL,
            site="trace.start",
        )
        if activate:
            self._active = ActiveRun(self.tracer.builder, self.run_id)
            self._active.__enter__()

    def close(self, error: BaseException | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        if self._active is not None:
            self._active.__exit__(None, None, None)
        if error is not None:
            call_safely(
                self.tracer.builder.fail,
                self.run_id,
                error,
                outputs=self._output,
                site="trace.fail",
            )
        else:
            call_safely(self.tracer.builder.end, self.run_id, self._output, site="trace.end")

    # -- children --------------------------------------------------------------

    def step(
        self,
        name: str,
        kind: str | StepKind = StepKind.CUSTOM,
        input: Any = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
    ) -> Span:
        """A child step; use it as a context manager."""
        return Span(self.tracer, name, kind, input, self.run_id, metadata=metadata, tags=tags)

    # -- data ----------------------------------------------------------------------
    # Called by the application: an error inside is reported, never raised (see _safety).

    @guarded
    def set_input(self, value: Any) -> None:
        self._input = value
        self.tracer.builder.set_inputs(self.run_id, value)

    def set_output(self, value: Any) -> None:
        self._output = value

    @guarded
    def set_metadata(self, **values: Any) -> None:
        self.tracer.builder.add_metadata(self.run_id, values)

    @guarded
    def event(self, name: str, data: Any = None) -> None:
        self.tracer.builder.event(self.run_id, name, data)

    @guarded
    def token(self) -> None:
        """A streamed chunk arrived (the first one sets time to first token)."""
        self.tracer.builder.token(self.run_id)

    @guarded
    def set_llm(
        self,
        *,
        model_name: str | None = None,
        provider: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        prompts: Sequence[str] | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        total_tokens: int | None = None,
        cached_prompt_tokens: int | None = None,
        finish_reason: str | None = None,
        tool_calls: Sequence[Mapping[str, Any]] | None = None,
        invocation_params: Mapping[str, Any] | None = None,
        logprobs: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Describe a model call made in this step (unknown counts stay ``None``)."""
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": total_tokens,
            "cached_prompt_tokens": cached_prompt_tokens,
        }
        self.tracer.builder.update(
            self.run_id,
            {
                "llm": {
                    "model_name": model_name,
                    "provider": provider,
                    "messages": list(messages) if messages is not None else None,
                    "prompts": list(prompts) if prompts is not None else None,
                    "usage": usage if any(v is not None for v in usage.values()) else None,
                    "finish_reason": finish_reason,
                    "tool_calls": list(tool_calls or ()),
                    "invocation_params": dict(invocation_params or {}),
                    "logprobs_tokens": list(logprobs) if logprobs else None,
                }
            },
        )

    @guarded
    def set_retrieval(self, *, query: str | None = None, documents: Sequence[Any] = ()) -> None:
        """Record a retrieval; documents are dicts or objects with id/score/source/content."""
        docs = [_document(d) for d in documents]
        text: Any = query  # typed as text, but an application may pass anything
        if text is not None and not isinstance(text, str):
            text = safe_str(text)
        self.tracer.builder.update(self.run_id, {"retrieval": {"query": text, "documents": docs}})

    @guarded
    def set_tool(self, *, name: str | None = None, tool_call_id: str | None = None) -> None:
        self.tracer.builder.update(
            self.run_id, {"tool": {"name": name or self.name, "tool_call_id": tool_call_id}}
        )


def _document(doc: Any) -> dict[str, Any]:
    if isinstance(doc, Mapping):
        out = {k: doc.get(k) for k in _DOC_FIELDS if k in doc}
        if "content" not in out:
            for key in ("text", "page_content"):
                if key in doc:
                    out["content"] = doc[key]
    else:
        out = {}
        for key in _DOC_FIELDS:
            try:
                out[key] = getattr(doc, key)
            except AttributeError:
                continue
            except Exception as exc:  # a property of the application's that raises
                out[key] = f"<unreadable: {type(exc).__name__}>"
    for key in _TEXT_DOC_FIELDS:  # ids and sources are often numbers or paths
        value = out.get(key)
        if value is not None and not isinstance(value, str):
            out[key] = safe_str(value)
    return out


def _kind(kind: str | StepKind) -> str:
    """A step kind the schema knows; anything else is recorded as ``custom``."""
    value = kind.value if isinstance(kind, StepKind) else str(kind)
    if value in _KINDS:
        return value
    internal_log.log(
        logging.WARNING,
        "tracing.kind",
        f"aitel: unknown step kind {value!r} recorded as 'custom' "
        f"(kinds: {', '.join(sorted(_KINDS))})",
    )
    return StepKind.CUSTOM.value


def trace(
    name: str = "request",
    *,
    input: Any = None,
    kind: str | StepKind = StepKind.CHAIN,
    request_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    tracer: Tracer | None = None,
    **options: Any,
) -> Span:
    """Open a request (one packet); nested inside another trace it is a step.

    ``options`` are :class:`~aitel.builder.TraceOptions` fields such as
    ``ab_variant``, ``model_version``, ``session_id`` or ``user_id``.
    """
    active = active_run()
    tracer = tracer or get_tracer()
    if active is not None and active[0] is tracer.builder and tracer.builder.is_open(active[1]):
        return Span(tracer, name, kind, input, str(active[1]), metadata=metadata, tags=tags)
    trace_options = tracer.options_with(
        request_id=safe_str(request_id) if request_id else new_id(),
        tags=tuple(tags or ()),
        **options,
    )
    return Span(
        tracer, name, kind, input, None, options=trace_options, metadata=metadata, tags=tags
    )


@overload
def observe(func: F) -> F: ...


@overload
def observe(
    func: None = None,
    *,
    name: str | None = None,
    kind: str | StepKind = StepKind.CHAIN,
    capture_input: bool = True,
    capture_output: bool = True,
    tracer: Tracer | None = None,
    **options: Any,
) -> Callable[[F], F]: ...


def observe(
    func: F | None = None,
    *,
    name: str | None = None,
    kind: str | StepKind = StepKind.CHAIN,
    capture_input: bool = True,
    capture_output: bool = True,
    tracer: Tracer | None = None,
    **options: Any,
) -> F | Callable[[F], F]:
    """Trace a function: a packet per call, or a step when called inside a trace.

    Works for plain and ``async`` functions, generators and async generators
    (the step ends when the generator is exhausted or closed; ``send``,
    ``throw``, ``close`` and a generator's return value pass through as if it
    were not decorated). Exceptions are recorded and re-raised unchanged.
    """

    def decorate(fn: F) -> F:
        step_name = name or fn.__qualname__
        signature = _signature(fn)

        def open_span(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Span:
            value = _arguments(signature, args, kwargs) if capture_input else None
            return trace(step_name, input=value, kind=kind, tracer=tracer, **options)

        if inspect.isasyncgenfunction(fn):

            @functools.wraps(fn)
            async def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                span = open_span(args, kwargs)
                items: list[Any] = []
                span.open(activate=False)
                agen = fn(*args, **kwargs)
                sent: Any = None
                thrown: BaseException | None = None
                try:
                    while True:
                        try:
                            if thrown is None:
                                item = await agen.asend(sent)
                            else:
                                item, thrown = await agen.athrow(thrown), None
                        except StopAsyncIteration:
                            break
                        if capture_output and len(items) < _MAX_ITEMS:
                            items.append(item)
                        try:
                            sent = yield item
                        except GeneratorExit:
                            await agen.aclose()
                            raise
                        except BaseException as exc:  # athrow(): passed on to the generator
                            thrown = exc
                except BaseException as exc:
                    span.set_output(items if capture_output else None)
                    span.close(exc if isinstance(exc, Exception) else None)
                    raise
                span.set_output(items if capture_output else None)
                span.close()

            return agen_wrapper  # type: ignore[return-value]

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
                span = open_span(args, kwargs)
                items: list[Any] = []
                span.open(activate=False)
                gen = fn(*args, **kwargs)
                sent: Any = None
                thrown: BaseException | None = None
                try:
                    while True:
                        with ActiveRun(span.tracer.builder, span.run_id):
                            try:
                                if thrown is None:
                                    item = gen.send(sent)
                                else:
                                    item, thrown = gen.throw(thrown), None
                            except StopIteration as stop:
                                result = stop.value
                                break
                        if capture_output and len(items) < _MAX_ITEMS:
                            items.append(item)
                        try:
                            sent = yield item
                        except GeneratorExit:
                            gen.close()
                            raise
                        except BaseException as exc:  # throw(): passed on to the generator
                            thrown = exc
                except BaseException as exc:
                    span.set_output(items if capture_output else None)
                    span.close(exc if isinstance(exc, Exception) else None)
                    raise
                if capture_output and result is not None:
                    items.append(result)
                span.set_output(items if capture_output else None)
                span.close()
                return result

            return gen_wrapper  # type: ignore[return-value]

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with open_span(args, kwargs) as span:
                    result = await fn(*args, **kwargs)
                    if capture_output:
                        span.set_output(result)
                    return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with open_span(args, kwargs) as span:
                result = fn(*args, **kwargs)
                if capture_output:
                    span.set_output(result)
                return result

        return wrapper  # type: ignore[return-value]

    if func is not None:
        return decorate(func)
    return decorate


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def _arguments(
    signature: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The call's arguments by name; a single argument is recorded as itself."""
    if signature is None:
        return {"args": list(args), "kwargs": kwargs}
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError:
        return {"args": list(args), "kwargs": kwargs}
    values = {k: v for k, v in bound.arguments.items() if k not in {"self", "cls"}}
    for key, param in signature.parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD and key in values:
            values.update(values.pop(key))
    if len(values) == 1:
        return next(iter(values.values()))
    return values
