"""Redaction: detectors, the structure walker, presets, the processor, canaries."""

from __future__ import annotations

import copy
import datetime
import decimal
import enum
import importlib
import json
import re
import sys
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import aitel
from aitel.redaction import (
    CREDENTIAL_MARKER,
    FAILED_MARKER,
    HIDDEN_MARKER,
    PRESETS,
    Finding,
    NullRedactor,
    RedactionMatch,
    RedactionProcessor,
    Redactor,
    is_credential_key,
    without_credentials,
)
from aitel.redaction import _engine as engine_module
from aitel.schema import ContextPacket

OPENAI = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"


def canary() -> str:
    """A unique, provider-shaped secret that no test data contains by chance."""
    return "sk-proj-" + uuid.uuid4().hex + "Zq" + uuid.uuid4().hex[:12]


def packet(**overrides: Any) -> dict[str, Any]:
    """A complete, schema-valid packet with every section filled."""
    base: dict[str, Any] = {
        "schema_version": "1.0",
        "packet_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "request_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "timestamp": "2024-05-01T12:00:00.000000Z",
        "end_time": "2024-05-01T12:00:01.250000Z",
        "status": "SUCCESS",
        "error_message": None,
        "error": None,
        "pipeline_metadata": {
            "model_name": "gpt-4o",
            "model_provider": "openai",
            "function_name": "RetrievalQA",
            "environment": "prod",
            "session_id": "s-42",
            "user_id": "u-7",
            "tags": ["rag"],
            "metadata": {"customer": "acme", "ticket": "T-1001"},
        },
        "payload": {"input": {"question": "What is our refund policy?"}, "output": "30 days."},
        "steps": [
            {
                "step_id": "0190a1b2-c3d4-7e5f-8a9b-000000000001",
                "parent_id": None,
                "kind": "retriever",
                "name": "vector_search",
                "start_time": "2024-05-01T12:00:00.100000Z",
                "end_time": "2024-05-01T12:00:00.200000Z",
                "duration_ms": 100.0,
                "status": "SUCCESS",
                "input": "refund policy",
                "output": None,
                "metadata": {},
                "retrieval": {
                    "query": "refund policy",
                    "documents": [
                        {
                            "id": "doc-1",
                            "score": 0.92,
                            "source": "kb/refunds.md",
                            "content": "Refunds are accepted within 30 days.",
                            "metadata": {"section": "policy"},
                        }
                    ],
                },
            },
            {
                "step_id": "0190a1b2-c3d4-7e5f-8a9b-000000000002",
                "parent_id": None,
                "kind": "chat_model",
                "name": "ChatOpenAI",
                "start_time": "2024-05-01T12:00:00.300000Z",
                "end_time": "2024-05-01T12:00:01.200000Z",
                "duration_ms": 900.0,
                "status": "SUCCESS",
                "input": [{"role": "user", "content": "What is our refund policy?"}],
                "output": "30 days.",
                "metadata": {},
                "llm": {
                    "model_name": "gpt-4o",
                    "provider": "openai",
                    "messages": [
                        {"role": "system", "content": "Answer from the context."},
                        {"role": "user", "content": "What is our refund policy?"},
                    ],
                    "invocation_params": {"temperature": 0.2, "max_tokens": 256},
                    "usage": {"prompt_tokens": 120, "completion_tokens": 5, "total_tokens": 125},
                    "cost_usd": 0.0004,
                    "finish_reason": "stop",
                    "tool_calls": [
                        {"id": "call_1", "name": "lookup_order", "arguments": {"order": "A-1"}}
                    ],
                },
                "events": [
                    {"name": "retry", "time": "2024-05-01T12:00:00.400000Z", "data": {"n": 1}}
                ],
            },
            {
                "step_id": "0190a1b2-c3d4-7e5f-8a9b-000000000003",
                "parent_id": "0190a1b2-c3d4-7e5f-8a9b-000000000002",
                "kind": "tool",
                "name": "lookup_order",
                "start_time": "2024-05-01T12:00:01.000000Z",
                "end_time": "2024-05-01T12:00:01.100000Z",
                "duration_ms": 100.0,
                "status": "SUCCESS",
                "input": '{"order": "A-1"}',
                "output": "shipped",
                "metadata": {},
                "tool": {"name": "lookup_order", "tool_call_id": "call_1"},
            },
        ],
        "performance": {
            "latency_ms": 1250.0,
            "prompt_tokens": 120,
            "completion_tokens": 5,
            "total_tokens": 125,
            "cost_usd": 0.0004,
            "llm_calls": 1,
            "tool_calls": 1,
        },
        "model_internals": {
            "logprobs": [
                {
                    "step_id": "0190a1b2-c3d4-7e5f-8a9b-000000000002",
                    "model_name": "gpt-4o",
                    "tokens": [
                        {"token": "30", "logprob": -0.01, "bytes": [51, 48]},
                        {"token": " days", "logprob": -0.2, "bytes": None},
                        {"token": ".", "logprob": -0.001, "bytes": [46]},
                    ],
                }
            ]
        },
        "producer": {"sdk": "aitel", "sdk_version": "0.1.0"},
        "processing": None,
    }
    base.update(overrides)
    return base


