"""The whole-packet pre-check: clean packets skip the walk, nothing sensitive does."""

from __future__ import annotations

import orjson
import pytest

import aitel
from aitel.redaction import RedactionProcessor
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
