"""Quickstart: one LangChain chain, one line of aitel, one packet per request.

Run: python cookbook/quickstart.py   (offline; packets go to ./aitel-telemetry or $AITEL_DIR)
"""

from langchain_aitel import AITelHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

import aitel

model = GenericFakeChatModel(
    messages=iter(
        [
            AIMessage(
                "Paris.",
                usage_metadata={"input_tokens": 14, "output_tokens": 2, "total_tokens": 16},
                response_metadata={"model_name": "gpt-4o-mini-2024-07-18", "finish_reason": "stop"},
            )
        ]
    )
)
chain = ChatPromptTemplate.from_messages([("human", "{question}")]) | model | StrOutputParser()

answer = chain.invoke(
    {"question": "What is the capital of France?"},
    config={"callbacks": [AITelHandler(ab_variant="A")], "metadata": {"user_id": "u-1"}},
)
aitel.flush()  # a script ends right away: deliver before exiting

tracer = aitel.get_tracer()
print(f"answer: {answer}")
print(f"packets written: {tracer.stats().exported} -> {tracer.exporter.path}")