def encoded(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def nested(value: Any, depth: int, *, as_dict: bool) -> Any:
    for level in range(depth):
        value = {f"level{level}": value} if as_dict else [value]
    return value


def unwrap(value: Any, depth: int, *, as_dict: bool) -> Any:
    for level in reversed(range(depth)):
        value = value[f"level{level}"] if as_dict else value[0]
    return value


# -- detection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key {OPENAI} here", "key <SECRET:openai> here"),
        ("sk-ant-api03-" + "a1B2" * 10, "<SECRET:anthropic>"),
        ("id AKIAIOSFODNN7EXAMPLE ok", "id <SECRET:aws> ok"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_access_key = <SECRET:aws>",
        ),
        ("ghp_" + "a1B2c3D4e5" * 3 + "F6g7H8", "<SECRET:github>"),
        ("glpat-" + "Ab3dEf6hIj9kLm2nOp5q", "<SECRET:gitlab>"),
        ("AIza" + "Sy" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", "<SECRET:google>"),
        ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "<SECRET:slack>"),
        ("sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "<SECRET:stripe>"),
        ("hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh", "<SECRET:huggingface>"),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "<SECRET:jwt>",
        ),
        (
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5\n"
            "-----END EC PRIVATE KEY-----",
            "<SECRET:private_key>",
        ),
        ("Authorization: Bearer abc123.DEF456-ghi789", "Authorization: Bearer <SECRET:bearer>"),
        (
            "postgres://admin:s3cr3t!@db.example.com:5432/app",
            "postgres://<SECRET:url_credentials>@db.example.com:5432/app",
        ),
        ("OPENAI_API_KEY=notAProviderShape123", "OPENAI_API_KEY=<SECRET:credential>"),
        ('{"password": "hunter2!"}', '{"password": "<SECRET:credential>"}'),
        ("x-api-key: Zm9vYmFyMTIz", "x-api-key: <SECRET:credential>"),
    ],
)
def test_secrets_are_replaced_with_their_provider(text: str, expected: str) -> None:
    """Each secret shape becomes ``<SECRET:provider>``; surrounding words stay."""
    assert Redactor().redact_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail jane.doe@example.com now", "mail <EMAIL> now"),
        ("call +44 20 7946 0958 or (415) 555-2671", "call <PHONE> or <PHONE>"),
        ("+49-30-1234567", "<PHONE>"),
        ("card 4111 1111 1111 1111 exp 12/27", "card <CREDIT_CARD> exp 12/27"),
        ("IBAN DE89 3704 0044 0532 0130 00.", "IBAN <IBAN>."),
        ("ssn 123-45-6789", "ssn <US_SSN>"),
        ("from 192.168.1.20 and fe80::1ff:fe23:4567:890a", "from <IP_ADDRESS> and <IP_ADDRESS>"),
    ],
)
def test_personal_data_is_replaced_under_the_pii_preset(text: str, expected: str) -> None:
    """Emails, phones, cards, IBANs, SSNs and IP addresses become typed markers."""
    assert Redactor("pii").redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "request 123e4567-e89b-12d3-a456-426614174000 done",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "version 1.2.3.4 and v10.0.0.1",
        "order 4111111111111112 (fails Luhn)",
        "at 2024-05-01T12:30:45.123456Z",
        "ssn 000-12-3456 / 666-12-3456 / 912-34-5678 / 123-00-4567 / 123-45-0000",
        "ISBN 978-3-16-148410-0 costs $1,234.56",
        "max_tokens=256, token_count: 1523, tokens: 42",
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    """UUIDs, hashes, versions, Luhn failures, timestamps, invalid SSNs, prices stay."""
    assert Redactor("pii").redact_text(text) == text


def test_the_default_preset_keeps_personal_data() -> None:
    """``secrets`` (the default) replaces secrets only."""
    text = f"jane@example.com uses {OPENAI}"
    assert Redactor().redact_text(text) == "jane@example.com uses <SECRET:openai>"


def test_presets_combine() -> None:
    """A list of presets detects and hides the union of what each does."""
    redactor = Redactor(["pii", "hide_inputs"])
    assert redactor.preset.hide_inputs
    assert redactor.preset.categories == {"secret", "pii"}
    assert Redactor("pii,hide_outputs").preset.hide_outputs


def test_every_documented_preset_exists() -> None:
    """The presets named in the docs and settings all resolve."""
    assert set(PRESETS) == {"none", "secrets", "pii", "hide_inputs", "hide_outputs", "strict"}


def test_an_unknown_preset_or_kind_is_an_error() -> None:
    """Misspelled configuration fails loudly, listing what is known."""
    with pytest.raises(ValueError, match="known presets"):
        Redactor("secretz")
    with pytest.raises(ValueError, match="known kinds"):
        Redactor(kinds=["emails"])


