"""Hand-written fakellama fixtures: one prompt, one known reply."""

from __future__ import annotations

from typing import Any

CHAT_PATH = "/v1/chat/completions"


def reply_fixture(name: str, prompt: str, text: str) -> dict[str, Any]:
    """Return a fixture object answering the single user message ``prompt`` with ``text``."""
    words = max(1, len(text.split()))
    return {
        "fakellama_fixture": 1,
        "name": name,
        "request": {
            "method": "POST",
            "path": CHAT_PATH,
            "body": {"messages": [{"role": "user", "content": prompt}]},
        },
        "response": {
            "status": 200,
            "headers": {"Content-Type": "application/json; charset=utf-8"},
            "body": {
                "id": f"chatcmpl-{name}",
                "object": "chat.completion",
                "created": 1764000000,
                "model": "scripted-tiny.gguf",
                "choices": [{
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }],
                "usage": {"prompt_tokens": 8, "completion_tokens": words,
                          "total_tokens": 8 + words},
            },
        },
        "metadata": {"authored": "by hand", "note": "reliability tests"},
    }
