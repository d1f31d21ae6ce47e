"""aitel.asgi.AITelMiddleware: one packet per HTTP request, LLM runs inside it as steps."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest

_NEEDS = "needs the dev install (README: make test): FastAPI, uvicorn, httpx, langchain-aitel"
fastapi = pytest.importorskip("fastapi", reason=_NEEDS)
uvicorn = pytest.importorskip("uvicorn", reason=_NEEDS)
httpx = pytest.importorskip("httpx", reason=_NEEDS)
pytest.importorskip("langchain_aitel", reason=_NEEDS)

from fastapi import Depends, FastAPI, HTTPException, Request  # noqa: E402
from fastapi.responses import StreamingResponse  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from langchain_aitel import AITelHandler, auto  # noqa: E402
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage  # noqa: E402
from langchain_core.runnables import RunnableLambda  # noqa: E402

import aitel.asgi  # noqa: E402
from aitel.asgi import AITelMiddleware, ServerError, current_request, request_metadata  # noqa: E402
from aitel.testing import PacketCapture  # noqa: E402

UPPER = RunnableLambda(lambda q: q.upper()).with_config(run_name="upper")


def reply(text: str) -> AIMessage:
    return AIMessage(
        text,
        usage_metadata={"input_tokens": 9, "output_tokens": 3, "total_tokens": 12},
        response_metadata={"model_name": "gpt-4o-mini", "finish_reason": "stop"},
    )


def make_app(**options) -> FastAPI:
    app = FastAPI()

    @app.post("/ask/{topic}", dependencies=[Depends(request_metadata(feature="rag"))])
    def ask(topic: str, body: dict, request: Request) -> dict:
        span = current_request()
        if span is not None:  # None when the request is not traced
            span.set_metadata(session_id=body.get("session"))
        answer = UPPER.invoke(body["q"], config={"callbacks": [AITelHandler()]})
        return {"answer": answer, "topic": topic, "seen_id": request.headers.get("x-request-id")}

    @app.post("/async-ask")
    async def async_ask(body: dict) -> dict:
        model = GenericFakeChatModel(messages=iter([reply(f"re: {body['q']}")]))
        message = await model.ainvoke(body["q"], config={"callbacks": [AITelHandler()]})
        return {"answer": message.content}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    @app.get("/unavailable")
    async def unavailable() -> None:
        raise HTTPException(503, "upstream down")

    @app.get("/missing")
    async def missing() -> None:
        raise HTTPException(404, "no such thing")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks():
            async for part in UPPER.astream("abc", config={"callbacks": [AITelHandler()]}):
                yield part
            yield "!"

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/health")
    async def health() -> dict:
        return {"ok": True}

    app.add_middleware(AITelMiddleware, **options)
    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(make_app(app_version="2.0.1"), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def global_mode() -> Iterator[None]:
    auto.instrument()
    yield
    auto.uninstrument()


def by_name(packet: dict) -> dict[str, dict]:
    return {s["name"]: s for s in packet["steps"]}


def test_request_is_one_packet_with_http_fields_and_chain_steps(
    client: TestClient, aitel_packets: PacketCapture
) -> None:
    """Request id from the header, route template, status, body, and the chain as a child step."""
    response = client.post(
        "/ask/geo?lang=fr",
        json={"q": "where is paris", "session": "s-7"},
        headers={"X-Request-ID": "req-42"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-42"
    assert response.json() == {"answer": "WHERE IS PARIS", "topic": "geo", "seen_id": "req-42"}

    packet = aitel_packets.one()
    assert packet["request_id"] == "req-42"
    assert packet["status"] == "SUCCESS"
    assert packet["error"] is None
    meta = packet["pipeline_metadata"]
    assert meta["function_name"] == "POST /ask/{topic}"
    assert meta["app_version"] == "2.0.1"
    assert meta["session_id"] == "s-7"
    assert meta["metadata"] == {
        "http.request.method": "POST",
        "http.route": "/ask/{topic}",
        "url.path": "/ask/geo",
        "http.response.status_code": 200,
        "feature": "rag",
        "session_id": "s-7",
    }
    assert packet["payload"] == {
        "input": {
            "method": "POST",
            "path": "/ask/geo",
            "query": {"lang": "fr"},
            "body": {"q": "where is paris", "session": "s-7"},
        },
        "output": {"status_code": 200, "body": response.json()},
    }
    root, upper = packet["steps"]
    assert root["parent_id"] is None and root["name"] == "POST /ask/{topic}"
    assert upper["name"] == "upper" and upper["parent_id"] == root["step_id"]
    assert upper["input"] == "where is paris" and upper["output"] == "WHERE IS PARIS"
    assert packet["producer"]["integration"] is None


def test_generated_request_id_is_seen_by_the_app_and_returned(
    client: TestClient, aitel_packets: PacketCapture
) -> None:
    """Without X-Request-ID a new id is made, put in the request headers and returned."""
    response = client.post("/ask/x", json={"q": "hi"})
    request_id = response.headers["x-request-id"]
    assert response.json()["seen_id"] == request_id
    packet = aitel_packets.one()
    assert packet["request_id"] == request_id
    assert len(request_id) == 36  # a UUIDv7
    assert packet["trace_id"] == request_id.replace("-", "")


@pytest.mark.parametrize("bad", ["has space", "x" * 201, "tab\there"])
def test_unusable_request_id_is_replaced(
    client: TestClient, aitel_packets: PacketCapture, bad: str
) -> None:
    response = client.post("/ask/x", json={"q": "hi"}, headers={"X-Request-ID": bad})
    assert response.headers["x-request-id"] != bad
    assert response.json()["seen_id"] == response.headers["x-request-id"]
    assert aitel_packets.one()["request_id"] == response.headers["x-request-id"]


def test_untrusted_request_id_is_never_used(aitel_packets: PacketCapture) -> None:
    with TestClient(make_app(trust_request_id=False)) as c:
        response = c.post("/ask/x", json={"q": "hi"}, headers={"X-Request-ID": "client-id"})
    assert response.headers["x-request-id"] != "client-id"
    assert response.json()["seen_id"] == response.headers["x-request-id"]
    assert aitel_packets.one()["request_id"] == response.headers["x-request-id"]


def test_async_endpoint_model_call_is_a_child_step(
    client: TestClient, aitel_packets: PacketCapture
) -> None:
    response = client.post("/async-ask", json={"q": "ping"})
    assert response.json() == {"answer": "re: ping"}
    packet = aitel_packets.one()
    root, llm = packet["steps"]
    assert llm["kind"] == "chat_model" and llm["parent_id"] == root["step_id"]
    assert llm["llm"]["usage"]["total_tokens"] == 12
    assert packet["performance"]["llm_calls"] == 1
    assert packet["performance"]["total_tokens"] == 12
    assert packet["pipeline_metadata"]["model_name"] == "gpt-4o-mini"


def test_unhandled_exception_is_a_failure_with_its_type(
    client: TestClient, aitel_packets: PacketCapture
) -> None:
    response = client.get("/boom")
    assert response.status_code == 500
    packet = aitel_packets.one()
    assert packet["status"] == "FAILURE"
    assert packet["error"]["type"] == "RuntimeError"
    assert packet["error_message"] == "kaboom"
    assert 'raise RuntimeError("kaboom")' in packet["error"]["traceback"]
    assert packet["error"]["step_name"] == "GET /boom"
    assert packet["pipeline_metadata"]["metadata"]["http.response.status_code"] == 500


def test_5xx_response_is_a_failure_and_4xx_is_not(
    client: TestClient, aitel_packets: PacketCapture
) -> None:
    assert client.get("/unavailable").status_code == 503
    assert client.get("/missing").status_code == 404
    failed, missing = aitel_packets.packets()
    assert failed["status"] == "FAILURE"
    assert failed["error"]["type"] == "ServerError"
    assert failed["error_message"] == "HTTP 503 Service Unavailable"
    assert failed["payload"]["output"] == {"status_code": 503, "body": {"detail": "upstream down"}}
    assert missing["status"] == "SUCCESS"
    assert missing["pipeline_metadata"]["metadata"]["http.response.status_code"] == 404
    assert str(ServerError(599)) == "HTTP 599 Server Error"


def test_wrapping_the_whole_app_returns_the_id_on_error_pages_too(
    aitel_packets: PacketCapture,
) -> None:
    """Outermost (around Starlette's error middleware), even the 500 page carries the id."""
    inner = make_app()
    inner.user_middleware.clear()
    app = AITelMiddleware(inner)
    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.get("/boom", headers={"X-Request-ID": "err-1"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "err-1"
    packet = aitel_packets.one()
    assert packet["request_id"] == "err-1"
    assert packet["error"]["type"] == "RuntimeError"
    assert packet["pipeline_metadata"]["metadata"]["http.response.status_code"] == 500


def test_streamed_response_is_traced_until_its_last_chunk(
    client: TestClient, aitel_packets: PacketCapture
) -> None:
    response = client.get("/stream")
    assert response.text == "ABC!"
    packet = aitel_packets.one()
    assert packet["payload"]["output"] == {"status_code": 200, "body": "ABC!"}
    root, upper = packet["steps"]
    assert upper["parent_id"] == root["step_id"] and upper["output"] == "ABC"
    assert upper["end_time"] <= root["end_time"] == packet["end_time"]


def test_excluded_paths_and_lifespan_are_not_traced(aitel_packets: PacketCapture) -> None:
    with TestClient(make_app(exclude_paths=["/health"])) as c:
        assert c.get("/health").json() == {"ok": True}
        assert c.get("/health/").status_code in {200, 307}
    assert aitel_packets.packets() == []


def test_bodies_not_captured_when_turned_off(aitel_packets: PacketCapture) -> None:
    with TestClient(make_app(capture_body=False)) as c:
        c.post("/ask/x?debug=1", json={"q": "secret plan"})
    packet = aitel_packets.one()
    assert packet["payload"]["input"] == {
        "method": "POST",
        "path": "/ask/x",
        "query": {"debug": "1"},
        "body": None,
    }
    assert packet["payload"]["output"] == {"status_code": 200, "body": None}


def test_large_and_binary_bodies_are_summarised(aitel_packets: PacketCapture) -> None:
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":  # passed through untouched
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        content_type = b"application/octet-stream" if scope["path"] == "/bin" else b"text/plain"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", content_type)],
            }
        )
        await send({"type": "http.response.body", "body": body})

    with TestClient(AITelMiddleware(app, max_body_bytes=10)) as c:
        c.post("/text", content=b"0123456789abcdef", headers={"content-type": "text/plain"})
        c.post(
            "/bin", content=b"\x00\x01\x02", headers={"content-type": "application/octet-stream"}
        )
    text, binary = aitel_packets.packets()
    assert text["payload"]["input"]["body"] == "0123456789…[truncated 6 bytes]"
    assert text["payload"]["output"]["body"] == "0123456789…[truncated 6 bytes]"
    assert binary["payload"]["input"]["body"] == {
        "content_type": "application/octet-stream",
        "bytes": 3,
    }
    # a plain ASGI app exposes no route: the step is named by the method
    assert text["pipeline_metadata"]["function_name"] == "POST"
    assert "http.route" not in text["pipeline_metadata"]["metadata"]


def test_global_mode_runs_attach_without_callbacks(
    aitel_packets: PacketCapture, global_mode: None
) -> None:
    """With aitel.instrument(), the endpoint's chain needs no callbacks= to join the request."""
    app = FastAPI()
    app.add_middleware(AITelMiddleware)

    @app.get("/upper/{word}")
    def upper(word: str) -> str:
        return UPPER.invoke(word)

    with TestClient(app) as c:
        assert c.get("/upper/abc").json() == "ABC"
        assert c.get("/upper/def").json() == "DEF"
    first, second = aitel_packets.packets()
    for packet, word in ((first, "abc"), (second, "def")):
        root, step = packet["steps"]
        assert root["name"] == "GET /upper/{word}"
        assert step["parent_id"] == root["step_id"] and step["output"] == word.upper()
        assert step["tags"] == [] and step["status"] == "SUCCESS"


def test_middleware_errors_never_reach_the_app(
    client: TestClient, aitel_packets: PacketCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If aitel cannot open the trace, the request is served untraced."""

    def broken(*args, **kwargs):
        raise RuntimeError("aitel bug")

    monkeypatch.setattr(aitel.asgi, "trace", broken)
    response = client.post("/ask/x", json={"q": "hi"})
    assert response.status_code == 200 and response.json()["answer"] == "HI"
    assert aitel_packets.packets()[0]["pipeline_metadata"]["function_name"] == "upper"


def test_unknown_option_is_rejected() -> None:
    with pytest.raises(TypeError, match="colour"):
        AITelMiddleware(FastAPI(), colour="blue")


def test_metadata_and_tags_on_every_request(aitel_packets: PacketCapture) -> None:
    with TestClient(
        make_app(tags=["edge"], metadata={"region": "eu"}, ab_variant="B", environment="prod")
    ) as c:
        c.get("/missing")
    meta = aitel_packets.one()["pipeline_metadata"]
    assert meta["tags"] == ["edge"]
    assert meta["ab_variant"] == "B" and meta["environment"] == "prod"
    assert meta["metadata"]["region"] == "eu"


# -- a real server ---------------------------------------------------------------------


class ThreadedServer:
    """uvicorn on a free loopback port, in a thread; started and stopped deterministically."""

    def __init__(self, app) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", ws="none", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn stopped during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start within 15 s")
            self.thread.join(0.01)  # wait a little, waking early if the server died
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.socket.close()
        assert not self.thread.is_alive(), "uvicorn did not stop within 15 s"


def test_real_uvicorn_server_concurrent_requests(aitel_packets: PacketCapture) -> None:
    """50 concurrent requests over real HTTP: 50 packets, each with its own steps and id."""
    with ThreadedServer(make_app(environment="test")) as server:

        async def run() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
                return await asyncio.gather(
                    *[
                        http.post(
                            f"/ask/t{i}",
                            json={"q": f"question {i}"},
                            headers={"X-Request-ID": f"uv-{i}"},
                        )
                        for i in range(50)
                    ]
                )

        responses = asyncio.run(run())
        failing = httpx.get(f"{server.url}/unavailable", timeout=10)
    assert failing.status_code == 503
    assert [r.status_code for r in responses] == [200] * 50
    assert [r.headers["x-request-id"] for r in responses] == [f"uv-{i}" for i in range(50)]

    packets = {p["request_id"]: p for p in aitel_packets.packets()}
    assert len(packets) == 51
    for i in range(50):
        packet = packets[f"uv-{i}"]
        assert packet["status"] == "SUCCESS"
        assert packet["pipeline_metadata"]["environment"] == "test"
        assert packet["pipeline_metadata"]["metadata"]["url.path"] == f"/ask/t{i}"
        root, upper = packet["steps"]
        assert upper["parent_id"] == root["step_id"]
        assert upper["input"] == f"question {i}"
        assert upper["output"] == f"QUESTION {i}"
    failed = next(p for p in packets.values() if p["status"] == "FAILURE")
    assert failed["error"]["type"] == "ServerError"
    assert failed["request_id"] == failing.headers["x-request-id"]
    assert aitel_packets.tracer.builder.open_traces() == 0
