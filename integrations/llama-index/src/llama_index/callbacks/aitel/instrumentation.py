"""The public object: span and event handlers on LlamaIndex's root dispatcher."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Sequence
from typing import Any

from llama_index_instrumentation import get_dispatcher
from llama_index_instrumentation.dispatcher import Dispatcher
from llama_index_instrumentation.event_handlers import BaseEventHandler
from llama_index_instrumentation.span import BaseSpan
from llama_index_instrumentation.span_handlers import BaseSpanHandler

from aitel import Tracer
from aitel._safety import guarded

from ._options import HandlerOptions
from .handler import SpanTranslator


def _attach(handler: Any, translator: SpanTranslator) -> None:
    # A plain instance attribute, not a pydantic private one: private
    # attributes are read through ``BaseModel.__getattr__``, which costs more
    # than the rest of a span's handling.
    object.__setattr__(handler, "_translator", translator)


class AITelSpanHandler(BaseSpanHandler[BaseSpan]):
    """Receives LlamaIndex span enter/exit/drop calls; keeps no span objects of its own."""

    _translator: SpanTranslator

    def __init__(self, translator: SpanTranslator) -> None:
        super().__init__()
        _attach(self, translator)

    @classmethod
    def class_name(cls) -> str:
        return "AITelSpanHandler"

    @guarded
    def span_enter(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        parent_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._translator.span_enter(id_, bound_args, instance, parent_id, tags)

    @guarded
    def span_exit(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        result: Any | None = None,
        **kwargs: Any,
    ) -> None:
        self._translator.span_exit(id_, result)

    @guarded
    def span_drop(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> None:
        self._translator.span_drop(id_, err)

    def new_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        parent_span_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> BaseSpan | None:
        return None

    def prepare_to_exit_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        result: Any | None = None,
        **kwargs: Any,
    ) -> BaseSpan | None:
        return None

    def prepare_to_drop_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> BaseSpan | None:
        return None


class AITelEventHandler(BaseEventHandler):
    """Receives LlamaIndex instrumentation events."""

    _translator: SpanTranslator

    def __init__(self, translator: SpanTranslator) -> None:
        super().__init__()
        _attach(self, translator)

    @classmethod
    def class_name(cls) -> str:
        return "AITelEventHandler"

    @guarded
    def handle(self, event: Any, **kwargs: Any) -> None:
        self._translator.handle(event)


class AITelInstrumentation:
    """Turns every LlamaIndex request into one aitel context packet.

    >>> instrumentation = AITelInstrumentation(ab_variant="B").instrument()
    >>> index.as_query_engine().query("...")     # one packet
    >>> instrumentation.uninstrument()

    Options set pipeline metadata on every packet; request-level values come
    from ``instrument_tags({...})`` around a call (``session_id``,
    ``user_id``, ``request_id``, ``ab_variant``; other keys become metadata,
    a ``tags`` list becomes the packet's tags).
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
    ) -> None:
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
        translator = SpanTranslator(self._options)
        self.span_handler = AITelSpanHandler(translator)
        self.event_handler = AITelEventHandler(translator)
        self._dispatcher: Dispatcher | None = None
        self._lock = threading.Lock()

    @property
    def tracer(self) -> Tracer:
        """The tracer packets go to (the process-wide one unless given)."""
        return self._options.tracer

    @property
    def instrumented(self) -> bool:
        return self._dispatcher is not None

    def instrument(self, dispatcher: Dispatcher | None = None) -> AITelInstrumentation:
        """Attach to ``dispatcher`` (default: LlamaIndex's root dispatcher); idempotent."""
        with self._lock:
            if self._dispatcher is not None:
                return self
            target = dispatcher if dispatcher is not None else get_dispatcher()
            target.add_span_handler(self.span_handler)
            target.add_event_handler(self.event_handler)
            self._dispatcher = target
        return self

    def uninstrument(self) -> None:
        """Detach from the dispatcher; requests already running finish without it."""
        with self._lock:
            target, self._dispatcher = self._dispatcher, None
        if target is None:
            return
        # Compare by identity: pydantic handlers compare equal field by field.
        target.span_handlers = [h for h in target.span_handlers if h is not self.span_handler]
        target.event_handlers = [h for h in target.event_handlers if h is not self.event_handler]

    def flush(self, timeout: float = 5.0) -> bool:
        """Export every finished request now (scripts, serverless handlers)."""
        return self.tracer.flush(timeout)

    def __enter__(self) -> AITelInstrumentation:
        return self.instrument()

    def __exit__(self, *exc: object) -> None:
        self.uninstrument()
