"""Fakes for pool tests: each answers with its own name, so a test sees who answered."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from fakellama.fixtures import BY_HAND
from fakellama.server import FakeServer

CHAT = "/v1/chat/completions"


def _chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    body = {"choices": [{"finish_reason": finish, "index": 0, "delta": delta}],
            "created": 1, "id": "chatcmpl-pool", "model": "m", "object": "chat.completion.chunk"}
    return f"data: {json.dumps(body)}\n\n"


def chat_fixtures(messages: list[dict[str, Any]], reply: str) -> list[dict[str, Any]]:
    """A plain and a streamed fixture answering ``messages`` with ``reply``."""
    plain = {
        "fakellama_fixture": 1, "metadata": {"authored": BY_HAND},
        "name": "pool-" + hashlib.sha256(json.dumps([messages, reply]).encode()).hexdigest()[:16],
        "request": {"method": "POST", "path": CHAT, "body": {"messages": messages}},
        "response": {"status": 200, "headers": {"Content-Type": "application/json"}, "body": {
            "choices": [{"finish_reason": "stop", "index": 0,
                         "message": {"role": "assistant", "content": reply}}],
            "created": 1, "id": "chatcmpl-pool", "model": "m", "object": "chat.completion",
            "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}}},
    }
    words = reply.split(" ")
    events = [_chunk({"role": "assistant", "content": None})]
    events += [_chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
    events += [_chunk({}, "stop"), "data: [DONE]\n\n"]
    streamed = {
        "fakellama_fixture": 1, "metadata": {"authored": BY_HAND},
        "name": plain["name"] + "-stream",
        "request": {"method": "POST", "path": CHAT,
                    "body": {"messages": messages, "stream": True}},
        "response": {"status": 200, "headers": {"Content-Type": "text/event-stream"},
                     "events": [{"t": 0.0, "raw": raw} for raw in events]},
    }
    return [plain, streamed]


def ask(prompt: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": prompt}]


@contextmanager
def named_fakes(names: Sequence[str], prompts: Sequence[str] = ("Who are you?",),
                **kwargs: Any) -> Iterator[list[FakeServer]]:
    """Fakes answering each prompt with ``I am NAME.`` (no other fixtures)."""
    with tempfile.TemporaryDirectory() as empty, ExitStack() as stack:
        fakes = []
        for name in names:
            fake = stack.enter_context(FakeServer(empty, **kwargs))
            for prompt in prompts:
                for fixture in chat_fixtures(ask(prompt), f"I am {name}."):
                    fake.add_fixture(fixture)
            fakes.append(fake)
        yield fakes


def chats(fake: FakeServer) -> int:
    """How many chat requests a fake received."""
    return sum(1 for r in fake.requests if r.path == CHAT)
