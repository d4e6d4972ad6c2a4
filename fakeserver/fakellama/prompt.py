"""The fake's model-free tokenizer and chat template: one token per UTF-8 byte, ChatML."""

from __future__ import annotations

import json
from typing import Any

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


#: What ends a rendered chat: the assistant's turn, opened for the reply.
GENERATION_PROMPT = "<|im_start|>assistant\n"


def tokenize(text: str) -> list[int]:
    """Return token ids for text: one id per UTF-8 byte, so detokenize is exact."""
    return list(text.encode("utf-8"))


def detokenize(tokens: list[int]) -> str:
    """Return the text for token ids produced by tokenize (invalid bytes are replaced)."""
    return bytes(t & 0xFF for t in tokens).decode("utf-8", errors="replace")


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content
                       if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def render_chat(messages: list[Any], tools: list[Any] | None = None) -> str:
    """Render messages (and offered tools) as ChatML text with the assistant turn opened."""
    out = []
    if tools:
        out.append("<|im_start|>system\n# Tools\n" + json.dumps(tools) + "<|im_end|>\n")
    for message in messages:
        if not isinstance(message, dict):
            continue
        text = _content_text(message.get("content"))
        calls = message.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            function = call.get("function", {}) if isinstance(call, dict) else {}
            text += "<tool_call>" + json.dumps(function) + "</tool_call>"
        out.append(f"<|im_start|>{message.get('role', 'user')}\n{text}<|im_end|>\n")
    out.append(GENERATION_PROMPT)
    return "".join(out)


def count_prompt_tokens(body: dict[str, Any]) -> int:
    """Count the prompt tokens a chat or completion body would take with this tokenizer."""
    if "messages" in body:
        messages = body["messages"] if isinstance(body["messages"], list) else []
        return len(tokenize(render_chat(messages, body.get("tools"))))
    prompt = body.get("prompt", "")
    if isinstance(prompt, list):
        return sum(len(tokenize(p)) if isinstance(p, str) else 1 for p in prompt)
    return len(tokenize(str(prompt)))
