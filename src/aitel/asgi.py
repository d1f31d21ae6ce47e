"""ASGI middleware: one context packet per HTTP request, the LLM work inside it as steps.

>>> app.add_middleware(AITelMiddleware, app_version="1.4.2")   # FastAPI, Starlette
>>> app = AITelMiddleware(app)                                  # any ASGI application

Each HTTP request opens an :func:`aitel.trace`; LangChain and LlamaIndex
runs started while it is handled (in the endpoint, a dependency, a
background thread of the server's pool, a streamed response) become its
steps, so the request is one packet. The packet's ``request_id`` is the
``X-Request-ID`` the client sent, or a new one; the application sees it in
the request headers and the client gets it back in the response. The HTTP
method, route template, path and status are in
``pipeline_metadata.metadata``; a 5xx answer or an exception is a
``FAILURE``.

Pure ASGI: nothing here imports a web framework.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from contextvars import ContextVar
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import orjson

from ._ids import new_id
from ._safety import call_safely
from .builder import TraceOptions
from .tracer import Tracer, get_tracer
from .tracing import Span, trace

__all__ = [
    "METHOD_KEY",
    "PATH_KEY",
    "REQUEST_ID_HEADER",
    "ROUTE_KEY",
    "STATUS_KEY",
    "AITelMiddleware",
    "ServerError",
    "current_request",
    "request_metadata",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = "x-request-id"
# OpenTelemetry's HTTP attribute names, as keys of pipeline_metadata.metadata
METHOD_KEY = "http.request.method"
ROUTE_KEY = "http.route"
PATH_KEY = "url.path"
STATUS_KEY = "http.response.status_code"

_VALID_REQUEST_ID = re.compile(r"[!-~]{1,200}")  # visible ASCII, as sent in a header
_TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded", "+json")
_OPTION_NAMES = frozenset(TraceOptions.__dataclass_fields__) - {"request_id", "tags", "metadata"}

_current: ContextVar[Span | None] = ContextVar("aitel_http_request", default=None)


class ServerError(Exception):
    """The application answered with a 5xx status without raising."""

    def __init__(self, status: int) -> None:
        self.status = status
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Server Error"
        super().__init__(f"HTTP {status} {phrase}")


def current_request() -> Span | None:
    """The trace of the HTTP request being handled, or None outside one.

    Use it to describe the request: ``current_request().set_metadata(
    session_id=..., ab_variant=...)`` (keys named like pipeline metadata
    fill those fields), ``set_input(question)``, ``set_output(answer)``.
    """
    return _current.get()


def request_metadata(**values: Any) -> Callable[[], Awaitable[None]]:
    """A dependency that adds ``values`` to the metadata of every request of a route.

    >>> @app.post("/ask", dependencies=[Depends(request_metadata(feature="rag"))])
    """

    async def add_request_metadata() -> None:
        span = _current.get()
        if span is not None:
            call_safely(span.set_metadata, **values, site="asgi.request_metadata")

    return add_request_metadata


class AITelMiddleware:
    """Traces each HTTP request of an ASGI application as one packet.

    Args:
        app: the ASGI application.
        request_id_header: the header carrying the request id (``X-Request-ID``).
        trust_request_id: use the id the client sent (else always make one).
        response_header: the header that returns the request id (None: none).
        exclude_paths: paths not traced (health checks); an entry also
            excludes the paths below it.
        capture_body: record JSON and text request and response bodies, up
            to ``max_body_bytes`` each, in the packet's input and output.
        tracer: where packets go (the process-wide tracer by default).
        tags, metadata: added to every packet.
        options: pipeline metadata for every packet (``ab_variant``,
            ``app_version``, ``environment``, ``model_name``, ...).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        request_id_header: str = REQUEST_ID_HEADER,
        trust_request_id: bool = True,
        response_header: str | None = REQUEST_ID_HEADER,
        exclude_paths: Iterable[str] = (),
        capture_body: bool = True,
        max_body_bytes: int = 64 * 1024,
        tracer: Tracer | None = None,
        tags: Iterable[str] = (),
        metadata: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        unknown = set(options) - _OPTION_NAMES
        if unknown:
            raise TypeError(f"unknown AITelMiddleware options: {', '.join(sorted(unknown))}")
        self.app = app
        self.request_id_header = request_id_header.lower().encode("latin-1")
        self.trust_request_id = trust_request_id
        self.response_header = (
            response_header.lower().encode("latin-1") if response_header else None
        )
        self.exclude_paths = tuple(p.rstrip("/") or "/" for p in exclude_paths)
        self.capture_body = capture_body
        self.max_body_bytes = max_body_bytes
        self.tracer = tracer
        self.tags = tuple(tags)
        self.metadata = dict(metadata or {})
        self.options = options

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or self._excluded(str(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        request = call_safely(self._open, scope, receive, site="asgi.open")
        if request is None:  # aitel could not start: serve the request untraced
            await self.app(scope, receive, send)
            return
        token = _current.set(request.span)
        error: BaseException | None = None
        try:
            await self.app(request.scope, request.receive, request.send(send))
        except BaseException as exc:
            error = exc
            raise
        finally:
            _current.reset(token)
            call_safely(request.close, error, site="asgi.close")

    def _excluded(self, path: str) -> bool:
        for prefix in self.exclude_paths:
            if path == prefix or path.startswith(prefix + "/") or prefix == "/":
                return True
        return False

    def _open(self, scope: Scope, receive: Receive) -> _Request:
        headers = list(scope.get("headers") or ())
        request_id = self._incoming_request_id(headers)
        if request_id is None:
            request_id = new_id()
            # the application (its logs, an echoing middleware) sees the same id
            headers = [h for h in headers if h[0].lower() != self.request_id_header]
            headers.append((self.request_id_header, request_id.encode("latin-1")))
            scope = {**scope, "headers": headers}
        method = str(scope.get("method", "GET"))
        path = str(scope.get("path", ""))
        metadata = {**self.metadata, METHOD_KEY: method, PATH_KEY: path}
        span = trace(
            method,
            input=_request_input(scope, None),
            request_id=request_id,
            metadata=metadata,
            tags=self.tags,
            tracer=self.tracer or get_tracer(),
            **self.options,
        )
        request = _Request(self, span, scope, receive, request_id, method, headers)
        span.open()
        return request

    def _incoming_request_id(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        if not self.trust_request_id:
            return None
        for name, value in headers:
            if name.lower() == self.request_id_header:
                text = value.decode("latin-1").strip()
                return text if _VALID_REQUEST_ID.fullmatch(text) else None
        return None


class _Body:
    """The first ``limit`` bytes of a body, and how long it was."""

    __slots__ = ("chunks", "content_type", "kept", "limit", "size")

    def __init__(self, limit: int, content_type: str | None) -> None:
        self.limit = limit
        self.content_type = content_type
        self.chunks: list[bytes] = []
        self.kept = 0
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.kept < self.limit and chunk:
            part = chunk[: self.limit - self.kept]
            self.chunks.append(part)
            self.kept += len(part)

    def value(self) -> Any:
        if not self.size:
            return None
        content_type = (self.content_type or "").lower()
        if not any(t in content_type for t in _TEXT_TYPES):
            return {"content_type": self.content_type, "bytes": self.size}
        data = b"".join(self.chunks)
        complete = self.size <= self.limit
        if complete and ("json" in content_type):
            try:
                return orjson.loads(data)
            except orjson.JSONDecodeError:
                pass
        if complete and "x-www-form-urlencoded" in content_type:
            return dict(parse_qsl(data.decode("utf-8", "replace"), keep_blank_values=True))
        text = data.decode("utf-8", "replace")
        if not complete:
            text += f"…[truncated {self.size - self.kept} bytes]"
        return text


class _Request:
    """One traced HTTP request: the wrapped receive/send and what they saw."""

    def __init__(
        self,
        middleware: AITelMiddleware,
        span: Span,
        scope: Scope,
        receive: Receive,
        request_id: str,
        method: str,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        self.middleware = middleware
        self.span = span
        self.scope = scope
        self.request_id = request_id
        self.method = method
        self.root_path = str(scope.get("root_path", ""))
        self.status: int | None = None
        capture = middleware.capture_body
        limit = middleware.max_body_bytes
        self.request_body = _Body(limit, _header(headers, b"content-type")) if capture else None
        self.response_body: _Body | None = None
        self._receive = receive

    async def receive(self) -> Message:
        message = await self._receive()
        body = self.request_body
        if body is not None and message.get("type") == "http.request":
            body.add(message.get("body") or b"")
        return message

    def send(self, send: Send) -> Send:
        header = self.middleware.response_header

        async def send_and_record(message: Message) -> None:
            kind = message.get("type")
            if kind == "http.response.start":
                self.status = int(message.get("status", 0))
                headers = list(message.get("headers") or ())
                if header is not None and _header(headers, header) is None:
                    headers.append((header, self.request_id.encode("latin-1")))
                    message = {**message, "headers": headers}
                if self.request_body is not None:
                    limit = self.middleware.max_body_bytes
                    self.response_body = _Body(limit, _header(headers, b"content-type"))
            elif kind == "http.response.body" and self.response_body is not None:
                self.response_body.add(message.get("body") or b"")
            await send(message)

        return send_and_record

    def route(self) -> str | None:
        """The route template the framework matched (``/items/{item_id}``), if it says."""
        route = self.scope.get("route")
        template = getattr(route, "path_format", None) or getattr(route, "path", None)
        if not isinstance(template, str):
            return None
        mounted = str(self.scope.get("root_path", ""))[len(self.root_path) :]
        if hasattr(route, "routes"):  # a mount that matched no route below it
            return mounted or template
        return mounted + template

    def close(self, error: BaseException | None) -> None:
        span = self.span
        route = self.route()
        status = self.status
        if status is None and isinstance(error, Exception):
            status = 500  # what the server answers for an unhandled exception
        updates: dict[str, Any] = {STATUS_KEY: status}
        if route is not None:
            updates[ROUTE_KEY] = route
        span.set_metadata(**updates)
        _rename(span, f"{self.method} {route}" if route else self.method)
        if self.request_body is not None:
            span.set_input(_request_input(self.scope, self.request_body.value()))
        body = self.response_body
        span.set_output({"status_code": status, "body": body.value() if body is not None else None})
        if error is None and status is not None and status >= 500:
            error = ServerError(status)
        span.close(error)


def _request_input(scope: Scope, body: Any) -> dict[str, Any]:
    query = scope.get("query_string") or b""
    return {
        "method": scope.get("method"),
        "path": scope.get("path"),
        "query": dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)) or None,
        "body": body,
    }


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _rename(span: Span, name: str) -> None:
    """Name the request's root step once the route is known (its packet's function_name)."""
    span.name = name
    span.tracer.builder.rename(span.run_id, name)
