"""Configurations: what is attached to a workload while it runs.

A :class:`Config` makes one :class:`Session` per workload (created once,
reused in every round). A session is *attached* for each measured block and
*detached* afterwards, so an instrumentor that patches the framework
(OpenInference) is active only during its own blocks; :func:`check_clean`
verifies after every block that nothing was left behind.

Each session exports to a destination of its own on this machine:

* aitel: JSONL files in a temp dir, the HTTP exporter to a local aitel
  collector (separate process), the OTLP exporter to the sink;
* Langfuse, LangSmith, OpenInference: their real export path (HTTP) to the
  counting sink (``sink.py``, separate process), one URL prefix per
  configuration and workload, so what arrived can be counted per session.

A configuration whose packages are missing is reported as ``n/a``.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workloads import Workload


@dataclass
class Env:
    """What sessions need from the run: local endpoints and a scratch directory."""

    sink_url: str
    collector_url: str | None
    collector_missing: str | None
    tmpdir: Path
    aitel_spool_dir: Path | None = None  # aitel's disk spool (off unless given)


class Session:
    """One configuration on one workload."""

    unit = ""  # what ``delivered()`` counts: "packets", "spans" or "runs"
    callbacks: list[Any] | None = None  # handlers for LangChain's config["callbacks"]
    sink_key: str | None = None  # the sink counters this session writes to

    def attach(self) -> None:
        """Start tracing (instrumentors patch the framework here)."""

    def detach(self) -> None:
        """Stop tracing; the framework must be as it was before ``attach``."""

    def flush(self, timeout: float = 30.0) -> None:
        """Wait (bounded) until everything recorded so far has been exported."""

    def delivered(self, sink: dict[str, dict[str, int]]) -> int | None:
        """Items delivered so far (None: nothing to verify)."""
        if self.sink_key is None:
            return None
        return int(sink.get(self.sink_key, {}).get("items", 0))

    def details(self) -> dict[str, Any]:
        """Extra counters for the JSON report."""
        return {}

    def close(self) -> None:
        """Release resources at the end of the run."""


@dataclass(frozen=True)
class Config:
    name: str
    title: str
    kind: str  # "baseline", "floor", "aitel" or "peer"
    frameworks: frozenset[str]
    requires: tuple[str, ...]
    make: Callable[[Workload, Env], Session]
    note: str = ""
    extra_check: Callable[[Env], str | None] | None = field(default=None)

    def missing(self, workload: Workload | None = None, env: Env | None = None) -> str | None:
        """None when this configuration can run (on ``workload``), else why not."""
        if workload is not None and workload.framework not in self.frameworks:
            return f"no {workload.framework} support"
        for module in self.requires:
            try:
                found = importlib.util.find_spec(module) is not None
            except ModuleNotFoundError:
                found = False
            if not found:
                return f"{module} not installed"
        if self.extra_check is not None and env is not None:
            return self.extra_check(env)
        return None


def _key(config: str, workload: Workload) -> str:
    return f"{config}-{workload.name}"


# -- baseline and the dispatch floor ---------------------------------------------


class BaselineSession(Session):
    unit = ""


def _noop_langchain() -> Any:
    from langchain_core.callbacks import BaseCallbackHandler

    class NoOpHandler(BaseCallbackHandler):
        """Accepts every callback and does nothing: LangChain's dispatch floor."""

        run_inline = True

    return NoOpHandler()


class NoOpLangChain(Session):
    def __init__(self) -> None:
        self.callbacks = [_noop_langchain()]


