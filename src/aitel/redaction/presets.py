"""Named redaction presets, and the packet fields each one hides, as data.

Presets combine: ``["pii", "hide_inputs"]`` detects secrets and personal
data everywhere *and* hides inputs. Every preset except ``"none"`` detects
secrets.

==============  ==========================================================
``secrets``     secrets only (the default)
``pii``         secrets and personal data (email, phone, card, IBAN, SSN, IP)
``hide_inputs`` also ``<HIDDEN>``: request input, step inputs, prompts and
                messages, retrieval queries and retrieved content
``hide_outputs`` also ``<HIDDEN>``: request output, step outputs, tool-call
                arguments the model produced, retrieved content, logprob tokens
``strict``      secrets and personal data, and every text hidden except ids,
                timestamps, statuses, kinds, names, descriptive pipeline
                metadata, performance, token usage, cost, durations and error
                types
``none``        nothing
==============  ==========================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

__all__ = [
    "HIDE_INPUT_FIELDS",
    "HIDE_OUTPUT_FIELDS",
    "PRESETS",
    "STRICT_KEEP",
    "Preset",
    "resolve_presets",
]


@dataclass(frozen=True, slots=True)
class Preset:
    """What to detect (categories) and what to hide wholesale."""

    name: str
    categories: frozenset[str]
    hide_inputs: bool = False
    hide_outputs: bool = False
    strict: bool = False

    def __or__(self, other: Preset) -> Preset:
        return Preset(
            name=f"{self.name}+{other.name}" if self.name else other.name,
            categories=self.categories | other.categories,
            hide_inputs=self.hide_inputs or other.hide_inputs,
            hide_outputs=self.hide_outputs or other.hide_outputs,
            strict=self.strict or other.strict,
        )


_SECRETS = frozenset({"secret"})
_ALL = frozenset({"secret", "pii"})

PRESETS: Final[Mapping[str, Preset]] = MappingProxyType(
    {
        "none": Preset("none", frozenset()),
        "secrets": Preset("secrets", _SECRETS),
        "pii": Preset("pii", _ALL),
        "hide_inputs": Preset("hide_inputs", _SECRETS, hide_inputs=True),
        "hide_outputs": Preset("hide_outputs", _SECRETS, hide_outputs=True),
        "strict": Preset("strict", _ALL, hide_inputs=True, hide_outputs=True, strict=True),
    }
)


def resolve_presets(presets: str | Iterable[str] | Preset) -> Preset:
    """One preset combining the named ones (a comma-separated string works too)."""
    if isinstance(presets, Preset):
        return presets
    names = presets.split(",") if isinstance(presets, str) else list(presets)
    combined = Preset("", frozenset())
    for raw in names:
        name = raw.strip().lower()
        if not name:
            continue
        try:
            combined = combined | PRESETS[name]
        except KeyError:
            known = ", ".join(PRESETS)
            raise ValueError(f"unknown redaction preset {raw!r}; known presets: {known}") from None
    return combined if combined.name else PRESETS["none"]


# Field paths hidden by ``hide_inputs`` and ``hide_outputs``. ``*`` is every
# list item. The whole value at a path becomes ``<HIDDEN>`` (``None`` stays).
HIDE_INPUT_FIELDS: Final[tuple[tuple[str, ...], ...]] = (
    ("payload", "input"),
    ("steps", "*", "input"),
    ("steps", "*", "llm", "prompts", "*"),
    ("steps", "*", "llm", "messages", "*", "content"),
    ("steps", "*", "llm", "messages", "*", "tool_calls", "*", "arguments"),
    ("steps", "*", "retrieval", "query"),
    ("steps", "*", "retrieval", "documents", "*", "content"),
)
HIDE_OUTPUT_FIELDS: Final[tuple[tuple[str, ...], ...]] = (
    ("payload", "output"),
    ("steps", "*", "output"),
    ("steps", "*", "llm", "tool_calls", "*", "arguments"),
    ("steps", "*", "retrieval", "documents", "*", "content"),
)

# What ``strict`` keeps. ``True`` keeps a value as it is; a dict lists the
# kept fields of a mapping (``"*"`` for the items of a list); ``"numbers"``
# keeps the shape and the numbers but hides every text. Any other field is
# hidden: a text field becomes ``<HIDDEN>``, a mapping or list keeps its
# shape with its texts hidden.
KEEP: Final = True
NUMBERS: Final = "numbers"

_ERROR: dict[str, Any] = {"type": KEEP, "step_id": KEEP, "step_name": KEEP, "step_kind": KEEP}
_STEP: dict[str, Any] = {
    "step_id": KEEP,
    "parent_id": KEEP,
    "kind": KEEP,
    "name": KEEP,
    "start_time": KEEP,
    "end_time": KEEP,
    "duration_ms": KEEP,
    "status": KEEP,
    "tags": KEEP,
    "error": _ERROR,
    "llm": {
        "model_name": KEEP,
        "provider": KEEP,
        "invocation_params": NUMBERS,
        "usage": KEEP,
        "cost_usd": KEEP,
        "time_to_first_token_ms": KEEP,
        "streamed": KEEP,
        "chunks": KEEP,
        "finish_reason": KEEP,
        "logprobs": KEEP,
        "messages": {"*": {"role": KEEP, "name": KEEP, "tool_call_id": KEEP}},
        "tool_calls": {"*": {"id": KEEP, "name": KEEP}},
    },
    "retrieval": {"documents": {"*": {"id": KEEP, "score": KEEP}}},
    "tool": {"name": KEEP, "tool_call_id": KEEP, "requested_by_step_id": KEEP},
    "embedding": KEEP,
    "events": {"*": {"name": KEEP, "time": KEEP}},
}
STRICT_KEEP: Final[dict[str, Any]] = {
    "schema_version": KEEP,
    "packet_id": KEEP,
    "request_id": KEEP,
    "trace_id": KEEP,
    "timestamp": KEEP,
    "end_time": KEEP,
    "status": KEEP,
    "error": _ERROR,
    "pipeline_metadata": {
        "model_name": KEEP,
        "model_version": KEEP,
        "model_provider": KEEP,
        "function_name": KEEP,
        "ab_variant": KEEP,
        "preprocessing_version": KEEP,
        "app_version": KEEP,
        "environment": KEEP,
        "session_id": KEEP,
        "user_id": KEEP,
        "tags": KEEP,
    },
    "steps": {"*": _STEP},
    "performance": KEEP,
    "producer": KEEP,
    "processing": KEEP,
    # Logprob tokens are output text: the processor hides them (keeping the
    # numbers) under ``hide_outputs`` and ``strict``.
    "model_internals": KEEP,
}
