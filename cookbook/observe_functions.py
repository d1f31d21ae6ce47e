"""@observe and trace() for code outside the frameworks (the classic decorator, done right).

Run: python cookbook/observe_functions.py
"""

import aitel


@aitel.observe(model_name="example-text-generator-v1.2", kind="llm")
def generate_text(prompt: str, max_tokens: int) -> dict:
    if "fail" in prompt:
        raise ValueError("Simulated API failure")
    output = f"This is a simulated response to the prompt: '{prompt}'"
    return {"output": output, "tokens_used": len(output.split())}


generate_text(prompt="Tell me a joke.", max_tokens=50)
try:
    generate_text(prompt="Please fail now.", max_tokens=50)
except ValueError as exc:
    print(f"caught expected exception: {exc}")

# A hand-built RAG request with explicit steps.
with aitel.trace("rag-query", input={"query": "why is the sky blue?"}, ab_variant="A") as t:
    with t.step("vector_search", kind="retriever", input="why is the sky blue?") as s:
        docs = [
            {"id": "doc1", "score": 0.93, "source": "physics", "content": "Rayleigh scattering."}
        ]
        s.set_retrieval(query="why is the sky blue?", documents=docs)
    with t.step("llm_generation", kind="llm") as s:
        s.set_llm(model_name="gpt-4o-mini", prompt_tokens=120, completion_tokens=25)
        s.set_output("Because of Rayleigh scattering.")
    t.set_output("Because of Rayleigh scattering.")

aitel.flush()
print(f"request {t.request_id}: {aitel.get_tracer().stats().exported} packets exported")
