"""Synthetic packet sets for demos, tests and benchmarks.

The generator models a retrieval-augmented support assistant built with
LangChain: a root chain, a retriever, a context check, a prompt template, a
chat model, sometimes a tool call and a second model call. Every packet
conforms to :class:`aitel.schema.ContextPacket`.

Background failures (rate limits, connection resets, parser errors) hit any
step with the same probability for every request, so on their own they are
independent of every attribute. With ``causes=True`` three faults are planted
on top, each tied to attributes the analysis can find:

``variant_b_long_prompt``
    A/B variant ``B`` uses a longer system prompt; its requests whose prompt
    exceeds :data:`LONG_PROMPT_CHARS` characters fail about five times as often
    as variant ``A`` on prompts as long (context length exceeded).
``empty_legacy_retrieval``
    The ``LegacySearchRetriever`` (source ``legacy-wiki``) often returns no
    documents, and the context check then fails the request.
``web_search_timeout``
    The ``web_search`` tool times out on a large share of its calls.

Output is deterministic for a given seed, count and options.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

from aitel.schema import SCHEMA_VERSION

__all__ = [
    "LONG_PROMPT_CHARS",
    "PLANTED_CAUSES",
    "SyntheticOptions",
    "generate_packets",
    "write_dataset",
]

LONG_PROMPT_CHARS = 4000
"""Prompts longer than this (in characters) trip variant B's planted failure."""

PLANTED_CAUSES: dict[str, str] = {
    "variant_b_long_prompt": "variant B times out ~5x more than A on prompts over 4,000 characters",
    "empty_legacy_retrieval": "LegacySearchRetriever (legacy-wiki) returns no documents",
    "web_search_timeout": "the web_search tool times out",
}

_DEFAULT_START = datetime(2025, 3, 3, tzinfo=timezone.utc)

_MODELS: list[tuple[str, str, str, float, float, float]] = [
    # step name, provider, model, weight, $ per 1k prompt tokens, $ per 1k completion tokens
    ("ChatOpenAI", "openai", "gpt-4o-mini", 0.55, 0.00015, 0.0006),
    ("ChatOpenAI", "openai", "gpt-4o", 0.25, 0.0025, 0.01),
    ("ChatAnthropic", "anthropic", "claude-3-5-haiku", 0.20, 0.0008, 0.004),
]
_MODEL_WEIGHTS = [m[3] for m in _MODELS]

_SYSTEM_PROMPT_A = (
    "You are Acme's support assistant. Answer the customer's question using only the "
    "context below. If the context does not contain the answer, say so and suggest "
    "contacting support. Keep answers short, friendly and accurate. Cite document ids "
    "in square brackets. Never reveal internal notes, credentials or pricing that is not "
    "public. Use the customer's language."
)
_SYSTEM_PROMPT_B = (
    _SYSTEM_PROMPT_A
    + " Follow this procedure step by step: first restate the question in one sentence; "
    "then list every relevant fact from the context with its document id; then reason "
    "about which facts apply to the customer's plan and region; then write the answer; "
    "finally add a section 'Next steps' with at most three actionable items. If the "
    "question concerns billing, include the relevant invoice policy. If it concerns an "
    "outage, include the status page link and the incident number when present. If it "
    "concerns data export, mention retention windows and the export size limits. Prefer "
    "bullet points over paragraphs when listing more than two items. Do not speculate. "
    "Do not promise refunds or credits; refer those to a human agent. Always end with a "
    "one-line summary."
)

