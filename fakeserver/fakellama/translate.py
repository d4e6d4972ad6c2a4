"""Other APIs llama-server serves, as the chat request it turns each into.

llama-server answers the Anthropic Messages API (/v1/messages) and OpenAI's Responses API
(/v1/responses) by converting the request to a chat completion request; the fake does the
same, so validation, token counting and synthesis work on one shape.
"""

from __future__ import annotations

from typing import Any


def _block_text(content: Any) -> Any:
    """Anthropic or Responses content (a string or typed blocks) as chat content."""
    if isinstance(content, list):
        return "".join(b["text"] for b in content
                       if isinstance(b, dict) and isinstance(b.get("text"), str))
    return content


def anthropic_as_chat(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages request as the chat request llama-server turns it into."""
    if not isinstance(body, dict):
        return {"messages": []}
    given = body.get("messages")
    messages = [dict(m, content=_block_text(m.get("content"))) if isinstance(m, dict) else m
                for m in (given if isinstance(given, list) else [])]
    system = _block_text(body.get("system"))
    if isinstance(system, str) and system:
        messages.insert(0, {"role": "system", "content": system})
    chat_body: dict[str, Any] = {"messages": messages}
    for source, target in (("max_tokens", "max_tokens"), ("stop_sequences", "stop"),
                           ("temperature", "temperature"), ("top_p", "top_p")):
        if source in body:
            chat_body[target] = body[source]
    return chat_body


def responses_as_chat(body: dict[str, Any]) -> dict[str, Any]:
    """A Responses API request as the chat request llama-server turns it into."""
    if not isinstance(body, dict):
        return {"messages": []}
    given = body.get("input")
    if isinstance(given, str):
        messages: list[Any] = [{"role": "user", "content": given}]
    else:
        messages = [dict(m, content=_block_text(m.get("content")))
                    for m in (given if isinstance(given, list) else []) if isinstance(m, dict)]
    if isinstance(body.get("instructions"), str):
        messages.insert(0, {"role": "system", "content": body["instructions"]})
    chat_body: dict[str, Any] = {"messages": messages}
    if "max_output_tokens" in body:
        chat_body["max_tokens"] = body["max_output_tokens"]
    return chat_body