def test_kinds_and_exclude_choose_detectors() -> None:
    """``kinds`` replaces the preset's kinds; ``exclude`` removes some."""
    only_email = Redactor(kinds=["email"])
    assert only_email.redact_text(f"a@b.co {OPENAI}") == f"<EMAIL> {OPENAI}"
    no_ip = Redactor("pii", exclude=["ip_address"])
    assert no_ip.redact_text("10.0.0.1 a@b.co") == "10.0.0.1 <EMAIL>"


def test_custom_patterns_are_replaced_by_name() -> None:
    """``patterns`` adds detectors; a ``secret`` group limits what is replaced."""
    redactor = Redactor(patterns={"employee_id": r"EMP-\d{6}", "pin": r"pin (?P<secret>\d{4})"})
    assert redactor.redact_text("EMP-123456 pin 4321") == "<EMPLOYEE_ID> pin <PIN>"
    assert redactor.scrub("EMP-123456").counts == {"employee_id": 1}


def test_allowlisted_keys_keep_their_values() -> None:
    """Values under ``safe_keys`` are kept as they are, at any depth."""
    redactor = Redactor("pii", safe_keys=["Support_Email"])
    value = {"support_email": "help@example.com", "user": {"email": "bob@example.com"}}
    assert redactor.redact(value) == {
        "support_email": "help@example.com",
        "user": {"email": "<EMAIL>"},
    }


def test_the_callback_sees_path_kind_and_value_and_may_replace() -> None:
    """The callback gets a ``RedactionMatch`` and returns the replacement."""
    seen: list[RedactionMatch] = []

    def callback(match: RedactionMatch) -> str | None:
        seen.append(match)
        return "[email]" if match.kind == "email" else None

    redactor = Redactor("pii", callback=callback)
    result = redactor.redact({"users": [{"contact": f"bob@example.com {OPENAI}"}]})
    assert result == {"users": [{"contact": "[email] <SECRET:openai>"}]}
    assert [(m.path, m.kind, m.value) for m in seen] == [
        (("users", 0, "contact"), "email", "bob@example.com"),
        (("users", 0, "contact"), "openai_api_key", OPENAI),
    ]


def test_a_raising_callback_fails_closed() -> None:
    """When the callback raises, the whole value becomes ``<REDACTION_FAILED>``."""

    def callback(match: RedactionMatch) -> str | None:
        raise RuntimeError("boom")

    result = Redactor(callback=callback).scrub({"note": f"key {OPENAI}", "other": "fine"})
    assert result.value == {"note": FAILED_MARKER, "other": "fine"}
    assert result.counts == {"redaction_failed": 1}


def test_a_raising_detector_fails_closed() -> None:
    """A recognizer that raises turns the value into the failure marker."""

    class Broken:
        def find(self, text: str) -> Iterator[Finding]:
            raise RuntimeError("model not loaded")

    result = Redactor(recognizers=[Broken()]).scrub(["plain", f"key {OPENAI}"])
    assert result.value == [FAILED_MARKER, FAILED_MARKER]
    assert result.counts == {"redaction_failed": 2}


def test_a_spent_time_budget_fails_closed() -> None:
    """Once the budget is spent, every further text becomes the failure marker."""
    now = [0.0]

    class Slow:
        def find(self, text: str) -> Iterator[Finding]:
            now[0] += 0.3  # each text costs 300 ms of the fake clock
            return iter(())

    secret = canary()
    texts = [f"{word} " * 60 for word in ("first", "second", "third")] + [secret, "last"]
    redactor = Redactor(recognizers=[Slow()], time_budget_s=0.5, clock=lambda: now[0])
    result = redactor.scrub([[text] for text in texts])
    assert result.value == [
        [texts[0]],
        [texts[1]],
        [FAILED_MARKER],
        [FAILED_MARKER],
        [FAILED_MARKER],
    ]
    assert result.counts == {"redaction_failed": 3}
    assert secret.encode() not in encoded(result.value)


def test_the_budget_is_checked_at_least_every_sixteen_short_texts() -> None:
    """Many short texts cannot outrun the budget by more than sixteen texts."""
    now = [0.0]

    class Slow:
        def find(self, text: str) -> Iterator[Finding]:
            now[0] += 0.1
            return iter(())

    redactor = Redactor(recognizers=[Slow()], time_budget_s=1.0, clock=lambda: now[0])
    result = redactor.scrub([f"t{n}" for n in range(100)])
    kept = [v for v in result.value if v != FAILED_MARKER]
    assert 10 <= len(kept) <= 26
    assert result.value[len(kept) :] == [FAILED_MARKER] * (100 - len(kept))


def test_dict_keys_are_redacted_and_kept_distinct() -> None:
    """Secrets in keys are replaced; keys that become equal get a ``#n`` suffix."""
    value = {"a@x.com": 1, "b@y.org": 2, OPENAI: 3}
    assert Redactor("pii").redact(value) == {"<EMAIL>": 1, "<EMAIL>#2": 2, "<SECRET:openai>": 3}