class NoOpLlamaIndex(Session):
    """A span handler and an event handler that do nothing, on the root dispatcher."""

    def __init__(self) -> None:
        from llama_index.core.instrumentation.event_handlers import BaseEventHandler
        from llama_index.core.instrumentation.span import BaseSpan
        from llama_index.core.instrumentation.span_handlers import BaseSpanHandler

        class NoOpSpanHandler(BaseSpanHandler[BaseSpan]):
            def span_enter(self, *args: Any, **kwargs: Any) -> None:
                return None

            def span_exit(self, *args: Any, **kwargs: Any) -> None:
                return None

            def span_drop(self, *args: Any, **kwargs: Any) -> None:
                return None

            def new_span(self, *args: Any, **kwargs: Any) -> None:
                return None

            def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
                return None

            def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
                return None

        class NoOpEventHandler(BaseEventHandler):
            def handle(self, event: Any, **kwargs: Any) -> None:
                return None

        self.span_handler = NoOpSpanHandler()
        self.event_handler = NoOpEventHandler()

    def attach(self) -> None:
        from llama_index.core.instrumentation import get_dispatcher

        dispatcher = get_dispatcher()
        dispatcher.add_span_handler(self.span_handler)
        dispatcher.add_event_handler(self.event_handler)

    def detach(self) -> None:
        from llama_index.core.instrumentation import get_dispatcher

        dispatcher = get_dispatcher()
        dispatcher.span_handlers = [
            h for h in dispatcher.span_handlers if h is not self.span_handler
        ]
        dispatcher.event_handlers = [
            h for h in dispatcher.event_handlers if h is not self.event_handler
        ]


def make_noop(workload: Workload, env: Env) -> Session:
    if workload.framework == "langchain":
        return NoOpLangChain()
    return NoOpLlamaIndex()


# -- aitel ------------------------------------------------------------------------


class AitelSession(Session):
    """aitel with a tracer of its own (default settings: secrets redaction on)."""

    unit = "packets"

    def __init__(
        self,
        workload: Workload,
        exporter: Any,
        sink_key: str | None = None,
        spool_dir: Path | None = None,
    ) -> None:
        from aitel import Settings, Tracer

        settings = Settings(spool_dir=str(spool_dir)) if spool_dir else Settings()
        self.tracer = Tracer(exporter, settings=settings)
        self.exporter = exporter
        self.sink_key = sink_key
        self.framework = workload.framework
        self.instrumentation: Any = None
        if workload.framework == "langchain":
            from langchain_aitel import AITelHandler

            self.callbacks = [AITelHandler(tracer=self.tracer)]
        else:
            from llama_index.callbacks.aitel import AITelInstrumentation

            self.instrumentation = AITelInstrumentation(tracer=self.tracer)

    def attach(self) -> None:
        if self.instrumentation is not None:
            self.instrumentation.instrument()

    def detach(self) -> None:
        if self.instrumentation is not None:
            self.instrumentation.uninstrument()

    def flush(self, timeout: float = 30.0) -> None:
        self.tracer.flush(timeout)

    def delivered(self, sink: dict[str, dict[str, int]]) -> int | None:
        return self.tracer.stats().exported

    def details(self) -> dict[str, Any]:
        stats = self.tracer.stats().as_dict()
        out: dict[str, Any] = {"pipeline": stats}
        if self.sink_key is not None:
            out["sink_key"] = self.sink_key
        files = getattr(self.exporter, "files", None)
        if callable(files):
            out["jsonl_lines"] = sum(_count_lines(p) for p in files())
        return out

    def close(self) -> None:
        self.tracer.shutdown(10.0)


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def make_aitel_jsonl(workload: Workload, env: Env) -> Session:
    from aitel.exporters.jsonl import JsonlExporter

    directory = tempfile.mkdtemp(prefix=f"jsonl-{workload.name}-", dir=env.tmpdir)
    return AitelSession(workload, JsonlExporter(directory))


def make_aitel_http(workload: Workload, env: Env) -> Session:
    from aitel.exporters.http import HttpExporter

    assert env.collector_url is not None
    return AitelSession(workload, HttpExporter(env.collector_url), spool_dir=env.aitel_spool_dir)


def make_aitel_otlp(workload: Workload, env: Env) -> Session:
    from aitel.exporters.otlp import OtlpExporter

    key = _key("aitel-otlp", workload)
    exporter = OtlpExporter(f"{env.sink_url}/{key}/v1/traces", env={})
    return AitelSession(workload, exporter, sink_key=key, spool_dir=env.aitel_spool_dir)


def _collector_check(env: Env) -> str | None:
    return env.collector_missing if env.collector_url is None else None


# -- peers ------------------------------------------------------------------------