_TOPICS = [
    ("billing", "How do I change the billing email on my {plan} account?"),
    ("billing", "Why was I charged twice for invoice {n}?"),
    ("export", "Can I export all conversations from workspace {n} to CSV?"),
    ("export", "What is the maximum export size on the {plan} plan?"),
    ("sso", "How do I enable SAML single sign-on for {n} users?"),
    ("sso", "Our Okta integration stopped working after rotating the certificate."),
    ("outage", "Is there an ongoing incident affecting the EU region?"),
    ("api", "Which rate limits apply to the REST API on the {plan} plan?"),
    ("api", "How do I paginate results from /v2/tickets beyond {n} items?"),
    ("webhooks", "Webhook deliveries to our endpoint fail with 502, what should I check?"),
]
_PLANS = ["free", "pro", "business", "enterprise"]
_TIERS = [("free", 0.45), ("pro", 0.35), ("enterprise", 0.20)]
_LOCALES = ["en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "ja-JP"]
_CHANNELS = ["web", "slack", "email"]
_VECTOR_SOURCES = ["help-center", "api-docs", "community"]
_WORD_TEXT = (
    "account workspace billing invoice plan export limit region token endpoint webhook retry "
    "user admin role permission certificate integration status incident policy retention "
    "archive search index request response error timeout configure enable disable update "
    "rotate payment customer support ticket team settings dashboard report schedule quota "
    "usage storage backup restore audit log security domain"
)
_WORDS = _WORD_TEXT.split()

_TOOLS = [
    ("web_search", 0.45),
    ("crm_lookup", 0.35),
    ("calculator", 0.20),
]

_SDK_VERSION = "0.1.0"


@dataclass(frozen=True, slots=True)
class SyntheticOptions:
    """How a packet set is generated.

    ``failure_rate`` is the probability of a background failure, the same for
    every request. ``span`` is the time range the request timestamps cover.
    """

    causes: bool = True
    failure_rate: float = 0.02
    start: datetime = _DEFAULT_START
    span: timedelta = timedelta(days=7)


class _Ids:
    """Deterministic UUID-shaped ids from the generator's random source."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def uuid7(self, epoch_ms: int) -> str:
        rand = self._rng.getrandbits(74)
        value = (epoch_ms & ((1 << 48) - 1)) << 80
        value |= 0x7 << 76
        value |= (rand >> 62) << 64
        value |= 0b10 << 62
        value |= rand & ((1 << 62) - 1)
        h = f"{value:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def hex(self, digits: int) -> str:
        return f"{self._rng.getrandbits(digits * 4):0{digits}x}"


_ISO_CACHE: dict[int, str] = {}


def _iso(epoch_us: int) -> str:
    seconds, micros = divmod(epoch_us, 1_000_000)
    prefix = _ISO_CACHE.get(seconds)
    if prefix is None:
        if len(_ISO_CACHE) > 4096:
            _ISO_CACHE.clear()
        prefix = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _ISO_CACHE[seconds] = prefix
    return f"{prefix}.{micros:06d}Z"


class _Clock:
    """Step timing inside one request, in microseconds since the epoch."""

    def __init__(self, start_us: int) -> None:
        self.now = start_us

    def advance_ms(self, ms: float) -> int:
        self.now += max(1, round(ms * 1000))
        return self.now


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


def _paragraph(rng: random.Random, chars: int) -> str:
    parts: list[str] = []
    size = 0
    while size < chars:
        s = _sentence(rng, rng.randint(6, 16))
        parts.append(s)
        size += len(s) + 1
    return " ".join(parts)[:chars]


class _Generator:
    def __init__(self, seed: int, options: SyntheticOptions) -> None:
        self.rng = random.Random(seed)
        self.ids = _Ids(self.rng)
        self.opt = options
        # A pool of document bodies keeps generation fast and the sizes realistic.
        self.doc_pool = [
            _paragraph(
                self.rng, self.rng.randint(700, 1200) if i % 10 == 0 else self.rng.randint(120, 450)
            )
            for i in range(400)
        ]
        self.sentences = [_sentence(self.rng, self.rng.randint(6, 16)) for _ in range(1000)]
        self.users = [f"user-{self.ids.hex(8)}" for _ in range(5000)]

    def text(self, chars: int) -> str:
        parts: list[str] = []
        size = 0
        choice = self.rng.choice
        sentences = self.sentences
        while size < chars:
            s = choice(sentences)
            parts.append(s)
            size += len(s) + 1
        return " ".join(parts)[:chars]

    # ------------------------------------------------------------------ steps
    def _step(
        self,
        kind: str,
        name: str,
        parent: str | None,
        start_us: int,
        end_us: int,
        *,
        status: str = "SUCCESS",
        error: dict[str, Any] | None = None,
        inp: Any = None,
        out: Any = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "step_id": self.ids.uuid7(start_us // 1000),
            "parent_id": parent,
            "kind": kind,
            "name": name,
            "start_time": _iso(start_us),
            "end_time": _iso(end_us),
            "duration_ms": round((end_us - start_us) / 1000, 3),
            "status": status,
            "error": error,
            "input": inp,
            "output": out,
            "tags": [],
            "metadata": metadata or {},
            "llm": None,
            "retrieval": None,
            "tool": None,
            "embedding": None,
            "events": [],
        }

    @staticmethod
    def _error(
        etype: str, message: str, step: dict[str, Any], traceback: bool = True
    ) -> dict[str, Any]:
        tb = None
        if traceback:
            tb = (
                "Traceback (most recent call last):\n"
                '  File "langchain_core/runnables/base.py", line 3024, in invoke\n'
                "    input = context.run(step.invoke, input, config)\n"
                f"{etype}: {message}"
            )
        return {
            "type": etype,
            "message": message,
            "traceback": tb,
            "step_id": step["step_id"],
            "step_name": step["name"],
            "step_kind": step["kind"],
        }

    def _background_error(self, kind: str, model: str = "") -> tuple[str, str, float]:
        """A realistic background error for a step kind: type, message, extra delay (ms)."""
        rng = self.rng
        if kind == "retriever":
            return rng.choice(
                [
                    (
                        "OperationalError",
                        f"could not connect to server: Connection refused (10.0.{rng.randint(0, 9)}"
                        f".{rng.randint(2, 250)}:5432)",
                        rng.uniform(5, 50),
                    ),
                    (
                        "ReadTimeout",
                        f"HTTPSConnectionPool(host='vectors.internal', port=443): Read timed out. "
                        f"(read timeout={rng.choice([5, 10])})",
                        rng.uniform(5000, 10000),
                    ),
                ]
            )
        if kind == "tool":
            return (
                "ToolException",
                f"upstream returned HTTP {rng.choice([500, 502, 503])} for request "
                f"{self.ids.hex(12)}",
                rng.uniform(50, 400),
            )
        if kind == "check":
            return (
                "ValidationError",
                f"1 validation error for RetrievedContext: documents.{rng.randint(0, 6)}.metadata "
                "field required",
                rng.uniform(0.1, 1),
            )
        if kind == "chain":
            return (
                "OutputParserException",
                f"Could not parse LLM output: `{_sentence(rng, 4)}` "
                f"at position {rng.randint(1, 900)}",
                rng.uniform(1, 5),
            )
        return rng.choice(
            [
                (
                    "RateLimitError",
                    f"Error code: 429 - Rate limit reached for {model} in organization "
                    f"org-{self.ids.hex(12)} on tokens per min (TPM): Limit 200000, Used "
                    f"{rng.randint(190000, 199999)}, Requested {rng.randint(1000, 9000)}. "
                    f"Please try again in {rng.randint(100, 999)}ms.",
                    rng.uniform(100, 400),
                ),
                (
                    "APIConnectionError",
                    "Connection error.",
                    rng.uniform(1000, 3000),
                ),
                (
                    "InternalServerError",
                    f"Error code: 500 - The server had an error processing request "
                    f"req_{self.ids.hex(24)}",
                    rng.uniform(500, 2000),
                ),
            ]
        )

    # ----------------------------------------------------------------- packet
    def packet(self, index: int, start_us: int) -> dict[str, Any]:
        rng = self.rng
        opt = self.opt
        causes = opt.causes
        clock = _Clock(start_us)

        variant = "B" if rng.random() < 0.5 else "A"
        name, provider, model, _, p_in, p_out = rng.choices(_MODELS, weights=_MODEL_WEIGHTS)[0]
        app_version = rng.choices(["2.3.1", "2.4.0", "2.4.1"], weights=[0.2, 0.5, 0.3])[0]
        prep = rng.choices(["chunk-v3", "chunk-v4"], weights=[0.4, 0.6])[0]
        env = "production" if rng.random() < 0.9 else "staging"
        tier = rng.choices([t[0] for t in _TIERS], weights=[t[1] for t in _TIERS])[0]
        user = rng.choice(self.users)
        topic, template = rng.choice(_TOPICS)
        question = template.format(plan=rng.choice(_PLANS), n=rng.randint(2, 99999))
        legacy = rng.random() < 0.12
        tool_wanted = rng.random() < 0.25
        tool_name = rng.choices([t[0] for t in _TOOLS], weights=[t[1] for t in _TOOLS])[0]

        # Background failure: decided per request, then placed on one step that runs.
        background = rng.random() < opt.failure_rate
        plan = ["retriever", "check", "llm"] + (["tool", "llm2"] if tool_wanted else []) + ["parse"]
        fail_at = rng.choice(plan) if background else None

        root_id = self.ids.uuid7(start_us // 1000)
        steps: list[dict[str, Any]] = []
        failure: tuple[dict[str, Any], dict[str, Any]] | None = None  # (step, error)
        retries = 0
        ttft_request: float | None = None
        prompt_tokens_total = 0
        completion_tokens_total = 0
        cost_total = 0.0
        llm_calls = 0
        tool_calls = 0
        answer: str | None = None

        clock.advance_ms(rng.uniform(0.2, 2))

        # Retriever -------------------------------------------------------------
        r_start = clock.now
        if legacy:
            r_name = "LegacySearchRetriever"
            r_meta: dict[str, Any] = {"ls_retriever_name": "legacy_search", "source": "legacy-wiki"}
            r_ms = rng.uniform(150, 700)
            empty = rng.random() < (0.5 if causes else 0.02)
            n_docs = 0 if empty else rng.randint(2, 4)
        else:
            r_name = "VectorStoreRetriever"
            r_meta = {
                "ls_retriever_name": "vectorstore",
                "ls_vector_store_provider": "PGVector",
                "ls_embedding_provider": "OpenAIEmbeddings",
            }
            r_ms = rng.uniform(25, 180)
            n_docs = 0 if rng.random() < 0.02 else (8 if rng.random() < 0.3 else 3)
        docs: list[dict[str, Any]] = []
        for rank in range(n_docs):
            src = "legacy-wiki" if legacy else rng.choice(_VECTOR_SOURCES)
            body = rng.choice(self.doc_pool)
            docs.append(
                {
                    "id": f"{src}:{rng.randint(1000, 99999)}#{rng.randint(0, 40)}",
                    "score": round(max(0.05, 0.92 - rank * 0.06 - rng.uniform(0, 0.25)), 4),
                    "source": src,
                    "content": body[:160],
                    "metadata": {"chunk": rng.randint(0, 40), "section": topic},
                }
            )
        if fail_at == "retriever":
            etype, msg, extra = self._background_error("retriever")
            r_end = clock.advance_ms(r_ms + extra)
            r = self._step(
                "retriever",
                r_name,
                root_id,
                r_start,
                r_end,
                status="FAILURE",
                inp=question,
                metadata=r_meta,
            )
            r["retrieval"] = {"query": question, "documents": []}
            r["error"] = self._error(etype, msg, r)
            failure = (r, r["error"])
            steps.append(r)
        else:
            r_end = clock.advance_ms(r_ms)
            r = self._step(
                "retriever",
                r_name,
                root_id,
                r_start,
                r_end,
                inp=question,
                out=[d["id"] for d in docs],
                metadata=r_meta,
            )
            r["retrieval"] = {"query": question, "documents": docs}
            steps.append(r)

        # Context check ------------------------------------------------------------
        if failure is None:
            c_start = clock.now
            c_end = clock.advance_ms(rng.uniform(0.05, 0.5))
            c = self._step(
                "chain", "check_context", root_id, c_start, c_end, inp={"documents": len(docs)}
            )
            if causes and not docs and rng.random() < 0.85:
                c["status"] = "FAILURE"
                c["error"] = self._error(
                    "NoContextError",
                    f"retriever returned no documents for query '{question[:60]}'",
                    c,
                )
                failure = (c, c["error"])
            elif fail_at == "check":
                etype, msg, extra = self._background_error("check")
                c["status"] = "FAILURE"
                c["error"] = self._error(etype, msg, c)
                failure = (c, c["error"])
            else:
                c["output"] = {"documents": len(docs)}
            steps.append(c)

        # Prompt + first model call --------------------------------------------------
        system = _SYSTEM_PROMPT_B if variant == "B" else _SYSTEM_PROMPT_A
        context = "\n\n".join(f"[{d['id']}] {rng.choice(self.doc_pool)}" for d in docs)
        user_msg = f"Context:\n{context}\n\nQuestion: {question}"
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system},
            {"role": "user", "content": user_msg},
        ]
        llm_step: dict[str, Any] | None = None
        if failure is None:
            p_start = clock.now
            p_end = clock.advance_ms(rng.uniform(0.1, 1.0))
            steps.append(
                self._step(
                    "chain",
                    "ChatPromptTemplate",
                    root_id,
                    p_start,
                    p_end,
                    inp={"question": question},
                    out={"messages": 2},
                )
            )

            llm_step, failure, retry, stats = self._llm_call(
                clock,
                root_id,
                name,
                provider,
                model,
                p_in,
                p_out,
                messages,
                variant,
                fail=fail_at == "llm",
                first_call=True,
                want_tool=tool_wanted,
                tool_name=tool_name,
            )
            steps.append(llm_step)
            retries += retry
            llm_calls += 1
            ttft_request = (
                None if stats["ttft_abs_us"] is None else (stats["ttft_abs_us"] - start_us) / 1000
            )
            prompt_tokens_total += stats["prompt_tokens"]
            completion_tokens_total += stats["completion_tokens"]
            cost_total += stats["cost"]
            answer = stats["text"]

        # Tool call and second model call ------------------------------------------
        if failure is None and tool_wanted and llm_step is not None:
            call = llm_step["llm"]["tool_calls"][0]
            t_start = clock.now
            tool_calls += 1
            args = call["arguments"]
            t = self._step("tool", tool_name, root_id, t_start, t_start, inp=args)
            t["tool"] = {
                "name": tool_name,
                "tool_call_id": call["id"],
                "requested_by_step_id": llm_step["step_id"],
            }
            timeout = tool_name == "web_search" and causes and rng.random() < 0.3
            if timeout:
                # Two retries, then give up.
                for attempt in (1, 2):
                    t["events"].append(
                        {
                            "name": "retry",
                            "time": _iso(clock.advance_ms(30000)),
                            "data": {"attempt": attempt, "reason": "timeout"},
                        }
                    )
                retries += 2
                clock.advance_ms(30000)
                t["status"] = "FAILURE"
                t["error"] = self._error(
                    "TimeoutError", "web_search timed out after 30.0s (attempt 3 of 3)", t
                )
                failure = (t, t["error"])
            elif fail_at == "tool":
                etype, msg, extra = self._background_error("tool")
                clock.advance_ms(extra)
                t["status"] = "FAILURE"
                t["error"] = self._error(etype, msg, t)
                failure = (t, t["error"])
            else:
                clock.advance_ms(
                    rng.uniform(400, 2500) if tool_name == "web_search" else rng.uniform(20, 300)
                )
                t["output"] = self.text(rng.randint(120, 400))
            t["end_time"] = _iso(clock.now)
            t["duration_ms"] = round((clock.now - t_start) / 1000, 3)
            steps.append(t)

            if failure is None:
                messages2 = [
                    *messages,
                    {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [{"id": call["id"], "name": tool_name, "arguments": args}],
                    },
                    {"role": "tool", "content": t["output"], "tool_call_id": call["id"]},
                ]
                llm2, failure, retry, stats = self._llm_call(
                    clock,
                    root_id,
                    name,
                    provider,
                    model,
                    p_in,
                    p_out,
                    messages2,
                    variant,
                    fail=fail_at == "llm2",
                    first_call=False,
                    want_tool=False,
                    tool_name=tool_name,
                )
                steps.append(llm2)
                retries += retry
                llm_calls += 1
                prompt_tokens_total += stats["prompt_tokens"]
                completion_tokens_total += stats["completion_tokens"]
                cost_total += stats["cost"]
                answer = stats["text"]

        # Output parser -------------------------------------------------------------
        if failure is None:
            o_start = clock.now
            o_end = clock.advance_ms(rng.uniform(0.05, 0.4))
            cited = [d["id"] for d in docs[:2]]
            o = self._step(
                "chain",
                "CitationParser",
                root_id,
                o_start,
                o_end,
                inp={"answer_chars": len(answer or "")},
                out={"citations": cited},
            )
            if fail_at == "parse":
                etype, msg, extra = self._background_error("chain")
                o["status"] = "FAILURE"
                o["output"] = None
                o["error"] = self._error(etype, msg, o)
                failure = (o, o["error"])
            steps.append(o)

        end_us = clock.advance_ms(rng.uniform(0.1, 1.0))
        status = "FAILURE" if failure else "SUCCESS"
        root = self._step(
            "chain",
            "RunnableSequence",
            None,
            start_us,
            end_us,
            status=status,
            inp={"question": question},
            out=None if failure else {"answer": answer},
            metadata={"topic": topic},
        )
        root["step_id"] = root_id
        if failure:
            root["error"] = dict(failure[1])
        steps.insert(0, root)

        error = failure[1] if failure else None
        latency = round((end_us - start_us) / 1000, 3)
        packet: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "packet_id": self.ids.uuid7(start_us // 1000),
            "request_id": self.ids.uuid7(start_us // 1000),
            "trace_id": self.ids.hex(32),
            "timestamp": _iso(start_us),
            "end_time": _iso(end_us),
            "status": status,
            "error_message": f"{error['type']}: {error['message']}" if error else None,
            "error": error,
            "pipeline_metadata": {
                "model_name": model,
                "model_version": None,
                "model_provider": provider,
                "function_name": "support_answer",
                "ab_variant": variant,
                "preprocessing_version": prep,
                "app_version": app_version,
                "environment": env,
                "session_id": f"sess-{self.ids.hex(10)}",
                "user_id": user,
                "tags": ["support", topic],
                "metadata": {
                    "user_tier": tier,
                    "locale": rng.choice(_LOCALES),
                    "channel": rng.choice(_CHANNELS),
                },
            },
            "payload": {
                "input": {"question": question},
                "output": None if failure else {"answer": answer},
            },
            "steps": steps,
            "performance": {
                "latency_ms": latency,
                "time_to_first_token_ms": round(ttft_request, 3) if ttft_request else None,
                "prompt_tokens": prompt_tokens_total if llm_calls else None,
                "completion_tokens": completion_tokens_total if llm_calls else None,
                "total_tokens": (prompt_tokens_total + completion_tokens_total)
                if llm_calls
                else None,
                "token_usage_complete": not (failure and failure[0]["kind"] == "chat_model"),
                "cost_usd": round(cost_total, 6) if llm_calls else None,
                "cost_complete": True,
                "llm_calls": llm_calls,
                "tool_calls": tool_calls,
                "retries": retries,
            },
            "model_internals": None,
            "producer": {
                "sdk": "aitel",
                "sdk_version": _SDK_VERSION,
                "integration": "langchain",
                "integration_version": "0.3.25",
            },
            "processing": {"redactions": {}, "truncated_values": 0, "sample_rate": None},
        }
        return packet

    def _llm_call(
        self,
        clock: _Clock,
        parent: str,
        name: str,
        provider: str,
        model: str,
        p_in: float,
        p_out: float,
        messages: list[dict[str, Any]],
        variant: str,
        *,
        fail: bool,
        first_call: bool,
        want_tool: bool,
        tool_name: str,
    ) -> tuple[dict[str, Any], tuple[dict[str, Any], dict[str, Any]] | None, int, dict[str, Any]]:
        rng = self.rng
        start = clock.now
        prompt_chars = sum(len(m["content"] or "") for m in messages)
        prompt_tokens = prompt_chars // 4 + 7 * len(messages)
        step = self._step(
            "chat_model",
            name,
            parent,
            start,
            start,
            metadata={"ls_provider": provider, "ls_model_name": model, "ls_model_type": "chat"},
        )
        step["input"] = None  # the prompt lives in llm.messages
        llm: dict[str, Any] = {
            "model_name": model,
            "provider": provider,
            "prompts": None,
            "messages": messages,
            "invocation_params": {"temperature": 0.2, "max_tokens": 1024, "stream": True},
            "usage": None,
            "cost_usd": None,
            "time_to_first_token_ms": None,
            "streamed": True,
            "chunks": None,
            "finish_reason": None,
            "tool_calls": [],
            "logprobs": None,
        }
        step["llm"] = llm
        stats: dict[str, Any] = {
            "ttft_abs_us": None,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost": 0.0,
            "text": None,
        }
        retry = 0
        if rng.random() < 0.03:
            # A rate limit that a retry absorbed.
            retry = 1
            step["events"].append(
                {
                    "name": "retry",
                    "time": _iso(clock.advance_ms(rng.uniform(300, 1200))),
                    "data": {"attempt": 1, "reason": "RateLimitError"},
                }
            )

        too_slow = (
            self.opt.causes
            and first_call
            and variant == "B"
            and prompt_chars > LONG_PROMPT_CHARS
            and rng.random() < 0.2
        )
        if too_slow or fail:
            if too_slow:
                # Variant B's step-by-step procedure on a long context runs past the timeout.
                etype = "APITimeoutError"
                msg = f"Request timed out after {rng.choice([20, 30])}s."
                extra = rng.uniform(20000, 30000)
            else:
                etype, msg, extra = self._background_error("chat_model", model)
            clock.advance_ms(extra)
            step["status"] = "FAILURE"
            step["error"] = self._error(etype, msg, step)
            step["end_time"] = _iso(clock.now)
            step["duration_ms"] = round((clock.now - start) / 1000, 3)
            return step, (step, step["error"]), retry, stats

        ttft = rng.lognormvariate(-0.9, 0.45) * 1000 * (1.4 if model == "gpt-4o" else 1.0)
        completion_tokens = rng.randint(30, 80) if want_tool else rng.randint(40, 260)
        per_token_ms = {"gpt-4o-mini": 9.0, "gpt-4o": 16.0}.get(model, 12.0)
        ttft_abs = clock.advance_ms(ttft)
        chunks = completion_tokens
        clock.advance_ms(completion_tokens * per_token_ms * rng.uniform(0.8, 1.25))
        text = self.text(completion_tokens * 4)
        cost = prompt_tokens / 1000 * p_in + completion_tokens / 1000 * p_out
        llm["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "cached_prompt_tokens": 0 if provider == "openai" else None,
            "cache_creation_tokens": None,
            "reasoning_tokens": None,
        }
        llm["cost_usd"] = round(cost, 7)
        llm["time_to_first_token_ms"] = round(ttft, 3)
        llm["chunks"] = chunks
        if want_tool:
            call_id = f"call_{self.ids.hex(24)}"
            args: dict[str, Any]
            if tool_name == "web_search":
                args = {"query": rng.choice(_TOPICS)[1][:40], "max_results": 5}
            elif tool_name == "crm_lookup":
                args = {"account_id": f"acct_{self.ids.hex(10)}", "fields": ["plan", "region"]}
            else:
                args = {"expression": f"{rng.randint(2, 999)} * {rng.randint(2, 99)}"}
            llm["tool_calls"] = [{"id": call_id, "name": tool_name, "arguments": args}]
            llm["finish_reason"] = "tool_calls"
            step["output"] = ""
        else:
            llm["finish_reason"] = "stop"
            step["output"] = text
        step["end_time"] = _iso(clock.now)
        step["duration_ms"] = round((clock.now - start) / 1000, 3)
        stats.update(
            ttft_abs_us=ttft_abs,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=cost,
            text=text,
        )
        return step, None, retry, stats


def generate_packets(
    count: int,
    *,
    seed: int = 0,
    options: SyntheticOptions | None = None,
    first_index: int = 0,
    total: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield ``count`` packets as plain dicts.

    Timestamps spread evenly over ``options.span``; ``first_index`` and
    ``total`` place this batch inside a larger set (for parallel generation).
    """
    opt = options or SyntheticOptions()
    total = total if total is not None else first_index + count
    gen = _Generator(seed * 1_000_003 + first_index, opt)
    start_us = int(opt.start.timestamp() * 1_000_000)
    span_us = int(opt.span.total_seconds() * 1_000_000)
    step_us = span_us / max(total, 1)
    for i in range(first_index, first_index + count):
        jitter = gen.rng.uniform(0, step_us)
        yield gen.packet(i, int(start_us + i * step_us + jitter))


def _write_file(
    path: str, count: int, seed: int, options: SyntheticOptions, first: int, total: int
) -> str:
    target = Path(path)
    dumps = orjson.dumps
    opener: Any = gzip.open if target.name.endswith(".gz") else open
    with opener(target, "wb") as fh:
        buf: list[bytes] = []
        for packet in generate_packets(
            count, seed=seed, options=options, first_index=first, total=total
        ):
            buf.append(dumps(packet))
            if len(buf) >= 2000:
                fh.write(b"\n".join(buf) + b"\n")
                buf.clear()
        if buf:
            fh.write(b"\n".join(buf) + b"\n")
    return str(target)


def write_dataset(
    out_dir: str | Path,
    count: int,
    *,
    seed: int = 0,
    options: SyntheticOptions | None = None,
    per_file: int = 100_000,
    compress: bool = False,
    workers: int = 1,
) -> list[Path]:
    """Write ``count`` packets as JSONL files (``per_file`` lines each) into ``out_dir``.

    Files are named like rotated telemetry files: ``packets-00000.jsonl`` (with
    ``.gz`` when ``compress``). ``workers`` > 1 generates files in parallel
    processes; the content is the same for any number of workers.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    opt = options or SyntheticOptions()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    per_file = max(1, per_file)
    jobs: list[tuple[str, int, int, SyntheticOptions, int, int]] = []
    first = 0
    index = 0
    suffix = ".jsonl.gz" if compress else ".jsonl"
    while first < count or (count == 0 and index == 0):
        n = min(per_file, count - first)
        jobs.append((str(out / f"packets-{index:05d}{suffix}"), n, seed, opt, first, count))
        first += n
        index += 1
        if count == 0:
            break
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            paths = list(pool.map(_write_file, *zip(*jobs, strict=True)))
    else:
        paths = [_write_file(*job) for job in jobs]
    return [Path(p) for p in paths]