def test_values_under_credential_keys_are_masked_everywhere() -> None:
    """``api_key``, ``Authorization``, ``client_secret``... are masked whatever their value."""
    value = {
        "params": {"api_key": "anything", "temperature": 0.1, "max_tokens": 5},
        "headers": [{"Authorization": "whatever"}, {"X-Api-Key": 12345}],
        "auth": {"password": "pw"},
        "unset": {"api_key": None},
    }
    assert Redactor().redact(value) == {
        "params": {"api_key": CREDENTIAL_MARKER, "temperature": 0.1, "max_tokens": 5},
        "headers": [{"Authorization": CREDENTIAL_MARKER}, {"X-Api-Key": CREDENTIAL_MARKER}],
        "auth": CREDENTIAL_MARKER,
        "unset": {"api_key": None},
    }


def test_logprob_entries_keep_their_token_text() -> None:
    """``{"token": ..., "logprob": ...}`` holds text, not a credential."""
    value = [{"token": "Hello", "logprob": -0.1}, {"token": "abc123"}]
    assert Redactor().redact(value) == [
        {"token": "Hello", "logprob": -0.1},
        {"token": CREDENTIAL_MARKER},
    ]


@pytest.mark.parametrize("depth", [1, 2, 10, 100, 1000, 5000])
@pytest.mark.parametrize("as_dict", [False, True])
def test_any_depth_is_walked_without_recursion(depth: int, as_dict: bool) -> None:
    """A secret at depth 1..5000 (lists or dicts) is replaced; no RecursionError."""
    value = nested(f"k={OPENAI}", depth, as_dict=as_dict)
    result = Redactor(time_budget_s=60).redact(value)  # depth is tested here, not time
    assert unwrap(result, depth, as_dict=as_dict) == "k=<SECRET:openai>"


def test_json_in_a_string_is_parsed_redacted_and_reserialised() -> None:
    """A string holding JSON is walked as data (keys included) and written back."""
    text = json.dumps({"api_key": "plain-value", "note": f"use {OPENAI}", "n": 1})
    result = Redactor().redact({"arguments": text})
    assert json.loads(result["arguments"]) == {
        "api_key": CREDENTIAL_MARKER,
        "note": "use <SECRET:openai>",
        "n": 1,
    }


def test_short_json_strings_are_walked_even_when_clean_as_text() -> None:
    """A JSON string is judged as data (credential keys), not only as text."""
    redactor = Redactor()
    text = '{"api_key": "x1"}'
    assert redactor.redact_text(text) == text  # as text: nothing to find
    assert json.loads(redactor.redact([text])[0]) == {"api_key": CREDENTIAL_MARKER}
    assert json.loads(redactor.redact({"k": text})["k"]) == {"api_key": CREDENTIAL_MARKER}


def test_clean_json_strings_are_kept_byte_for_byte() -> None:
    """JSON without findings is not re-serialised (its formatting stays)."""
    text = '{ "order" : "A-1",\n  "qty": 2 }'
    assert Redactor().redact(text) is text


def test_json_escaped_secrets_are_found() -> None:
    """Unicode escapes in JSON strings cannot hide a secret."""
    escaped = json.dumps({"note": OPENAI}).replace("sk-", "\\u0073\\u006b-")
    assert "sk-" not in escaped
    assert OPENAI not in Redactor().redact(escaped)


def test_tuples_stay_tuples_and_sets_become_lists() -> None:
    """Tuples keep their type; sets (unordered) become lists."""
    result = Redactor("pii").redact({"t": ("a@b.co", (1, "x")), "s": {"only"}})
    assert result == {"t": ("<EMAIL>", (1, "x")), "s": ["only"]}


class Color(enum.Enum):
    RED = "red"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


class Holder:
    def __str__(self) -> str:
        return f"Holder(key={OPENAI})"


def test_odd_inputs_never_crash_and_never_leak() -> None:
    """Bytes, cycles, odd keys, raising ``__str__``, generators and more are handled."""
    cycle: list[Any] = [OPENAI]
    cycle.append(cycle)
    loop: dict[str, Any] = {"k": OPENAI}
    loop["self"] = loop
    generator = (x for x in [1, 2])
    value = {
        "bytes": f"k {OPENAI}".encode(),
        "bytearray": bytearray(f"k {OPENAI}".encode()),
        "memoryview": memoryview(f"k {OPENAI}".encode()),
        "invalid utf8": b"\xff\xfe" + OPENAI.encode(),
        "cycle": cycle,
        "loop": loop,
        1: "int key",
        None: "none key",
        (OPENAI, 2): "tuple key",
        b"sk": "bytes key",
        frozenset({1}): "frozenset key",
        "unprintable": Unprintable(),
        "object": Holder(),
        "generator": generator,
        "numbers": [float("nan"), 2**80, decimal.Decimal("1.5"), 1 + 2j],
        "time": [datetime.datetime(2024, 5, 1), datetime.date(2024, 5, 1)],
        "enum": Color.RED,
        "surrogate": "lone \ud800 " + OPENAI,
        "uuid": uuid.UUID(int=1),
    }
    result = Redactor().redact(value)
    assert OPENAI not in repr(result)
    assert result["cycle"][1] == "<CYCLE>"
    assert result["loop"]["self"] == "<CYCLE>"
    assert result["bytes"] == b"k <SECRET:openai>"
    assert result["invalid utf8"].startswith(b"\xff\xfe")
    assert result[("<SECRET:openai>", 2)] == "tuple key"
    assert result["unprintable"] == FAILED_MARKER
    assert result["object"] == "Holder(key=<SECRET:openai>)"
    assert list(generator) == [1, 2]  # not consumed
    assert result["enum"] is Color.RED
    assert result["numbers"][1] == 2**80


