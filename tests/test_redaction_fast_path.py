"""The whole-packet pre-check: clean packets skip the walk, nothing sensitive does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

import aitel
from aitel.redaction import RedactionProcessor, Redactor
from aitel.redaction import processor as processor_module
from aitel.redaction._native import NeedleScanner
from aitel.redaction.processor import _nothing_to_find
from aitel.testing import capture_packets


def traced_packet(**step_data) -> dict:
    with capture_packets(redaction=()) as captured:
        with aitel.trace(
            "job", input=step_data.get("input", "hello"), metadata=step_data.get("metadata")
        ) as t:
            with t.step("call", kind="llm", input=step_data.get("step_input")) as s:
                s.set_llm(
                    model_name="gpt-4o",
                    invocation_params=step_data.get("params", {"temperature": 0}),
                )
                s.set_output(step_data.get("output", "world"))
        return captured.one()


def test_clean_packet_takes_the_fast_path_and_is_unchanged() -> None:
    packet = traced_packet()
    processor = RedactionProcessor.from_presets("secrets")
    assert _nothing_to_find(processor.redactor, packet)
    before = orjson.dumps(packet)
    assert orjson.dumps(processor.process(packet)) == before


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ({"metadata": {"creds": "hunter2-plain"}}, "hunter2-plain"),
        ({"metadata": {"jwt": "opaque-value-1"}}, "opaque-value-1"),
        ({"input": '{"creds": "nested-plain-2"}'}, "nested-plain-2"),
        ({"step_input": {"deep": [{"x": {"api_key": "plain-3"}}]}}, "plain-3"),
        (
            {"output": "key is sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"},
            "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
        ),
    ],
)
def test_sensitive_values_never_take_the_fast_path(where: dict, value: str) -> None:
    packet = traced_packet(**where)
    processor = RedactionProcessor.from_presets("secrets")
    assert not _nothing_to_find(processor.redactor, packet)
    assert value.encode() not in orjson.dumps(processor.process(packet))


def test_pii_presets_always_walk() -> None:
    packet = traced_packet()
    assert not _nothing_to_find(RedactionProcessor.from_presets("pii").redactor, packet)


def test_credential_parameters_are_gone_before_redaction() -> None:
    packet = traced_packet(params={"temperature": 0, "client_secret": "plain-4"})
    assert b"plain-4" not in orjson.dumps(packet)
    assert packet["steps"][1]["llm"]["invocation_params"] == {"temperature": 0}


CORPUS = Path(__file__).parent / "data" / "redaction_corpus.jsonl"

# Texts around the places the pre-check looks at: credential words in keys and
# values, escapes next to them, embedded JSON, needles in harmless names.
HANDMADE = [
    "max_tokens", "Max Tokens", "api key", "API-Key", "x-api-key", "apiKey", "my_secret",
    "RunnablePassthrough", "token_usage", "input_tokens", "passthrough", "keyboard",
    "password\t: hunter2-plain", "\tpassword: hunter2-plain", "tpassword: hunter2-plain",
    "C:\\password: hunter2-plain", 'say "password: hunter2-plain"', "password:\nhunter2-plain",
    '{"api_key": "plain-5"}', '["token", "plain-6"]', '{"max_tokens": 256}',
    "Authorization: Bearer abc.def.ghi", "see https://example.com/docs", "key=value-plain-7",
    "token = settings.token", "the key is in the drawer", "auth\\u0000: plain-8",
]  # fmt: skip


def corpus_texts() -> list[str]:
    with CORPUS.open() as f:
        return [json.loads(line)["text"] for line in f] + HANDMADE


def placements(text: str) -> list[tuple[str, dict[str, Any]]]:
    """``text`` at each kind of place a packet carries content (step_data for traced_packet)."""
    return [
        ("value", {"input": text}),
        ("key", {"metadata": {text: "opaque-value-1"}}),
        ("embedded JSON", {"step_input": json.dumps({"q": text, text: "opaque-value-2"})}),
        ("model parameter", {"params": {"temperature": 0, text: 256}}),
    ]


@pytest.mark.parametrize("scan", ["one pass", "regex plan"])
@pytest.mark.parametrize("preset", ["secrets", "credentials-kept"])
def test_the_pre_check_never_skips_a_packet_the_walk_would_change(
    preset: str, scan: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Differential test on every corpus text in every place: skipping is always safe.

    Whenever the pre-check says there is nothing to find, the full walk (run
    here with the pre-check turned off) leaves the packet exactly as it was.
    The pre-check scans in one pass with Hyperscan where it is installed; the
    regex plan is its fallback.
    """
    if scan == "regex plan":
        monkeypatch.setattr(NeedleScanner, "could_match", lambda *args: None)
    if preset == "secrets":
        redactor = Redactor("secrets")
    else:
        redactor = Redactor("secrets", mask_credential_keys=False)
    processor = RedactionProcessor(redactor)
    base = traced_packet()
    skipped = walked = 0
    for text in corpus_texts():
        for where, step_data in placements(text):
            packet = place(base, **step_data)
            if not _nothing_to_find(redactor, packet):
                walked += 1
                continue
            skipped += 1
            before = orjson.dumps(packet)
            with monkeypatch.context() as m:
                m.setattr(processor_module, "_nothing_to_find", lambda *args: False)
                after = orjson.dumps(processor.process(orjson.loads(before)))
            assert after == before, (where, text)
    # both outcomes are exercised: most texts hold a needle, many of them no finding
    assert skipped > 3_000 and walked > 3_000, (skipped, walked)


def place(base: dict[str, Any], **step_data: Any) -> dict[str, Any]:
    """A copy of ``base`` with content put where :func:`traced_packet` would put it."""
    packet = orjson.loads(orjson.dumps(base))
    root, step = packet["steps"]
    if "input" in step_data:
        packet["payload"]["input"] = root["input"] = step_data["input"]
    if "metadata" in step_data:
        root["metadata"] = step_data["metadata"]
    if "step_input" in step_data:
        step["input"] = step_data["step_input"]
    if "params" in step_data:
        step["llm"]["invocation_params"] = step_data["params"]
    return packet


def test_harmless_needles_keep_the_fast_path() -> None:
    """Credential words inside ordinary names do not send the packet to the walk."""
    packet = traced_packet(
        params={"temperature": 0, "max_tokens": 256},
        metadata={"runnable": "RunnablePassthrough", "token_usage": {"input_tokens": 3}},
    )
    assert _nothing_to_find(Redactor("secrets"), packet)


@pytest.mark.parametrize(
    "step_data",
    [
        {"metadata": {"api key": "plain-9"}},
        {"metadata": {"note": "password\t: hunter2-plain"}},
        {"step_input": json.dumps({"api_key": "plain-10"})},
        {"step_input": {"headers": {"x-api-key": "plain-11"}}},
    ],
)
def test_a_credential_beside_a_harmless_word_still_walks(step_data: dict[str, Any]) -> None:
    packet = traced_packet(
        params=step_data.pop("params", {"temperature": 0, "max_tokens": 256}), **step_data
    )
    assert not _nothing_to_find(Redactor("secrets"), packet)
