"""The redaction step of the pipeline: every packet is scrubbed before export.

The processor scrubs every field that can carry content (payload, steps'
inputs, outputs, errors, metadata, LLM, retrieval, tool and event data,
pipeline metadata, top-level error text, unknown extra fields) and leaves
structure alone: ids, timestamps, kinds, statuses, numeric metrics, the
schema version, producer and processing notes. Counts by kind go to
``packet["processing"]["redactions"]``.

Logprob tokens get special care: a secret split over several tokens is
invisible token by token, so the tokens of each step are joined, scanned as
one text, and every token that overlaps a finding is masked (its text
replaced, its ``bytes`` and alternatives dropped; the logprob numbers stay).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from typing import Any, AnyStr, TypedDict

import orjson

from aitel.processors.base import Packet, processing_notes
from aitel.redaction._hiding import hide_fields, hide_strict
from aitel.redaction.keys import CREDENTIAL_WORDS, is_credential_key
from aitel.redaction.patterns import FAILED_MARKER, HIDDEN, HIDDEN_MARKER, REDACTION_FAILED
from aitel.redaction.presets import HIDE_INPUT_FIELDS, HIDE_OUTPUT_FIELDS, STRICT_KEEP
from aitel.redaction.scrubber import (
    DEFAULT_TIME_BUDGET_S,
    NullRedactor,
    RedactionCallback,
    RedactionSession,
    Redactor,
)

__all__ = ["RedactionConfig", "RedactionProcessor"]

# Structural fields: never scanned (ids, times, enums, numbers, notes).
_PACKET_STRUCTURE = frozenset(
    {
        "schema_version",
        "packet_id",
        "request_id",
        "trace_id",
        "timestamp",
        "end_time",
        "status",
        "performance",
        "producer",
        "processing",
    }
)
_STEP_STRUCTURE = frozenset(
    {"step_id", "parent_id", "kind", "start_time", "end_time", "duration_ms", "status"}
)
_TOKEN_NUMBERS = frozenset({"logprob"})


_PACKET_CONTENT = ("payload", "pipeline_metadata", "error", "error_message")
_STEP_CONTENT = (
    "name", "input", "output", "error", "metadata", "tags", "retrieval", "tool", "embedding",
    "events",
)  # fmt: skip
_LLM_CONTENT = (
    "model_name", "provider", "messages", "prompts", "invocation_params", "tool_calls",
    "finish_reason",
)  # fmt: skip
_KNOWN_PACKET = _PACKET_STRUCTURE | {"steps", "model_internals", *_PACKET_CONTENT}
_KNOWN_STEP = _STEP_STRUCTURE | {"llm", *_STEP_CONTENT}
_KNOWN_LLM = frozenset(
    {
        *_LLM_CONTENT, "usage", "cost_usd", "time_to_first_token_ms", "streamed", "chunks",
        "logprobs",
    }
)  # fmt: skip


def _picker(keys: tuple[str, ...]) -> Callable[[dict[str, Any]], Any]:
    """``d -> (d[k] for k in keys)`` in one C call, or with ``None`` for missing keys."""
    fast = operator.itemgetter(*keys)

    def pick(d: dict[str, Any]) -> Any:
        try:
            return fast(d)
        except KeyError:
            return list(map(d.get, keys))

    return pick


_packet_content = _picker(_PACKET_CONTENT)
_step_content = _picker(_STEP_CONTENT)


def _llm_content(llm: dict[str, Any]) -> list[Any]:
    # never all there: a chat model's call has no "prompts", a completion model's no "messages"
    return list(map(llm.get, _LLM_CONTENT))


def _content(packet: Packet) -> list[Any] | None:
    """The parts of a packet that can hold content; None when unsure (unknown shapes)."""
    if packet.get("model_internals") or not _KNOWN_PACKET.issuperset(packet):
        return None
    parts: list[Any] = [_packet_content(packet)]
    steps = packet.get("steps") or ()
    if not isinstance(steps, list):
        return None
    for step in steps:
        if not isinstance(step, dict) or not _KNOWN_STEP.issuperset(step):
            return None
        parts.append(_step_content(step))
        llm = step.get("llm")
        if llm is not None:
            if not isinstance(llm, dict) or not _KNOWN_LLM.issuperset(llm):
                return None
            parts.append(_llm_content(llm))
    return parts


def _nothing_to_find(redactor: Redactor, packet: Packet) -> bool:
    """True when nothing in the packet needs scrubbing (the common, clean case).

    One pass over the JSON text of the packet's content parts replaces a walk
    over every value. Where a detector's needle or a credential word occurs
    (``token`` in ``max_tokens``, ``pass`` in ``RunnablePassthrough``), the one
    string around it is checked as the walk would check it (see
    :class:`_StringCheck`); any finding, or any doubt, sends the packet to the walk.
    """
    if redactor.callback is not None or not redactor.parse_json_strings:
        return False
    parts = _content(packet)
    if parts is None:
        return False
    try:
        data = orjson.dumps(parts)
    except (TypeError, orjson.JSONEncodeError):
        return False
    # A credential word anywhere may be a key naming a credential: look for them in the same scans.
    words = CREDENTIAL_WORDS if redactor.mask_credential_keys else ()
    return not redactor.could_match(data, words, _StringCheck(redactor))


class _StringCheck:
    """Does the JSON string around a needle found at an index need the walk?

    The text scanned is orjson's output (as bytes, or decoded), so a ``"``
    without a backslash before it is always a string's edge and needles
    (which hold no quotes) lie inside one string. A string with no backslash
    in its JSON form is the very text the walk would see: it needs the walk
    if the redactor finds anything in it, or if it is an object key that
    names a credential. A string with escapes (embedded JSON, control
    characters) always goes to the walk. One check serves one scanned text.
    """

    __slots__ = ("_clean", "_mask_keys", "_redactor")

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._mask_keys = redactor.mask_credential_keys
        self._clean: set[int] = set()

    def __call__(self, text: str | bytes, index: int) -> bool:
        found: tuple[int, str | bytes, bool] | None
        if isinstance(text, bytes):
            found = _json_string_at(text, index, b'"', b"\\", b":")
        else:
            found = _json_string_at(text, index, '"', "\\", ":")
        if found is None:
            return True
        start, raw, is_key = found
        if start in self._clean:
            return False
        try:
            string = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            if self._mask_keys and is_key and is_credential_key(string):
                return True
            if self._redactor.find(string):
                return True
        except Exception:
            return True
        self._clean.add(start)
        return False


def _json_string_at(
    text: AnyStr, index: int, quote: AnyStr, backslash: AnyStr, colon: AnyStr
) -> tuple[int, AnyStr, bool] | None:
    """The JSON string around ``index``: its opening quote's index, its text, is it a key?

    None when it has escapes (or ``index`` is in no string).
    """
    start = text.rfind(quote, 0, index)
    end = text.find(quote, index)
    if start < 0 or end < 0:
        return None
    raw = text[start + 1 : end]
    if backslash in raw or text[start - 1 : start] == backslash:
        return None
    return start, raw, text[end + 1 : end + 2] == colon


class RedactionConfig(TypedDict, total=False):
    """Keyword arguments of :class:`~aitel.redaction.Redactor`, as a mapping."""

    preset: str | list[str] | tuple[str, ...]
    kinds: list[str] | tuple[str, ...] | frozenset[str] | None
    exclude: list[str] | tuple[str, ...]
    patterns: dict[str, str]
    safe_keys: list[str] | tuple[str, ...] | frozenset[str]
    callback: RedactionCallback | None
    time_budget_s: float
    parse_json_strings: bool
    mask_credential_keys: bool


RedactorSource = Redactor | NullRedactor | RedactionConfig | str | Iterable[str] | None


def _as_redactor(source: RedactorSource) -> Redactor | NullRedactor:
    if source is None:
        return Redactor()
    if isinstance(source, Redactor | NullRedactor):
        return source
    if isinstance(source, dict):
        return Redactor(**source)
    if isinstance(source, str):
        return NullRedactor() if source.strip().lower() == "none" else Redactor(source)
    names = [str(name) for name in source]
    if all(name.strip().lower() == "none" for name in names):
        return NullRedactor()
    return Redactor(names)


class RedactionProcessor:
    """Scrubs secrets and personal data from every packet (see the module docs).

    ``RedactionProcessor()`` uses the ``"secrets"`` preset. Pass a
    :class:`Redactor`, a :class:`NullRedactor`, preset names, or a
    :class:`RedactionConfig` mapping of the redactor's keyword arguments.
    """

    def __init__(self, redactor_or_config: RedactorSource = None) -> None:
        self.redactor: Redactor | NullRedactor = _as_redactor(redactor_or_config)

    @classmethod
    def from_presets(
        cls,
        presets: str | Iterable[str],
        *,
        time_budget_s: float = DEFAULT_TIME_BUDGET_S,
    ) -> RedactionProcessor:
        """A processor for named presets, e.g. ``["pii", "hide_inputs"]``."""
        names = [presets] if isinstance(presets, str) else list(presets)
        if not names or all(n.strip().lower() == "none" for n in names):
            return cls(NullRedactor())
        return cls(Redactor(names, time_budget_s=time_budget_s))

    def __repr__(self) -> str:
        return f"RedactionProcessor({self.redactor!r})"

    def process(self, packet: Packet) -> Packet:
        redactor = self.redactor
        if not isinstance(redactor, Redactor):
            return packet
        preset = redactor.preset
        hiding = preset.strict or preset.hide_inputs or preset.hide_outputs
        if not hiding and _nothing_to_find(redactor, packet):
            return packet  # the common case: nothing to hide, nothing to find
        session = redactor.session()
        if hiding:
            if preset.strict:
                hide_strict(packet, STRICT_KEEP, session)
            if preset.hide_inputs:
                hide_fields(packet, HIDE_INPUT_FIELDS, session)
            if preset.hide_outputs:
                hide_fields(packet, HIDE_OUTPUT_FIELDS, session)
            if _nothing_to_find(redactor, packet):
                _record(packet, session.counts)
                return packet
        hide_tokens = preset.hide_outputs or preset.strict
        for key, value in list(packet.items()):
            if key in _PACKET_STRUCTURE or value is None:
                continue
            if key == "steps" and isinstance(value, list):
                for index, step in enumerate(value):
                    if isinstance(step, dict):
                        _scrub_step(step, index, session)
                    else:
                        value[index] = session.value(step, ("steps", index))
            elif key == "model_internals" and isinstance(value, dict):
                _scrub_internals(value, session, hide_tokens)
            else:
                packet[key] = session.value(value, (key,))
        _record(packet, session.counts)
        return packet


def _scrub_step(step: dict[str, Any], index: int, session: RedactionSession) -> None:
    for key, value in list(step.items()):
        if key in _STEP_STRUCTURE or value is None:
            continue
        step[key] = session.value(value, ("steps", index, key))


def _scrub_internals(internals: dict[str, Any], session: RedactionSession, hide: bool) -> None:
    for key, value in list(internals.items()):
        if key == "logprobs" and isinstance(value, list):
            for entry in value:
                if isinstance(entry, dict) and isinstance(entry.get("tokens"), list):
                    _scrub_tokens(entry["tokens"], session, hide)
        elif value is not None:
            internals[key] = session.value(value, ("model_internals", key))


def _mask_token(token: dict[str, Any], text: str) -> None:
    token["token"] = text
    if "bytes" in token:
        token["bytes"] = None
    alternatives = token.get("top_logprobs")
    if isinstance(alternatives, list):
        for alternative in alternatives:
            if isinstance(alternative, dict):
                alternative["token"] = text
                if "bytes" in alternative:
                    alternative["bytes"] = None


def _token_text(token: dict[str, Any]) -> str:
    text = token.get("token")
    return text if isinstance(text, str) else ""


def _scrub_tokens(tokens: list[Any], session: RedactionSession, hide: bool) -> None:
    """Mask the tokens of every finding in the joined token text."""
    entries = [t for t in tokens if isinstance(t, dict)]
    if hide:
        for token in entries:
            _mask_token(token, HIDDEN_MARKER)
        if entries:
            session.note(HIDDEN)
        return
    texts = [_token_text(t) for t in entries]
    joined = "".join(texts)
    findings = session.find(joined)
    if findings is None:
        for token in entries:
            _mask_token(token, FAILED_MARKER)
        session.note(REDACTION_FAILED)
        return
    masked = [False] * len(entries)
    if findings:
        starts: list[int] = []
        position = 0
        for text in texts:
            starts.append(position)
            position += len(text)
        cursor = 0
        for finding in findings:
            while cursor < len(entries) and starts[cursor] + len(texts[cursor]) <= finding.start:
                cursor += 1
            first = True
            index = cursor
            while index < len(entries) and starts[index] < finding.end:
                if texts[index] or first:
                    _mask_token(entries[index], finding.replacement if first else "")
                    masked[index] = True
                    first = False
                index += 1
            session.note(finding.kind)
    for index, token in enumerate(entries):
        for key, value in list(token.items()):
            if key == "top_logprobs" and isinstance(value, list) and not masked[index]:
                token[key] = session.value(value, ("model_internals", "top_logprobs"))
            elif key not in ("token", "bytes", "top_logprobs") and key not in _TOKEN_NUMBERS:
                token[key] = session.value(value, ("model_internals", key))


def _record(packet: Packet, counts: dict[str, int]) -> None:
    if not counts:
        return
    notes = processing_notes(packet)
    redactions = notes.get("redactions")
    if not isinstance(redactions, dict):
        redactions = {}
        notes["redactions"] = redactions
    for kind, count in counts.items():
        previous = redactions.get(kind, 0)
        redactions[kind] = (previous if isinstance(previous, int) else 0) + count