def test_card_numbers_stored_as_integers_are_redacted_under_pii() -> None:
    """An integer that is a valid card number is replaced like its text."""
    assert Redactor("pii").redact({"card": 4111111111111111, "count": 12}) == {
        "card": "<CREDIT_CARD>",
        "count": 12,
    }


def test_counts_are_recorded_and_never_contain_values() -> None:
    """``scrub`` reports counts by kind; nothing of the values is in them."""
    result = Redactor("pii").scrub({"a": f"{OPENAI} x@y.io", "b": ["z@y.io"], "api_key": "v"})
    assert result.counts == {"openai_api_key": 1, "email": 2, "credential": 1}
    assert all(isinstance(v, int) for v in result.counts.values())
    assert not any("@" in k or "sk-" in k for k in result.counts)


def test_the_null_redactor_changes_nothing() -> None:
    """``NullRedactor`` is the no-op stand-in."""
    value = {"key": OPENAI}
    assert NullRedactor().redact(value) is value
    assert NullRedactor().redact_text(OPENAI) == OPENAI
    assert NullRedactor().find(OPENAI) == []


def test_the_short_text_path_agrees_with_the_full_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-needle shortcut for short texts finds exactly what the scanners find."""
    corpus = Path(__file__).parent / "data" / "redaction_corpus.jsonl"
    lines = [json.loads(line)["text"] for line in corpus.read_text(encoding="utf-8").splitlines()]
    short = [t for t in lines if len(t) <= engine_module._SHORT]
    assert len(short) > 1000
    redactor = Redactor("pii")
    fast = [redactor.find(t) for t in short]
    monkeypatch.setattr(engine_module, "_SHORT", -1)
    assert [redactor.find(t) for t in short] == fast


# -- credential keys ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "api_key", "apiKey", "API-KEY", "openai_api_key", "OPENAI_API_KEY", "x-api-key",
        "authorization", "Proxy-Authorization", "token", "access_token", "refreshToken",
        "id_token", "auth_token", "secret", "client_secret", "password", "db_password",
        "passwd", "pwd", "private_key", "secret_access_key", "aws_session_token",
        "credentials", "cookie", "Set-Cookie", "subscription_key", "Ocp-Apim-Subscription-Key",
    ],
)  # fmt: skip
def test_credential_key_names(name: str) -> None:
    """Names that hold credentials are recognised in any spelling."""
    assert is_credential_key(name)


@pytest.mark.parametrize(
    "name",
    [
        "max_tokens", "maxTokens", "token_count", "tokens", "total_tokens", "eos_token",
        "pad_token", "next_page_token", "token_type", "key", "cache_key", "primary_key",
        "sort_key", "secret_name", "password_file", "api_key_env", "has_password",
        "temperature", "model", "secretary", "keyboard", "",
    ],
)  # fmt: skip
def test_non_credential_key_names(name: str) -> None:
    """Token counts, tokenizer settings and key-like names that hold no secret are not."""
    assert not is_credential_key(name)


def test_without_credentials_drops_credential_keys_at_any_depth() -> None:
    """Invocation parameters lose credentials, nested ones too; the rest is kept."""
    params = {"model": "gpt-4o", "api_key": "x", "client": {"openai_api_key": "y", "timeout": 3}}
    assert without_credentials(params) == {"model": "gpt-4o", "client": {"timeout": 3}}


# -- processor ------------------------------------------------------------------------


def test_the_processor_records_counts_in_processing_notes() -> None:
    """Counts by kind land in ``processing.redactions`` (added to earlier counts)."""
    p = packet(payload={"input": f"key {OPENAI}", "output": "ok"})
    p["processing"] = {"redactions": {"openai_api_key": 2}, "truncated_values": 0}
    out = RedactionProcessor().process(p)
    assert out["processing"]["redactions"] == {"openai_api_key": 3}


def test_the_processor_leaves_structure_alone() -> None:
    """Ids, timestamps, kinds, statuses, metrics and the producer are untouched."""
    original = packet()
    out = RedactionProcessor(Redactor("strict")).process(copy.deepcopy(original))
    for key in ("packet_id", "request_id", "trace_id", "timestamp", "end_time", "status"):
        assert out[key] == original[key]
    assert out["performance"] == original["performance"]
    assert out["producer"] == original["producer"]
    for before, after in zip(original["steps"], out["steps"], strict=True):
        for key in ("step_id", "parent_id", "kind", "start_time", "end_time", "status"):
            assert after[key] == before[key]


def test_a_clean_packet_is_unchanged_and_gets_no_notes() -> None:
    """Nothing found, nothing changed, no processing section added."""
    original = packet()
    assert RedactionProcessor(Redactor("pii")).process(copy.deepcopy(original)) == original


@pytest.mark.parametrize(
    "presets",
    [["secrets"], ["pii"], ["hide_inputs"], ["hide_outputs"], ["strict"], ["pii", "hide_inputs"]],
)
def test_processed_packets_stay_schema_valid(presets: list[str]) -> None:
    """Every preset yields a packet that validates against the schema."""
    secret = canary()
    p = packet(error_message=f"failed with {secret}")
    p["steps"][1]["metadata"] = {"api_key": secret, "n": 1}
    out = RedactionProcessor(presets).process(p)
    ContextPacket.model_validate(out)
    assert secret.encode() not in encoded(out)


def test_hide_inputs_hides_inputs_everywhere() -> None:
    """Request input, step inputs, messages, prompts and retrieval text become ``<HIDDEN>``."""
    out = RedactionProcessor("hide_inputs").process(packet())
    assert out["payload"] == {"input": HIDDEN_MARKER, "output": "30 days."}
    assert all(step["input"] == HIDDEN_MARKER for step in out["steps"])
    llm = out["steps"][1]["llm"]
    assert {m["content"] for m in llm["messages"]} == {HIDDEN_MARKER}
    assert [m["role"] for m in llm["messages"]] == ["system", "user"]
    retrieval = out["steps"][0]["retrieval"]
    assert retrieval["query"] == HIDDEN_MARKER
    assert retrieval["documents"][0]["content"] == HIDDEN_MARKER
    assert out["steps"][1]["output"] == "30 days."
    assert out["processing"]["redactions"]["hidden"] == 8


def test_hide_outputs_hides_outputs_and_logprob_text() -> None:
    """Outputs, model tool-call arguments, retrieved content and token text are hidden."""
    out = RedactionProcessor("hide_outputs").process(packet())
    assert out["payload"]["output"] == HIDDEN_MARKER
    assert out["payload"]["input"] == {"question": "What is our refund policy?"}
    assert out["steps"][1]["output"] == HIDDEN_MARKER
    assert out["steps"][1]["llm"]["tool_calls"][0]["arguments"] == HIDDEN_MARKER
    tokens = out["model_internals"]["logprobs"][0]["tokens"]
    assert {t["token"] for t in tokens} == {HIDDEN_MARKER}
    assert [t["logprob"] for t in tokens] == [-0.01, -0.2, -0.001]
    assert all(t["bytes"] is None for t in tokens)


def test_strict_keeps_only_structure_and_measurements() -> None:
    """Under ``strict`` every text except ids, names, kinds and metrics is hidden."""
    out = RedactionProcessor("strict").process(packet())
    assert out["pipeline_metadata"]["model_name"] == "gpt-4o"
    assert out["pipeline_metadata"]["metadata"] == {
        "customer": HIDDEN_MARKER,
        "ticket": HIDDEN_MARKER,
    }
    assert out["payload"] == {"input": HIDDEN_MARKER, "output": HIDDEN_MARKER}
    step = out["steps"][1]
    assert step["name"] == "ChatOpenAI"
    assert step["llm"]["usage"] == {
        "prompt_tokens": 120,
        "completion_tokens": 5,
        "total_tokens": 125,
    }
    assert step["llm"]["invocation_params"] == {"temperature": 0.2, "max_tokens": 256}
    assert step["llm"]["tool_calls"][0] == {
        "id": "call_1",
        "name": "lookup_order",
        "arguments": HIDDEN_MARKER,
    }
    assert step["events"][0] == {
        "name": "retry",
        "time": "2024-05-01T12:00:00.400000Z",
        "data": {"n": 1},
    }
    document = out["steps"][0]["retrieval"]["documents"][0]
    assert document == {"id": "doc-1", "score": 0.92, "source": HIDDEN_MARKER, "content": HIDDEN_MARKER, "metadata": {"section": HIDDEN_MARKER}}  # fmt: skip
    ContextPacket.model_validate(out)


def test_strict_keeps_the_error_type_and_hides_its_message() -> None:
    """An error keeps its type and location; message and traceback are hidden."""
    error = {"type": "ValueError", "message": "bad input x@y.io", "traceback": "Traceback ..."}
    out = RedactionProcessor("strict").process(
        packet(status="FAILURE", error=error, error_message="bad")
    )
    assert out["error"] == {
        "type": "ValueError",
        "message": HIDDEN_MARKER,
        "traceback": HIDDEN_MARKER,
    }
    assert out["error_message"] == HIDDEN_MARKER


def test_the_processor_accepts_presets_configs_and_redactors() -> None:
    """Preset names, a config mapping, a ``Redactor`` or ``None`` (secrets) all work."""
    assert RedactionProcessor().redactor.preset.name == "secrets"
    assert RedactionProcessor("pii").redactor.kinds >= {"email"}
    assert RedactionProcessor({"preset": "pii", "safe_keys": ["x"]}).redactor.safe_keys == {"x"}
    assert isinstance(RedactionProcessor.from_presets(["none"]).redactor, NullRedactor)
    assert RedactionProcessor.from_presets(["pii", "hide_inputs"]).redactor.preset.hide_inputs


def test_a_null_redactor_processor_passes_packets_through() -> None:
    """With ``NullRedactor`` the packet is returned as it came."""
    p = packet(payload={"input": OPENAI, "output": None})
    assert RedactionProcessor(NullRedactor()).process(p) is p
    assert p["payload"]["input"] == OPENAI


def test_a_processor_time_budget_fails_closed_on_the_packet() -> None:
    """A packet that outlives the budget has no raw text left, only markers."""
    secret = canary()
    now = [0.0]

    class Slow:
        def find(self, text: str) -> Iterator[Finding]:
            now[0] += 1.0
            return iter(())

    p = packet(payload={"input": "first", "output": secret})
    out = RedactionProcessor(Redactor(recognizers=[Slow()], clock=lambda: now[0])).process(p)
    assert secret.encode() not in encoded(out)
    assert out["processing"]["redactions"]["redaction_failed"] > 1


# -- canaries -------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 8, 13, 21, 25, 26, 34, 55, 64])
def test_canary_at_any_depth_never_survives(depth: int) -> None:
    """A secret nested 1..64 levels deep in input, output and metadata is removed."""
    secret = canary()
    p = packet(
        payload={
            "input": nested(secret, depth, as_dict=True),
            "output": nested(secret, depth, as_dict=False),
        }
    )
    p["steps"][0]["metadata"] = nested({"note": f"token is {secret}"}, depth, as_dict=True)
    out = RedactionProcessor().process(p)
    assert secret.encode() not in encoded(out)


def test_canary_in_dict_keys_never_survives() -> None:
    """A secret used as a dict key, at several depths, is removed."""
    secret = canary()
    p = packet(payload={"input": {secret: 1, "a": {"b": {secret: [secret]}}}, "output": None})
    p["pipeline_metadata"]["metadata"] = {secret: "v"}
    out = RedactionProcessor().process(p)
    assert secret.encode() not in encoded(out)


def test_canary_in_tool_arguments_never_survives() -> None:
    """Secrets in tool-call arguments (dicts and JSON strings) and tool inputs are removed."""
    secret = canary()
    p = packet()
    p["steps"][1]["llm"]["tool_calls"][0]["arguments"] = json.dumps({"query": secret})
    p["steps"][1]["llm"]["messages"].append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"name": "t", "arguments": {"k": secret}}],
        }
    )
    p["steps"][2]["input"] = json.dumps({"api_key": "plain", "q": secret})
    out = RedactionProcessor().process(p)
    assert secret.encode() not in encoded(out)
    assert b"plain" not in encoded(out["steps"][2])


def test_canary_in_errors_and_tracebacks_never_survives() -> None:
    """Secrets in error messages and tracebacks (packet and step level) are removed."""
    secret = canary()
    traceback = f'Traceback (most recent call last):\n  File "app.py"\nValueError: bad key {secret}'
    error = {"type": "ValueError", "message": f"bad key {secret}", "traceback": traceback}
    p = packet(status="FAILURE", error_message=f"ValueError: bad key {secret}", error=error)
    p["steps"][1]["status"] = "FAILURE"
    p["steps"][1]["error"] = dict(error)
    out = RedactionProcessor().process(p)
    assert secret.encode() not in encoded(out)
    assert out["error"]["type"] == "ValueError"


def test_canary_in_retrieved_documents_never_survives() -> None:
    """Secrets in retrieved content, sources and document metadata are removed."""
    secret = canary()
    p = packet()
    document = p["steps"][0]["retrieval"]["documents"][0]
    document["content"] = f"config: OPENAI_API_KEY={secret}"
    document["source"] = f"https://admin:{secret}@kb.example.com/doc"
    document["metadata"] = {"raw": [secret]}
    out = RedactionProcessor().process(p)
    assert secret.encode() not in encoded(out)


def test_canary_split_across_logprob_tokens_never_survives() -> None:
    """A secret spread over several tokens is masked in the tokens, bytes and alternatives."""
    secret = canary()
    pieces = ["Your", " key", " is", " ", secret[:2], secret[2:8], secret[8:20], secret[20:], "."]
    tokens = [
        {
            "token": piece,
            "logprob": -0.5,
            "bytes": list(piece.encode()),
            "top_logprobs": [{"token": piece, "logprob": -0.5}],
        }
        for piece in pieces
    ]
    p = packet()
    p["model_internals"]["logprobs"][0]["tokens"] = tokens
    p["steps"][1]["output"] = "".join(pieces)
    out = RedactionProcessor().process(p)
    kept = out["model_internals"]["logprobs"][0]["tokens"]
    joined = "".join(t["token"] for t in kept)
    assert joined == "Your key is <SECRET:openai>."
    from_bytes = bytes(b for t in kept for b in (t["bytes"] or [])).decode()
    alternatives = "".join(a["token"] for t in kept for a in t["top_logprobs"])
    assert secret[2:8] not in from_bytes
    assert secret[2:8] not in alternatives
    assert [t["logprob"] for t in kept] == [-0.5] * len(pieces)
    assert secret.encode() not in encoded(out)
    assert out["processing"]["redactions"]["openai_api_key"] == 2  # tokens and output


def test_canary_in_invocation_params_never_survives() -> None:
    """Credentials under any parameter name or value shape are removed."""
    secret = canary()
    p = packet()
    p["steps"][1]["llm"]["invocation_params"] = {
        "api_key": "short",
        "default_headers": {"Authorization": f"Bearer {secret}"},
        "base_url": f"https://user:{secret}@proxy.example.com",
    }
    out = RedactionProcessor().process(p)
    assert secret.encode() not in encoded(out)
    assert b"short" not in encoded(out)


def _traced_request_with_canaries(tracer: aitel.Tracer, secret: str) -> None:
    """A request that plants ``secret`` in every part of a packet, then fails."""
    with aitel.trace("rag", input={"q": f"use {secret}", secret: 1}, tracer=tracer) as root:
        with root.step("search", kind="retriever", input=secret) as step:
            step.set_retrieval(query=secret, documents=[{"id": "d", "content": f"token={secret}"}])
        with root.step("llm", kind="chat_model") as step:
            step.set_llm(
                model_name="gpt-4o",
                messages=[{"role": "user", "content": secret}],
                invocation_params={"api_key": secret, "temperature": 0},
                tool_calls=[{"id": "c1", "name": "t", "arguments": json.dumps({"k": secret})}],
                logprobs=[
                    {"token": secret[:10], "logprob": -1.0},
                    {"token": secret[10:], "logprob": -1.0},
                ],
            )
            step.set_output(secret)
        raise ValueError(f"bad key {secret}")


def test_canary_through_tracer_pipeline_and_jsonl_exporter(tmp_path: Path) -> None:
    """End to end: traced data with canaries everywhere reaches the JSONL file scrubbed."""
    secret = canary()
    exporter = aitel.JsonlExporter(tmp_path)
    settings = aitel.Settings.from_env(redaction=("secrets",), capture_logprobs=True)
    tracer = aitel.Tracer(exporter, settings=settings)
    try:
        with pytest.raises(ValueError, match="bad key"):
            _traced_request_with_canaries(tracer, secret)
        assert tracer.flush(10.0)
    finally:
        tracer.shutdown(timeout=5.0)
    data = b"".join(path.read_bytes() for path in exporter.files())
    assert data.count(b"\n") == 1
    assert secret.encode() not in data
    assert secret[10:].encode() not in data
    written = json.loads(data)
    ContextPacket.model_validate(written)
    assert written["processing"]["redactions"]["openai_api_key"] >= 5


# -- optional Presidio adapter --------------------------------------------------------


def test_presidio_import_error_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Presidio the adapter's import error says exactly what to install."""
    monkeypatch.setitem(sys.modules, "presidio_analyzer", None)
    monkeypatch.delitem(sys.modules, "aitel.redaction.presidio", raising=False)
    with pytest.raises(ImportError, match=re.escape('pip install "aitel[presidio]"')):
        importlib.import_module("aitel.redaction.presidio")


