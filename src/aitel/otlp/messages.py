"""Chat messages in both vocabularies.

* OpenInference flattens each message into indexed attributes:
  ``llm.input_messages.{i}.message.role``, ``.message.content`` (text) or
  ``.message.contents.{j}.message_content.{type,text,image.image.url}``
  (multi-part), ``.message.name``, ``.message.tool_call_id`` and
  ``.message.tool_calls.{k}.tool_call.{id,function.name,function.arguments}``.
* OTel GenAI keeps the whole list as one JSON attribute
  (``gen_ai.input.messages`` / ``gen_ai.output.messages``) of
  ``{"role", "parts": [...]}`` objects with ``text``, ``tool_call`` and
  ``tool_call_response`` parts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._attributes import AttributeSet, to_json


def _arguments_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else to_json(arguments)


def _image_url(part: Mapping[str, Any]) -> str | None:
    image = part.get("image_url")
    if isinstance(image, Mapping):
        image = image.get("url")
    if isinstance(image, str):
        return image
    url = part.get("url")
    return url if isinstance(url, str) else None


def put_openinference_messages(
    attrs: AttributeSet, prefix: str, messages: Sequence[Any] | None
) -> None:
    """``{prefix}.{i}.message.*`` for each message (``prefix`` is e.g. ``llm.input_messages``)."""
    for i, message in attrs.items(messages):
        base = f"{prefix}.{i}.message"
        if not isinstance(message, Mapping):
            attrs.put(f"{base}.content", message if isinstance(message, str) else to_json(message))
            continue
        attrs.put(f"{base}.role", message.get("role"))
        content = message.get("content")
        if isinstance(content, str):
            attrs.put(f"{base}.content", content)
        elif isinstance(content, list):
            _put_contents(attrs, f"{base}.contents", content)
        elif content is not None:
            attrs.put(f"{base}.content", to_json(content))
        attrs.put(f"{base}.name", message.get("name"))
        attrs.put(f"{base}.tool_call_id", message.get("tool_call_id"))
        put_openinference_tool_calls(attrs, f"{base}.tool_calls", message.get("tool_calls"))


def put_openinference_tool_calls(attrs: AttributeSet, prefix: str, calls: Any) -> None:
    if not isinstance(calls, list):
        return
    for k, call in attrs.items(calls):
        if not isinstance(call, Mapping):
            continue
        base = f"{prefix}.{k}.tool_call"
        attrs.put(f"{base}.id", call.get("id"))
        attrs.put(f"{base}.function.name", call.get("name"))
        if call.get("arguments") is not None:
            attrs.put(f"{base}.function.arguments", _arguments_text(call["arguments"]))


def _put_contents(attrs: AttributeSet, prefix: str, parts: list[Any]) -> None:
    for j, part in attrs.items(parts):
        base = f"{prefix}.{j}.message_content"
        if isinstance(part, str):
            attrs.put(f"{base}.type", "text")
            attrs.put(f"{base}.text", part)
            continue
        if not isinstance(part, Mapping):
            attrs.put(f"{base}.type", "text")
            attrs.put(f"{base}.text", to_json(part))
            continue
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            attrs.put(f"{base}.type", "text")
            attrs.put(f"{base}.text", part["text"])
        elif kind in ("image_url", "image") and _image_url(part) is not None:
            attrs.put(f"{base}.type", "image")
            attrs.put(f"{base}.image.image.url", _image_url(part))
        else:
            attrs.put(f"{base}.type", str(kind) if kind else "text")
            attrs.put(f"{base}.text", to_json(part))


# -- OTel GenAI -------------------------------------------------------------------


def _genai_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if isinstance(content, list):
        parts: list[dict[str, Any]] = []
        for part in content:
            if isinstance(part, str):
                parts.append({"type": "text", "content": part})
            elif isinstance(part, Mapping) and part.get("type") == "text":
                parts.append({"type": "text", "content": part.get("text")})
            elif isinstance(part, Mapping) and _image_url(part) is not None:
                parts.append({"type": "uri", "modality": "image", "uri": _image_url(part)})
            else:
                parts.append({"type": "generic", "content": part})
        return parts
    return [{"type": "generic", "content": content}]


def _genai_tool_calls(calls: Any) -> list[dict[str, Any]]:
    if not isinstance(calls, list):
        return []
    return [
        {
            "type": "tool_call",
            "id": call.get("id"),
            "name": call.get("name"),
            "arguments": call.get("arguments"),
        }
        for call in calls
        if isinstance(call, Mapping)
    ]


def genai_message(message: Any) -> dict[str, Any]:
    """One message in the GenAI ``{"role", "parts"}`` shape."""
    if not isinstance(message, Mapping):
        return {"role": "user", "parts": _genai_parts(message)}
    role = str(message.get("role") or "user")
    if role == "tool":
        parts: list[dict[str, Any]] = [
            {
                "type": "tool_call_response",
                "id": message.get("tool_call_id"),
                "response": message.get("content"),
            }
        ]
    else:
        parts = _genai_parts(message.get("content")) + _genai_tool_calls(message.get("tool_calls"))
    out: dict[str, Any] = {"role": role, "parts": parts}
    if message.get("name"):
        out["name"] = message["name"]
    return out


def genai_message_list(messages: Sequence[Any], max_items: int) -> tuple[list[dict[str, Any]], int]:
    """The GenAI form of up to ``max_items`` messages, and how many were left out."""
    kept = list(messages[:max_items])
    return [genai_message(m) for m in kept], len(messages) - len(kept)
