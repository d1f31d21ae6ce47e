"""The tracer: one builder, one pipeline, shared by every handler of a process.

Most applications never create one: handlers use the process-wide tracer,
which :func:`configure` sets up (or which is created from ``AITEL_*``
environment variables on first use).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from ._safety import call_safely, internal_errors, logger, report_internal_error
from .assembly import build_packet
from .builder import PacketBuilder, TraceOptions, TraceRecord
from .config import ConfigError, Settings
from .exporters.base import Exporter
from .jsonable import DEFAULT_LIMITS, Limits
from .pipeline import ExportPipeline, PipelineConfig, PipelineStats, Spool, add_exit_hook
from .pricing import ModelPrice, PricingTable
from .processors.base import Packet, Processor
from .processors.limits import SizeLimitProcessor
from .processors.sampling import SamplingProcessor


def make_exporter(settings: Settings) -> Exporter:
    """The exporter named by ``settings.exporter``."""
    name = settings.exporter.strip().lower()
    if name == "jsonl":
        from .exporters.jsonl import JsonlExporter

        return JsonlExporter(settings.directory)
    if name == "memory":
        from .exporters.memory import InMemoryExporter

        return InMemoryExporter()
    if name in {"none", "null"}:
        from .exporters.null import NullExporter

        return NullExporter()
    if name == "http":
        from .exporters.http import HttpExporter

        return HttpExporter.from_settings(settings)
    if name == "otlp":
        from .exporters.otlp import OtlpExporter

        return OtlpExporter.from_settings(settings)
    raise ConfigError(
        f"unknown exporter {settings.exporter!r}: use jsonl, http, otlp, memory or none"
    )


def make_spool(settings: Settings) -> Spool | None:
    if not settings.spool_dir:
        return None
    from .spool import DiskSpool

    return DiskSpool(settings.spool_dir)


def default_processors(settings: Settings) -> list[Processor]:
    """Sampling (cheapest first), redaction, then size limits."""
    processors: list[Processor] = []
    if settings.sample_rate < 1.0:
        processors.append(
            SamplingProcessor(
                settings.sample_rate, keep_slower_than_ms=settings.keep_slower_than_ms
            )
        )
    presets = [p for p in settings.redaction if p and p != "none"]
    if presets:
        from .redaction import RedactionProcessor

        processors.append(RedactionProcessor.from_presets(presets))
    processors.append(SizeLimitProcessor())
    return processors


class Tracer:
    """Assembles packets from run events and exports them in the background."""

    def __init__(
        self,
        exporter: Exporter | None = None,
        *,
        settings: Settings | None = None,
        processors: Sequence[Processor] | None = None,
        pricing: PricingTable | Mapping[str, ModelPrice | Mapping[str, Any]] | None = None,
        spool: Spool | None = None,
        pipeline_config: PipelineConfig | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.settings = settings or Settings.from_env()
        s = self.settings
        self.exporter = exporter if exporter is not None else make_exporter(s)
        self.pricing = _pricing(pricing, s)
        self.limits = limits
        self.options = TraceOptions(
            ab_variant=s.ab_variant,
            model_version=s.model_version,
            preprocessing_version=s.preprocessing_version,
            app_version=s.app_version,
            environment=s.environment,
            tags=s.tags,
            metadata=dict(s.metadata),
            capture_logprobs=s.capture_logprobs,
        )
        self.pipeline = ExportPipeline(
            self.exporter,
            materialize=self._materialize,
            processors=default_processors(s) if processors is None else processors,
            spool=spool if spool is not None else make_spool(s),
            config=pipeline_config
            or PipelineConfig(max_queue_size=s.max_queue_size, overflow=s.queue_overflow),
        )
        self.builder = PacketBuilder(self.pipeline.submit)
        _tracers_to_drain.add(self)

    def _materialize(self, item: Any) -> Packet:
        if isinstance(item, TraceRecord):
            return build_packet(item, self.pricing, self.limits)
        if isinstance(item, dict):
            return item
        raise TypeError(f"cannot export {type(item).__name__}")

    def options_with(self, **overrides: Any) -> TraceOptions:
        """The tracer's defaults with handler-level options on top."""
        base = self.options
        values: dict[str, Any] = {}
        for name in TraceOptions.__dataclass_fields__:
            override = overrides.get(name)
            if name == "metadata":
                values[name] = {**base.metadata, **(override or {})}
            elif name == "tags":
                values[name] = tuple(dict.fromkeys([*base.tags, *(override or ())]))
            elif override is not None:
                values[name] = override
            else:
                values[name] = getattr(base, name)
        return TraceOptions(**values)

    def flush(self, timeout: float = 5.0) -> bool:
        """Export everything finished so far; False if ``timeout`` ran out."""
        return self.pipeline.flush(timeout)

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Emit open requests as incomplete, flush, and stop."""
        call_safely(self._flush_open, site="tracer.shutdown")
        return self.pipeline.shutdown(timeout)

    def stats(self) -> PipelineStats:
        return self.pipeline.stats()

    def _flush_open(self) -> None:
        self.builder.flush_open()


def _pricing(
    pricing: PricingTable | Mapping[str, ModelPrice | Mapping[str, Any]] | None, settings: Settings
) -> PricingTable:
    table = PricingTable.from_file(settings.pricing_file) if settings.pricing_file else None
    base = PricingTable.default()
    if table is not None:
        base = base.with_overrides(dict(table._prices))
    if isinstance(pricing, PricingTable):
        return pricing
    if pricing:
        return base.with_overrides(pricing)
    return base


_lock = threading.Lock()
_global: Tracer | None = None
_tracers_to_drain: weakref.WeakSet[Tracer] = weakref.WeakSet()


def _drain_open_traces() -> None:
    for tracer in list(_tracers_to_drain):
        try:
            tracer.builder.flush_open()
        except Exception as exc:
            report_internal_error("tracer.drain", exc)


add_exit_hook(_drain_open_traces)


def get_tracer() -> Tracer:
    """The process-wide tracer, created from the environment on first use."""
    global _global
    tracer = _global
    if tracer is None:
        with _lock:
            if _global is None:
                _global = _tracer_from_env()
            tracer = _global
    return tracer


def _tracer_from_env() -> Tracer:
    """A tracer from the ``AITEL_*`` settings; with the defaults if they are invalid.

    The first traced call of the application creates it: an invalid setting
    must not make that call fail. It is logged as an error and the packets go
    to the default JSONL files, so that none is lost; :func:`configure`
    (called explicitly) raises instead.
    """
    try:
        return Tracer()
    except Exception as exc:
        logger.error(
            "aitel: invalid AITEL_* settings (%s: %s); packets go to the default "
            "JSONL files until aitel.configure() is called",
            type(exc).__name__,
            exc,
        )
        internal_errors.record("tracer.from_env")
        return Tracer(settings=Settings())


def configure(exporter: Exporter | str | None = None, **settings: Any) -> Tracer:
    """Set up the process-wide tracer (replacing and flushing any previous one).

    Keyword arguments are :class:`~aitel.config.Settings` fields; ``exporter``
    may be an exporter object or a name (``"jsonl"``, ``"http"``, ...).
    Extra keyword arguments ``processors``, ``pricing``, ``spool`` and
    ``pipeline_config`` are passed to :class:`Tracer`.
    """
    global _global
    extra = {
        k: settings.pop(k)
        for k in ("processors", "pricing", "spool", "pipeline_config")
        if k in settings
    }
    if isinstance(exporter, str):
        settings["exporter"] = exporter
        exporter = None
    tracer = Tracer(exporter, settings=Settings.from_env(**settings), **extra)
    with _lock:
        previous, _global = _global, tracer
    if previous is not None:
        previous.shutdown(timeout=5.0)
    return tracer


def flush(timeout: float = 5.0) -> bool:
    """Flush the process-wide tracer (call before a short-lived process returns)."""
    tracer = _global
    return True if tracer is None else tracer.flush(timeout)


def shutdown(timeout: float = 5.0) -> bool:
    tracer = _global
    return True if tracer is None else tracer.shutdown(timeout)
