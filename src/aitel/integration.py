"""What every framework integration shares: its tracer and its request options."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .builder import TraceOptions
from .exporters.base import Exporter
from .tracer import Tracer, get_tracer


class HandlerOptions:
    """The tracer a handler writes to and the request-level options it adds.

    Without an explicit ``tracer`` (or ``exporter``) the process-wide tracer is
    used, looked up on each request so that a later :func:`aitel.configure`
    takes effect.
    """

    def __init__(
        self,
        integration: str,
        integration_version: str,
        *,
        tracer: Tracer | None = None,
        exporter: Exporter | None = None,
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
        if tracer is None and exporter is not None:
            tracer = Tracer(exporter)
        self._tracer = tracer
        self._overrides: dict[str, Any] = {
            "model_name": model_name,
            "model_version": model_version,
            "model_provider": model_provider,
            "ab_variant": ab_variant,
            "preprocessing_version": preprocessing_version,
            "app_version": app_version,
            "environment": environment,
            "session_id": session_id,
            "user_id": user_id,
            "tags": tuple(tags or ()),
            "metadata": dict(metadata or {}),
            "capture_logprobs": capture_logprobs,
            "integration": integration,
            "integration_version": integration_version,
        }
        self._cached: tuple[Tracer, TraceOptions] | None = None

    @property
    def tracer(self) -> Tracer:
        """The given tracer, else the process-wide one."""
        return self._tracer if self._tracer is not None else get_tracer()

    def resolve(self) -> tuple[Tracer, TraceOptions]:
        """The tracer and the options of a new request (cached per tracer)."""
        tracer = self._tracer
        if tracer is None:
            tracer = get_tracer()
        cached = self._cached
        if cached is None or cached[0] is not tracer:
            cached = (tracer, tracer.options_with(**self._overrides))
            self._cached = cached
        return cached