def test_the_presidio_adapter_turns_analyzer_results_into_findings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With an analyzer passed in, its results become findings the redactor applies."""

    class Result:
        def __init__(self, entity_type: str, start: int, end: int, score: float) -> None:
            self.entity_type, self.start, self.end, self.score = entity_type, start, end, score

    class FakeAnalyzer:
        def analyze(
            self, text: str, language: str, entities: Any, score_threshold: float
        ) -> list[Result]:
            assert language == "en"
            start = text.find("Ada Lovelace")
            found = [Result("PERSON", start, start + 12, 0.85)] if start >= 0 else []
            email = text.find("ada@example.com")
            if email >= 0:
                found.append(Result("EMAIL_ADDRESS", email, email + 15, 0.99))
            found.append(Result("LOCATION", 0, 2, 0.1))  # below the threshold
            return found

    fake_module = types.ModuleType("presidio_analyzer")
    fake_module.AnalyzerEngine = FakeAnalyzer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "presidio_analyzer", fake_module)
    monkeypatch.delitem(sys.modules, "aitel.redaction.presidio", raising=False)
    presidio = importlib.import_module("aitel.redaction.presidio")

    redactor = Redactor("pii", recognizers=[presidio.PresidioRecognizer(FakeAnalyzer())])
    result = redactor.scrub("Ada Lovelace <ada@example.com> wrote it")
    assert result.value == "<PERSON> <<EMAIL>> wrote it"
    assert result.counts == {"person": 1, "email": 1}
    assert isinstance(presidio.PresidioRecognizer().analyzer, FakeAnalyzer)


# -- public API -----------------------------------------------------------------------


def test_every_public_name_resolves() -> None:
    """``aitel.redaction.__all__`` lists only names the package provides."""
    redaction = importlib.import_module("aitel.redaction")
    for name in redaction.__all__:
        assert getattr(redaction, name) is not None, name
