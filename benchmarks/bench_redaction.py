"""Redaction speed: per-packet cost and throughput of ``RedactionProcessor``.

Packets are built deterministically (seeded) in the shape the builder emits:
a RAG request with retrieval, a chat model call and a tool call. "Typical"
is about 2 KB of JSON; "large" about 200 KB (many retrieved documents and a
long answer). "clean" packets hold ordinary prose with numbers, dates,
versions, prices and ids; "pii" packets add some emails, phone numbers, card
numbers, IPs and a secret (about one entity per 400 bytes of text).

    python benchmarks/bench_redaction.py              # table
    python benchmarks/bench_redaction.py --json out.json
    python benchmarks/bench_redaction.py --quick      # fewer rounds

Each call is timed twice: CPU time of the running thread (``thread_time``,
what redaction itself costs, robust on a busy machine) and wall time. The
medians are reported; MB/s is the packet's JSON size divided by the median
CPU time.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from aitel.redaction import RedactionProcessor, Redactor

SEED = 7

PARAGRAPHS = (
    "Refunds are accepted within 30 days of delivery when the item is unused and in its "
    "original packaging. Orders shipped after 2024-03-01 follow the updated policy; earlier "
    "orders keep the 14-day window described in version 2.3 of the terms.",
    "To reset the device, hold the power button for 10 seconds until the status light blinks "
    "twice, then release it. If the light stays amber, the firmware (v4.1.7) needs an update "
    "from the settings page before the reset can finish.",
    "The premium plan costs $49.99 per month or $499 per year and includes priority support, "
    "five seats and 2 TB of storage. Teams larger than 25 people should ask sales about volume "
    "pricing, which starts at 12% off the list price.",
    "Shipping to the EU takes 3-5 business days from our Rotterdam warehouse. Customs duties "
    "are included for orders under EUR 150; above that, the carrier collects them on delivery "
    "and sends a receipt by post within two weeks.",
    "The error happens because the client retries the request without the idempotency header, "
    "so the second attempt creates a duplicate order. Sending the same request id on every "
    "retry lets the API return the first result instead.",
    "Quarterly revenue grew 18% to 4.2 million, driven by the enterprise tier, while churn fell "
    "below 2% for the first time. The board approved the 2025 roadmap on 12 November and "
    "asked for a hiring plan by the end of Q1.",
    "Use the batch endpoint for more than 100 items: it accepts up to 5,000 records per call, "
    "validates them in one pass and reports failures per line, so a single bad record no "
    "longer rejects the whole upload.",
    "According to the maintenance log, the compressor in unit 7 was replaced on 2023-11-08 "
    "after 14,200 operating hours. The next inspection is due at 16,000 hours or in six "
    "months, whichever comes first.",
)

PII = (
    "jane.doe@example.com",
    "+44 20 7946 0958",
    "(415) 555-2671",
    "4111 1111 1111 1111",
    "10.20.30.40",
    "DE89 3704 0044 0532 0130 00",
    "bob.smith@example.org",
    "123-45-6789",
)
SECRET = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb3dEf6h"


class Texts:
    def __init__(self, seed: int, pii: bool) -> None:
        self.rng = random.Random(seed)
        self.pii = pii

    def prose(self, size: int) -> str:
        parts: list[str] = []
        length = 0
        while length < size:
            paragraph = self.rng.choice(PARAGRAPHS)
            if self.pii and self.rng.random() < 0.8:
                words = paragraph.split(" ")
                words.insert(self.rng.randrange(len(words)), self.rng.choice(PII))
                paragraph = " ".join(words)
            parts.append(paragraph)
            length += len(paragraph) + 1
        return " ".join(parts)[:size]


def make_packet(size: str, pii: bool, seed: int = SEED) -> dict[str, Any]:
    """A packet of about 2 KB ("typical") or 200 KB ("large") of JSON."""
    texts = Texts(seed, pii)
    large = size == "large"
    documents = 40 if large else 2
    doc_chars = 4200 if large else 160
    answer_chars = 12000 if large else 150
    question = texts.prose(70)
    answer = texts.prose(answer_chars)
    if pii:
        answer += f" Use the key {SECRET} for the sandbox."
    step_ids = [f"0190a1b2-c3d4-7e5f-8a9b-{n:012d}" for n in range(1, 4)]
    return {
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
            "tags": ["rag", "support"],
            "metadata": {"tenant": "acme", "ticket": "T-1001"},
        },
        "payload": {"input": {"question": question}, "output": answer},
        "steps": [
            {
                "step_id": step_ids[0],
                "parent_id": None,
                "kind": "retriever",
                "name": "vector_search",
                "start_time": "2024-05-01T12:00:00.100000Z",
                "end_time": "2024-05-01T12:00:00.200000Z",
                "duration_ms": 100.0,
                "status": "SUCCESS",
                "input": question,
                "output": None,
                "metadata": {},
                "retrieval": {
                    "query": question,
                    "documents": [
                        {
                            "id": f"doc-{n}",
                            "score": round(0.9 - n / 100, 3),
                            "source": f"kb/articles/{n}.md",
                            "content": texts.prose(doc_chars),
                            "metadata": {"section": "policy", "updated": "2024-02-11"},
                        }
                        for n in range(documents)
                    ],
                },
            },
            {
                "step_id": step_ids[1],
                "parent_id": None,
                "kind": "chat_model",
                "name": "ChatOpenAI",
                "start_time": "2024-05-01T12:00:00.300000Z",
                "end_time": "2024-05-01T12:00:01.200000Z",
                "duration_ms": 900.0,
                "status": "SUCCESS",
                "input": None,
                "output": answer,
                "metadata": {"ls_provider": "openai"},
                "llm": {
                    "model_name": "gpt-4o",
                    "provider": "openai",
                    "messages": [
                        {"role": "system", "content": "Answer from the context only."},
                        {"role": "user", "content": question},
                    ],
                    "invocation_params": {"temperature": 0.2, "max_tokens": 512},
                    "usage": {"prompt_tokens": 812, "completion_tokens": 96, "total_tokens": 908},
                    "cost_usd": 0.0029,
                    "finish_reason": "stop",
                    "tool_calls": [
                        {"id": "call_1", "name": "lookup_order", "arguments": '{"order": "A-1"}'}
                    ],
                },
            },
            {
                "step_id": step_ids[2],
                "parent_id": step_ids[1],
                "kind": "tool",
                "name": "lookup_order",
                "start_time": "2024-05-01T12:00:01.000000Z",
                "end_time": "2024-05-01T12:00:01.100000Z",
                "duration_ms": 100.0,
                "status": "SUCCESS",
                "input": '{"order": "A-1"}',
                "output": "shipped on 2024-04-28",
                "metadata": {},
                "tool": {"name": "lookup_order", "tool_call_id": "call_1"},
            },
        ],
        "performance": {
            "latency_ms": 1250.0,
            "prompt_tokens": 812,
            "completion_tokens": 96,
            "total_tokens": 908,
            "cost_usd": 0.0029,
            "llm_calls": 1,
            "tool_calls": 1,
        },
        "model_internals": None,
        "producer": {"sdk": "aitel", "sdk_version": "0.1.0"},
        "processing": None,
    }


def time_each(run: Callable[[], object], rounds: int) -> tuple[list[float], list[float]]:
    """CPU and wall seconds per call, ``rounds`` times."""
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(rounds):
        start_cpu, start_wall = time.thread_time(), time.perf_counter()
        run()
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    return cpu, wall


def summary(cpu: list[float], wall: list[float], size: int, per_call: int = 1) -> dict[str, float]:
    cpu_median = statistics.median(cpu) / per_call
    return {
        "median_us": cpu_median * 1e6,
        "p95_us": sorted(cpu)[max(0, int(len(cpu) * 0.95) - 1)] / per_call * 1e6,
        "wall_median_us": statistics.median(wall) / per_call * 1e6,
        "mb_per_s": size / cpu_median / 1e6,
    }


def bench_packets(preset: str, size: str, pii: bool, rounds: int) -> dict[str, Any]:
    processor = RedactionProcessor(preset)
    template = make_packet(size, pii)
    raw = orjson.dumps(template)
    copies = [orjson.loads(raw) for _ in range(rounds + 5)]
    for packet in copies[:5]:  # warm up
        processor.process(packet)
    queue = iter(copies[5:])
    cpu, wall = time_each(lambda: processor.process(next(queue)), rounds)
    counts = processor.process(orjson.loads(raw))["processing"] or {}
    return {
        "preset": preset,
        "packet": size,
        "content": "pii" if pii else "clean",
        "bytes": len(raw),
        "rounds": rounds,
        **summary(cpu, wall, len(raw)),
        "redactions": sum((counts.get("redactions") or {}).values()),
    }


def bench_text(preset: str, rounds: int) -> list[dict[str, Any]]:
    """``redact_text`` on 1 MB of clean prose and on one short clean string."""
    redactor = Redactor(preset)
    prose = Texts(SEED, pii=False).prose(1_000_000)
    big_rounds = max(5, rounds // 20)
    big = time_each(lambda: redactor.redact_text(prose), big_rounds)
    short = "What is the refund window for orders shipped last week?"
    batch = 1000
    small = time_each(lambda: [redactor.redact_text(short) for _ in range(batch)], rounds)
    return [
        {
            "preset": preset,
            "packet": "text 1 MB",
            "content": "clean",
            "bytes": len(prose),
            "rounds": big_rounds,
            **summary(*big, len(prose)),
        },
        {
            "preset": preset,
            "packet": f"text {len(short)} B",
            "content": "clean",
            "bytes": len(short),
            "rounds": rounds * batch,
            **summary(*small, len(short), per_call=batch),
        },
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Redaction speed benchmark")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--presets", default="secrets,pii", help="comma-separated presets")
    args = parser.parse_args(argv)
    small_rounds, large_rounds = (200, 10) if args.quick else (2000, 60)
    results: list[dict[str, Any]] = []
    for preset in args.presets.split(","):
        for size, rounds in (("typical", small_rounds), ("large", large_rounds)):
            for pii in (False, True):
                results.append(bench_packets(preset, size, pii, rounds))
        results.extend(bench_text(preset, small_rounds // 10))
    header = (
        f"{'preset':9} {'input':12} {'content':8} {'bytes':>9} "
        f"{'cpu µs':>10} {'p95 µs':>10} {'wall µs':>10} {'MB/s':>7}"
    )
    print(header)
    print("-" * len(header))
    for row in results:
        print(
            f"{row['preset']:9} {row['packet']:12} {row['content']:8} {row['bytes']:>9,} "
            f"{row['median_us']:>10.1f} {row['p95_us']:>10.1f} {row['wall_median_us']:>10.1f} "
            f"{row['mb_per_s']:>7.1f}"
        )
    print("µs: median per call (CPU time of the thread; wall time alongside); MB/s from CPU time")
    if args.json:
        meta = {"python": sys.version.split()[0], "platform": platform.platform()}
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
