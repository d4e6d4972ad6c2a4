"""Byte-level wire helpers shared by every route: JSON text, error bodies, SSE framing."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
SSE_CONTENT_TYPE = "text/event-stream"
# Base64 of random bytes with its two symbols mapped into the alphabet: one system call
# per id instead of one per character (ids need to differ, not to be uniform).
_TO_ALPHANUMERIC = bytes.maketrans(b"+/", b"xz")


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
    raw = base64.b64encode(os.urandom(length * 3 // 4 + 3)).translate(_TO_ALPHANUMERIC)
    return raw[:length].decode("ascii")