def _otel_provider(endpoint: str) -> Any:
    """An OTel SDK TracerProvider with the default BatchSpanProcessor + OTLP/HTTP exporter."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "aitel-bench"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


class OpenInferenceSession(Session):
    """OpenInference's instrumentor -> OTel SDK BatchSpanProcessor -> OTLP/HTTP -> sink."""

    unit = "spans"

    def __init__(self, workload: Workload, key: str, provider: Any) -> None:
        self.sink_key = key
        self.provider = provider
        if workload.framework == "langchain":
            from openinference.instrumentation.langchain import LangChainInstrumentor

            self.instrumentor = LangChainInstrumentor()
        else:
            from openinference.instrumentation.llama_index import LlamaIndexInstrumentor

            self.instrumentor = LlamaIndexInstrumentor()

    def attach(self) -> None:
        # skip_dep_check: instrument even if the declared version range lags the framework
        self.instrumentor.instrument(tracer_provider=self.provider, skip_dep_check=True)

    def detach(self) -> None:
        self.instrumentor.uninstrument()

    def flush(self, timeout: float = 30.0) -> None:
        self.provider.force_flush(int(timeout * 1000))

    def close(self) -> None:
        self.provider.shutdown()


def make_openinference(workload: Workload, env: Env) -> Session:
    key = _key("openinference", workload)
    return OpenInferenceSession(workload, key, _otel_provider(f"{env.sink_url}/{key}/v1/traces"))


class LangfuseSession(Session):
    """Langfuse: its LangChain CallbackHandler; for LlamaIndex the OpenInference
    instrumentor on Langfuse's TracerProvider (Langfuse's documented setup)."""

    unit = "spans"

    def __init__(self, workload: Workload, env: Env) -> None:
        from langfuse import Langfuse
        from opentelemetry.sdk.trace import TracerProvider

        key = _key("langfuse", workload)
        self.sink_key = key
        public_key = f"pk-lf-bench-{workload.name}"
        # a provider of its own, so Langfuse does not become the global one
        self.provider = TracerProvider()
        self.client = Langfuse(
            public_key=public_key,
            secret_key="sk-lf-bench",
            base_url=f"{env.sink_url}/{key}",
            tracer_provider=self.provider,
        )
        self.instrumentor: Any = None
        if workload.framework == "langchain":
            from langfuse.langchain import CallbackHandler

            self.callbacks = [CallbackHandler(public_key=public_key)]
        else:
            from openinference.instrumentation.llama_index import LlamaIndexInstrumentor

            self.instrumentor = LlamaIndexInstrumentor()

    def attach(self) -> None:
        if self.instrumentor is not None:
            self.instrumentor.instrument(tracer_provider=self.provider, skip_dep_check=True)

    def detach(self) -> None:
        if self.instrumentor is not None:
            self.instrumentor.uninstrument()

    def flush(self, timeout: float = 30.0) -> None:
        self.client.flush()

    def close(self) -> None:
        self.client.shutdown()


def make_langfuse(workload: Workload, env: Env) -> Session:
    return LangfuseSession(workload, env)


class LangSmithSession(Session):
    """LangSmith's LangChainTracer with a Client pointed at the sink."""

    unit = "runs"

    def __init__(self, workload: Workload, env: Env) -> None:
        from langchain_core.tracers.langchain import LangChainTracer
        from langsmith import Client

        key = _key("langsmith", workload)
        self.sink_key = key
        self.client = Client(api_url=f"{env.sink_url}/{key}", api_key="lsv2_pt_bench")
        self.callbacks = [LangChainTracer(client=self.client, project_name="aitel-bench")]

    def flush(self, timeout: float = 30.0) -> None:
        # a bound: LangSmith's flush() without one can wait forever
        self.client.flush(timeout=timeout)

    def close(self) -> None:
        self.client.flush(timeout=10.0)


def make_langsmith(workload: Workload, env: Env) -> Session:
    return LangSmithSession(workload, env)


BOTH = frozenset({"langchain", "llama_index"})
LC = frozenset({"langchain"})

