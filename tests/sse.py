"""Helpers to build OpenAI-style replies for tests (bodies written here, not recorded)."""

from __future__ import annotations

import json
from typing import Any


def completion(content: str | None = "Hello!", *, tool_calls: list[dict[str, Any]] | None = None,
               finish_reason: str = "stop", reasoning: str | None = None,
               usage: dict[str, int] | None = None, **extra: Any) -> dict[str, Any]:
    """A non-streamed chat completion body."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    body: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1,
        "model": "test-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": usage or {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
    }
    body.update(extra)
    return body


def tool_call(name: str, arguments: Any, call_id: str = "call_1") -> dict[str, Any]:
    """One native tool call, arguments as given (string or object)."""
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": arguments}}


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    """One streamed chunk with a single choice delta."""
    return {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1,
            "model": "test-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}


def sse(*events: Any, done: bool = True) -> str:
    """Frame events as SSE ``data:`` lines, ending with ``[DONE]``."""
    parts = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    if done:
        parts.append("data: [DONE]\n\n")
    return "".join(parts)
