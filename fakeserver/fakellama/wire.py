"""Byte-level wire helpers shared by every route: JSON text, error bodies, SSE framing."""

from __future__ import annotations

import json
import random
import string
from typing import Any

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
SSE_CONTENT_TYPE = "text/event-stream"
_ID_ALPHABET = string.ascii_letters + string.digits
# Ids only need to differ from one reply to the next, not to be secret: one seeded
# generator draws a whole id per call, far cheaper than a system call per character.
_IDS = random.Random()


def dumps(value: Any) -> str:
    """Serialise JSON the way llama-server does: compact, UTF-8, keys in insertion order."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def error_body(code: int, message: str, error_type: str, **extra: Any) -> dict[str, Any]:
    """Return llama-server's error envelope: {"error": {"code", "message", "type", ...}}."""
    inner: dict[str, Any] = {"code": code, "message": message, "type": error_type}
    inner.update(extra)
    return {"error": inner}


def sse_event(payload: str, field: str = "data") -> str:
    """Frame one server-sent event the way llama-server writes it."""
    return f"{field}: {payload}\n\n"


def parse_sse_block(raw: str) -> tuple[str, str]:
    """Split one framed SSE block into (field, payload); raises ValueError if it is not one."""
    text = raw.rstrip("\n")
    field, sep, payload = text.partition(":")
    if not sep:
        raise ValueError(f"not an SSE field line: {raw[:60]!r}")
    return field, payload[1:] if payload.startswith(" ") else payload


def random_id(length: int = 32) -> str:
    """Return a random alphanumeric id of the given length (llama-server's id alphabet)."""
    return "".join(_IDS.choices(_ID_ALPHABET, k=length))