CONFIGS: dict[str, Config] = {
    c.name: c
    for c in [
        Config("baseline", "no callbacks", "baseline", BOTH, (), lambda w, e: BaselineSession()),
        Config("noop", "no-op handler (dispatch floor)", "floor", BOTH, (), make_noop),
        Config(
            "aitel-jsonl",
            "aitel -> JSONL",
            "aitel",
            BOTH,
            ("aitel",),
            make_aitel_jsonl,
        ),
        Config(
            "aitel-http",
            "aitel -> HTTP -> aitel collector",
            "aitel",
            BOTH,
            ("aitel.exporters.http", "httpx"),
            make_aitel_http,
            extra_check=_collector_check,
        ),
        Config(
            "aitel-otlp",
            "aitel -> OTLP/HTTP -> sink",
            "aitel",
            BOTH,
            ("aitel.exporters.otlp", "httpx", "opentelemetry.proto"),
            make_aitel_otlp,
        ),
        Config(
            "langfuse",
            "Langfuse -> OTLP/HTTP -> sink",
            "peer",
            BOTH,
            ("langfuse", "opentelemetry.sdk"),
            make_langfuse,
            note="LlamaIndex: OpenInference instrumentor on Langfuse's TracerProvider",
        ),
        Config(
            "langsmith",
            "LangSmith LangChainTracer -> sink",
            "peer",
            LC,
            ("langsmith",),
            make_langsmith,
        ),
        Config(
            "openinference",
            "OpenInference -> OTel BSP -> OTLP/HTTP -> sink",
            "peer",
            BOTH,
            ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http"),
            make_openinference,
        ),
    ]
}

_FRAMEWORK_PACKAGES = {
    ("aitel-jsonl", "langchain"): "langchain_aitel",
    ("aitel-http", "langchain"): "langchain_aitel",
    ("aitel-otlp", "langchain"): "langchain_aitel",
    ("aitel-jsonl", "llama_index"): "llama_index.callbacks.aitel",
    ("aitel-http", "llama_index"): "llama_index.callbacks.aitel",
    ("aitel-otlp", "llama_index"): "llama_index.callbacks.aitel",
    ("openinference", "langchain"): "openinference.instrumentation.langchain",
    ("openinference", "llama_index"): "openinference.instrumentation.llama_index",
    ("langfuse", "llama_index"): "openinference.instrumentation.llama_index",
}


def missing(config: Config, workload: Workload, env: Env | None) -> str | None:
    """Why ``config`` cannot run on ``workload`` here (None: it can)."""
    reason = config.missing(workload, env)
    if reason:
        return reason
    module = _FRAMEWORK_PACKAGES.get((config.name, workload.framework))
    if module:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"{module} not installed"
    return None


# -- isolation ----------------------------------------------------------------------


def framework_state(framework: str) -> Any:
    """A fingerprint of the global hooks tracing can install into a framework."""
    if framework == "langchain":
        from langchain_core.callbacks import BaseCallbackManager
        from langchain_core.callbacks.manager import CallbackManager

        manager = CallbackManager.configure()
        return (
            BaseCallbackManager.__init__,
            tuple(type(h).__name__ for h in manager.handlers),
        )
    from llama_index.core.instrumentation import get_dispatcher

    dispatcher = get_dispatcher()
    return (
        tuple(id(h) for h in dispatcher.span_handlers),
        tuple(id(h) for h in dispatcher.event_handlers),
    )


def check_clean(framework: str, expected: Any) -> str | None:
    """None if the framework is back to ``expected`` (see :func:`framework_state`)."""
    now = framework_state(framework)
    if now != expected:
        return f"{framework} hooks left behind: {now!r} != {expected!r}"
    return None


def clean_environment() -> None:
    """No ambient tracing from the environment: each configuration attaches its own."""
    for name in list(os.environ):
        if name.startswith(("LANGSMITH_", "LANGCHAIN_", "LANGFUSE_", "OTEL_", "AITEL_")):
            del os.environ[name]
    os.environ["LANGSMITH_TRACING"] = "false"
    os.environ["AITEL_NO_SIGNAL_HANDLERS"] = "1"
