"""The context packet: one structured, versioned record per request.

These pydantic models define the packet and publish its JSON Schema
(``schemas/context-packet.v1.json``). The builder emits plain dicts that
conform to them (validating every packet on the hot path would cost more
than tracing itself); the test suite validates every packet it writes.

Conventions:

* timestamps are UTC ISO-8601 strings with microseconds and ``Z``;
* ids are UUID strings (time-ordered UUIDv7 for ids aitel makes);
* a number the framework did not report is ``null`` (unknown), never ``0``.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.0"
"""The version every packet carries. Minor versions only add optional fields."""

SCHEMA_VERSION_PATTERN = r"^1\.[0-9]+$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Status(str, Enum):
    """Outcome of a whole request."""

    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"


class StepStatus(str, Enum):
    """Outcome of one step. ``INCOMPLETE`` marks a step that never reported its end."""

    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    INCOMPLETE = "INCOMPLETE"


class StepKind(str, Enum):
    """What a step does."""

    CHAIN = "chain"
    LLM = "llm"
    CHAT_MODEL = "chat_model"
    RETRIEVER = "retriever"
    TOOL = "tool"
    AGENT = "agent"
    EMBEDDING = "embedding"
    RERANKER = "reranker"
    CUSTOM = "custom"


LLM_KINDS = frozenset({StepKind.LLM.value, StepKind.CHAT_MODEL.value})


class ErrorInfo(_Model):
    """An exception, where it happened, and how it surfaced."""

    type: str = Field(description="Exception class name, e.g. 'ValueError'.")
    message: str
    traceback: str | None = None
    step_id: str | None = Field(default=None, description="The step where the error arose.")
    step_name: str | None = None
    step_kind: StepKind | None = None


class TokenUsage(_Model):
    """Token counts as the provider reported them; ``null`` means not reported."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_prompt_tokens: int | None = Field(
        default=None, description="Prompt tokens read from cache."
    )
    cache_creation_tokens: int | None = None
    reasoning_tokens: int | None = None


class ToolCallRequest(_Model):
    """A tool call that a model asked for."""

    id: str | None = None
    name: str
    arguments: Any = None


class Message(_Model):
    """One chat message in a neutral shape."""

    role: str
    content: Any = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[ToolCallRequest] | None = None


class TopLogprob(_Model):
    token: str
    logprob: float | None = None


class TokenLogprob(_Model):
    token: str
    logprob: float | None = None
    bytes: list[int] | None = None
    top_logprobs: list[TopLogprob] | None = None


class LogprobSummary(_Model):
    tokens: int
    mean_logprob: float | None = None
    min_logprob: float | None = None
    perplexity: float | None = None


class LLMData(_Model):
    """What a model call saw and did; the generated text is the step's ``output``."""

    model_name: str | None = None
    provider: str | None = None
    prompts: list[str] | None = Field(default=None, description="Completion-style prompts.")
    messages: list[Message] | None = Field(default=None, description="The constructed chat prompt.")
    invocation_params: dict[str, Any] = Field(
        default_factory=dict, description="Model parameters, with credentials removed."
    )
    usage: TokenUsage | None = Field(
        default=None, description="null when the framework reported none."
    )
    cost_usd: float | None = Field(
        default=None, description="null when the model has no known price."
    )
    time_to_first_token_ms: float | None = None
    streamed: bool = False
    chunks: int | None = Field(default=None, description="Streamed chunks received.")
    finish_reason: str | None = None
    tool_calls: list[ToolCallRequest] = Field(default_factory=list)
    logprobs: LogprobSummary | None = None


class RetrievedDocument(_Model):
    id: str | None = None
    score: float | None = None
    source: str | None = None
    content: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class RetrievalData(_Model):
    """A retriever's (or reranker's) query and the documents it returned, in order."""

    query: str | None = None
    documents: list[RetrievedDocument] = Field(default_factory=list)


class ToolData(_Model):
    """A tool execution; arguments are the step's ``input``, the result its ``output``."""

    name: str
    tool_call_id: str | None = None
    requested_by_step_id: str | None = Field(
        default=None, description="The LLM step whose tool call this execution answers."
    )


class EmbeddingData(_Model):
    model_name: str | None = None
    input_count: int | None = None
    dimensions: int | None = None


class StepEvent(_Model):
    """Something that happened inside a step: a retry, an agent action, a custom event."""

    name: str
    time: datetime
    data: Any = None


class Step(_Model):
    step_id: str
    parent_id: str | None = None
    kind: StepKind
    name: str
    start_time: datetime
    end_time: datetime | None = None
    duration_ms: float | None = None
    status: StepStatus
    error: ErrorInfo | None = None
    input: Any = None
    output: Any = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    llm: LLMData | None = None
    retrieval: RetrievalData | None = None
    tool: ToolData | None = None
    embedding: EmbeddingData | None = None
    events: list[StepEvent] = Field(default_factory=list)


class PipelineMetadata(_Model):
    model_name: str | None = None
    model_version: str | None = None
    model_provider: str | None = None
    function_name: str | None = Field(
        default=None, description="The root chain, engine or function."
    )
    ab_variant: str | None = None
    preprocessing_version: str | None = None
    app_version: str | None = None
    environment: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Payload(_Model):
    input: Any = None
    output: Any = None


class Performance(_Model):
    latency_ms: float
    time_to_first_token_ms: float | None = Field(
        default=None, description="From request start to the first streamed token."
    )
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    token_usage_complete: bool = Field(
        default=True, description="False when some model call reported no usage."
    )
    cost_usd: float | None = None
    cost_complete: bool = Field(
        default=True, description="False when some model call has no price."
    )
    llm_calls: int = 0
    tool_calls: int = 0
    retries: int = 0


class StepLogprobs(_Model):
    step_id: str
    model_name: str | None = None
    tokens: list[TokenLogprob]


class ModelInternals(_Model):
    logprobs: list[StepLogprobs] = Field(default_factory=list)


class Producer(_Model):
    """What produced the packet."""

    sdk: Literal["aitel"] = "aitel"
    sdk_version: str
    integration: str | None = None
    integration_version: str | None = None


class ProcessingNotes(_Model):
    """What processors did to the packet (never the values they removed)."""

    redactions: dict[str, int] = Field(default_factory=dict)
    truncated_values: int = 0
    sample_rate: float | None = None


class ContextPacket(_Model):
    """One request, end to end."""

    schema_version: str = Field(default=SCHEMA_VERSION, pattern=SCHEMA_VERSION_PATTERN)
    packet_id: str = Field(description="Unique per packet; receivers deduplicate on it.")
    request_id: str
    trace_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="W3C/OpenTelemetry trace id.")
    timestamp: datetime = Field(description="Request start, UTC.")
    end_time: datetime
    status: Status
    error_message: str | None = None
    error: ErrorInfo | None = None
    pipeline_metadata: PipelineMetadata = Field(default_factory=PipelineMetadata)
    payload: Payload = Field(default_factory=Payload)
    steps: list[Step] = Field(default_factory=list)
    performance: Performance
    model_internals: ModelInternals | None = None
    producer: Producer
    processing: ProcessingNotes | None = None


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of a context packet."""
    schema = ContextPacket.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://aitel.dev/schemas/context-packet.v1.json"
    return schema
