"""Redaction presets: what each one keeps and hides, on text and on a whole packet.

Run: python cookbook/redaction_presets.py   (offline; packets go to ./aitel-telemetry or $AITEL_DIR)

The same support request - a customer's email and phone number in the
question, an API key pasted by mistake, a card number in a retrieved
document - is traced once per preset. In production pick one with
``AITEL_REDACTION=pii`` (presets combine: ``AITEL_REDACTION=pii,hide_outputs``)
or ``aitel.configure(redaction=("pii",))``.
"""

import orjson

import aitel
from aitel.redaction import PRESETS, Redactor

QUESTION = (
    "I'm bob@example.com (+1 415 555 0100). My key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t "
    "stopped working - can I get a refund?"
)
DOCUMENT = "Refund for card 4111 1111 1111 1111 approved on 2024-05-02; window is 30 days."
ANSWER = "Refunds take 30 days. Please rotate the key you shared."

print(f"presets: {', '.join(PRESETS)}")
print("\n== text, by preset")
for name in ("secrets", "pii"):
    print(f"{name:<8} {Redactor(name).redact_text(QUESTION)}")


def support_request() -> None:
    """A RAG request with the sensitive values in its input, a document and a prompt."""
    with aitel.trace("support", input={"question": QUESTION}, user_id="bob") as request:
        with request.step("search", kind="retriever", input=QUESTION) as search:
            search.set_retrieval(
                query=QUESTION,
                documents=[
                    {"id": "kb-7", "score": 0.91, "source": "refunds.md", "content": DOCUMENT}
                ],
            )
        with request.step("answer", kind="llm") as llm:
            llm.set_llm(
                model_name="gpt-4o-mini",
                messages=[
                    {"role": "system", "content": f"Context: {DOCUMENT}"},
                    {"role": "user", "content": QUESTION},
                ],
                prompt_tokens=96,
                completion_tokens=14,
            )
            llm.set_output(ANSWER)
        request.set_output(ANSWER)


print("\n== one packet per preset")
for presets in (["secrets"], ["pii"], ["hide_inputs"], ["pii", "hide_outputs"], ["strict"]):
    tracer = aitel.configure(redaction=tuple(presets))
    support_request()
    tracer.flush()
    line = tracer.exporter.path.read_bytes().splitlines()[-1]
    packet = orjson.loads(line)
    steps = {s["name"]: s for s in packet["steps"]}
    document = steps["search"]["retrieval"]["documents"][0]["content"]
    print(f"\n[{'+'.join(presets)}]")
    print(f"  input    {packet['payload']['input']}")
    print(f"  document {document}")
    print(f"  output   {packet['payload']['output']}")
    print(f"  kept     model={steps['answer']['llm']['model_name']} tokens=", end="")
    print(f"{packet['performance']['total_tokens']} status={packet['status']}")
    print(f"  counts   {packet['processing']['redactions']}")

aitel.shutdown()
