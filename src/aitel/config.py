"""Settings, from arguments or ``AITEL_*`` environment variables.

Every option has an environment variable so that aitel can be configured
without code changes (containers, serverless, CI).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, Literal

OverflowPolicy = Literal["spool", "drop"]
"""What a full export queue does when there is a spool: write to it from the caller, or drop."""


class ConfigError(ValueError):
    """A setting has a value aitel cannot use."""


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"expected a boolean, got {value!r}")


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError as exc:
        raise ConfigError(f"expected a number, got {value!r}") from exc


def _overflow(value: str) -> OverflowPolicy:
    lowered = value.strip().lower()
    if lowered == "spool":
        return "spool"
    if lowered == "drop":
        return "drop"
    raise ConfigError(f"expected 'spool' or 'drop', got {value!r}")


def _tuple(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _metadata(value: str) -> dict[str, str]:
    pairs = {}
    for part in _tuple(value):
        key, sep, item = part.partition("=")
        if not sep:
            raise ConfigError(f"metadata entries look like key=value, got {part!r}")
        pairs[key.strip()] = item.strip()
    return pairs


@dataclass(frozen=True)
class Settings:
    """Everything configurable about the process-wide tracer."""

    exporter: str = field(
        default="jsonl",
        metadata={"env": "AITEL_EXPORTER", "doc": "jsonl, http, otlp, memory or none"},
    )
    directory: str | None = field(
        default=None,
        metadata={"env": "AITEL_DIR", "doc": "JSONL directory (default ./aitel-telemetry)"},
    )
    endpoint: str | None = field(
        default=None,
        metadata={"env": "AITEL_ENDPOINT", "doc": "collector URL for the http exporter"},
    )
    token: str | None = field(
        default=None, metadata={"env": "AITEL_TOKEN", "doc": "bearer token for the http exporter"}
    )
    spool_dir: str | None = field(
        default=None,
        metadata={
            "env": "AITEL_SPOOL_DIR",
            "doc": "disk spool for undelivered batches (http/otlp)",
        },
    )
    sample_rate: float = field(
        default=1.0,
        metadata={
            "env": "AITEL_SAMPLE_RATE",
            "parse": _float,
            "doc": "fraction of requests kept (failures always kept)",
        },
    )
    keep_slower_than_ms: float | None = field(
        default=None,
        metadata={
            "env": "AITEL_KEEP_SLOWER_THAN_MS",
            "parse": _float,
            "doc": "always keep requests at least this slow",
        },
    )
    redaction: tuple[str, ...] = field(
        default=("secrets",),
        metadata={
            "env": "AITEL_REDACTION",
            "parse": _tuple,
            "doc": "redaction presets: secrets, pii, hide_inputs, hide_outputs, strict, none",
        },
    )
    environment: str | None = field(
        default=None, metadata={"env": "AITEL_ENVIRONMENT", "doc": "pipeline_metadata.environment"}
    )
    app_version: str | None = field(
        default=None, metadata={"env": "AITEL_APP_VERSION", "doc": "pipeline_metadata.app_version"}
    )
    model_version: str | None = field(
        default=None,
        metadata={"env": "AITEL_MODEL_VERSION", "doc": "pipeline_metadata.model_version"},
    )
    preprocessing_version: str | None = field(
        default=None,
        metadata={
            "env": "AITEL_PREPROCESSING_VERSION",
            "doc": "pipeline_metadata.preprocessing_version",
        },
    )
    ab_variant: str | None = field(
        default=None, metadata={"env": "AITEL_AB_VARIANT", "doc": "pipeline_metadata.ab_variant"}
    )
    tags: tuple[str, ...] = field(
        default=(),
        metadata={
            "env": "AITEL_TAGS",
            "parse": _tuple,
            "doc": "comma-separated tags on every packet",
        },
    )
    metadata: dict[str, str] = field(
        default_factory=dict,
        metadata={
            "env": "AITEL_METADATA",
            "parse": _metadata,
            "doc": "key=value,key=value on every packet",
        },
    )
    capture_logprobs: bool = field(
        default=False,
        metadata={
            "env": "AITEL_CAPTURE_LOGPROBS",
            "parse": _bool,
            "doc": "record token logprobs in model_internals",
        },
    )
    pricing_file: str | None = field(
        default=None,
        metadata={
            "env": "AITEL_PRICING_FILE",
            "doc": "JSON price table that overrides the shipped one",
        },
    )
    max_queue_size: int = field(
        default=20_000,
        metadata={
            "env": "AITEL_MAX_QUEUE_SIZE",
            "parse": int,
            "doc": "packets held in memory before dropping (counted)",
        },
    )
    queue_overflow: OverflowPolicy = field(
        default="spool",
        metadata={
            "env": "AITEL_QUEUE_OVERFLOW",
            "parse": _overflow,
            "doc": "a full queue with a spool: the caller writes to it (spool) or drops (drop)",
        },
    )
    tracing: bool = field(
        default=False,
        metadata={
            "env": "AITEL_TRACING",
            "parse": _bool,
            "doc": "trace every LangChain/LlamaIndex run without callbacks=",
        },
    )

    def __post_init__(self) -> None:
        if self.max_queue_size < 1:
            raise ConfigError(
                f"max_queue_size (AITEL_MAX_QUEUE_SIZE) must be at least 1, got "
                f"{self.max_queue_size}: a queue of none would drop every packet"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``AITEL_*`` variables, then ``overrides`` (None values ignored)."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata.get("env")
            if name and name in source and source[name] != "":
                parse = f.metadata.get("parse", str)
                try:
                    values[f.name] = parse(source[name])
                except (ValueError, ConfigError) as exc:
                    raise ConfigError(f"{name}: {exc}") from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def environment_table() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every setting: the README's table."""
    rows = []
    for f in fields(Settings):
        if f.default is not MISSING:
            default: Any = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = None
        rows.append((str(f.metadata["env"]), repr(default), str(f.metadata["doc"])))
    return rows
