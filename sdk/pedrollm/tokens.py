"""Counting a request's prompt tokens: exact where the server tokenizes, else an estimate.

:meth:`pedrollm.Backend.count_tokens` returns a :class:`TokenCount`. llama-server and vLLM
count exactly, through the model's own chat template and tokenizer (``exact=True``);
Ollama and LM Studio expose no tokenizer over HTTP, so the count there is the estimate
below (``exact=False``), the same one the agent trims conversations with.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

from dataclasses_json import DataClassJsonMixin

from .types import InferenceRequest, Message

#: A function from text to its number of tokens.
TokenCounter = Callable[[str], int]

# Per-message allowance for the role marker and chat-template framing.
MESSAGE_OVERHEAD_TOKENS = 4
#: ``TokenCount.method`` of an estimate.
ESTIMATE_METHOD = "estimate: one token per four characters, four per message"


@dataclass
class TokenCount(DataClassJsonMixin):
    """A number of tokens, whether it is exact, and how it was obtained.

    ``exact`` is True when the server's own tokenizer produced ``n``; ``method`` says how
    (for example ``llama-server /apply-template + /tokenize``).
    """

    n: int
    exact: bool
    method: str


def estimate_tokens(text: str) -> int:
    """Estimate tokens as one per four characters, rounded up (a common rule for English)."""
    return math.ceil(len(text) / 4)


def message_tokens(msg: Message, count: TokenCounter = estimate_tokens) -> int:
    """Estimate one message's tokens: content, tool calls and a fixed framing allowance."""
    total = MESSAGE_OVERHEAD_TOKENS + count(msg.content or "")
    for call in msg.tool_calls:
        total += count(call.name) + count(json.dumps(call.args, ensure_ascii=False))
    return total


def estimate_request_tokens(req: InferenceRequest) -> TokenCount:
    """Estimate a request's prompt tokens: its messages, and its tools' schemas."""
    total = sum(message_tokens(m) for m in req.all_messages())
    if req.tools:
        total += estimate_tokens(json.dumps([t.to_openai() for t in req.tools]))
    return TokenCount(n=total, exact=False, method=ESTIMATE_METHOD)


def estimate_text_tokens(text: str) -> TokenCount:
    """Estimate the tokens of a piece of text."""
    return TokenCount(n=estimate_tokens(text), exact=False,
                      method="estimate: one token per four characters")


__all__ = [
    "ESTIMATE_METHOD",
    "MESSAGE_OVERHEAD_TOKENS",
    "TokenCount",
    "TokenCounter",
    "estimate_request_tokens",
    "estimate_text_tokens",
    "estimate_tokens",
    "message_tokens",
]
