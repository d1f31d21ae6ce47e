"""The classic analysis script reads aitel's JSONL files unchanged."""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter

import pytest
from fakes import FailingModel, answer
from langchain_aitel import AITelHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.runnables import RunnableLambda

from aitel import JsonlExporter, Settings, Tracer


def analyze_failed_requests(log_file_path: str):
    """The seed's analysis, verbatim in logic: reads status, error_message, payload.input."""
    failed_requests = []
    with open(log_file_path) as f:
        for line in f:
            try:
                log_entry = json.loads(line)
                if log_entry.get("status") == "FAILURE":
                    failed_requests.append(log_entry)
            except json.JSONDecodeError:
                continue
    if not failed_requests:
        print("No failed requests found.")
        return
    print(f"Found {len(failed_requests)} failed requests.")
    error_messages = [req.get("error_message", "Unknown") for req in failed_requests]
    error_counter = Counter(error_messages)
    print("\n--- Top Error Messages ---")
    for error, count in error_counter.most_common(5):
        print(f"- '{error}': {count} times")
    failed_prompt_lengths = [
        len(req.get("payload", {}).get("input", ""))
        for req in failed_requests
        if req.get("payload", {}).get("input")
    ]
    if failed_prompt_lengths:
        avg_len = sum(failed_prompt_lengths) / len(failed_prompt_lengths)
        print(f"\nAverage prompt length in failed requests: {avg_len:.2f} characters.")


def test_seed_analysis_finds_our_failures(tmp_path) -> None:
    exporter = JsonlExporter(tmp_path)
    tracer = Tracer(exporter, settings=Settings())
    handler = AITelHandler(tracer=tracer)

    def ask(model):
        return (RunnableLambda(lambda q: [("human", q)]) | model).with_config(run_name="ask")

    for i in range(5):
        ask(GenericFakeChatModel(messages=iter([answer("ok")]))).invoke(
            f"good prompt {i}", config={"callbacks": [handler]}
        )
    for _ in range(3):
        with pytest.raises(ConnectionError):
            ask(FailingModel(messages=iter([]), error="Rate limit exceeded")).invoke(
                "a much longer failing prompt", config={"callbacks": [handler]}
            )
    with pytest.raises(ConnectionError):
        ask(FailingModel(messages=iter([]), error="Invalid input format")).invoke(
            "bad", config={"callbacks": [handler]}
        )
    tracer.shutdown()
    (path,) = exporter.files()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        analyze_failed_requests(str(path))
    text = out.getvalue()
    assert "Found 4 failed requests." in text
    assert "- 'Rate limit exceeded': 3 times" in text
    assert "- 'Invalid input format': 1 times" in text
    assert "Average prompt length in failed requests: 21.75 characters." in text
