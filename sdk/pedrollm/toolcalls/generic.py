"""Generic JSON, for models with no format of their own (llama.cpp's generic handler)::

    {"tool_calls": [{"name": "f", "arguments": {...}}]}

Also ``{"tool_call": {...}}``, a bare ``{"name": ..., "arguments": ...}`` or a list
of them, ``{"response": "text"}`` for plain text, any of them inside a ```json fence.
JSON that is not shaped like a call stays content, fence and all.
"""

from __future__ import annotations

from typing import Any

from pedrollm.toolcalls.engine import Opener, ToolCallFormat, Tools
from pedrollm.toolcalls.jsontext import (
    call_from_object,
    dumps,
    load_lenient,
    scan_value,
)
from pedrollm.toolcalls.markers import WS
from pedrollm.toolcalls.regions import bracket_end, join_content, json_then
from pedrollm.toolcalls.result import Region
from pedrollm.types import InvalidToolCall, ToolCall

FENCE = "```"
_ARG_KEYS = ("arguments", "parameters")


def _call_shaped(v: Any) -> bool:
    return isinstance(v, dict) and isinstance(v.get("name"), str) and any(k in v for k in _ARG_KEYS)


def _decode_value(value: Any, raw: str) -> Region | None:
    """Calls or response text from one decoded value; None when it is not call-shaped."""
    if isinstance(value, dict) and isinstance(value.get("tool_calls"), list):
        return Region(items=[call_from_object(v, dumps(v)) for v in value["tool_calls"]])
    if isinstance(value, dict) and isinstance(value.get("tool_call"), dict):
        return Region(items=[call_from_object(value["tool_call"], raw)])
    if _call_shaped(value):
        return Region(items=[call_from_object(value, raw)])
    if isinstance(value, list) and value and all(_call_shaped(v) for v in value):
        return Region(items=[call_from_object(v, dumps(v)) for v in value])
    if (
        isinstance(value, dict)
        and set(value) == {"response"}
        and isinstance(value["response"], str)
    ):
        return Region(content=value["response"])
    return None


def _decode_json(text: str, region: str) -> Region:
    raw = text.strip()
    if scan_value(raw, 0) != len(raw):
        if scan_value(raw, 0) is None:
            return Region(items=[InvalidToolCall(raw=region, error="tool call cut off")])
        return Region(content=region)
    try:
        value = load_lenient(raw)
    except ValueError:
        return Region(content=region)
    decoded = _decode_value(value, raw)
    return decoded if decoded is not None else Region(content=region)


def _bare_decode(region: str, head_len: int, tools: Tools) -> Region:
    return _decode_json(region, region)


def _fence_decode(region: str, head_len: int, tools: Tools) -> Region:
    body = region[head_len:]
    closed = body.endswith(FENCE)
    if closed:
        body = body[: -len(FENCE)]
    text = body.strip()
    if not closed:
        # A fence cut off: a call if it had started one, otherwise text.
        if text.startswith(("{", "[")) and scan_value(text, 0) is None:
            return Region(items=[InvalidToolCall(raw=region, error="tool call cut off")])
        return Region(content=region)
    if not text.startswith(("{", "[")):
        return Region(content=region)
    return _decode_json(text, region)


def _bare(*keys: str) -> Opener:
    return Opener(("{", WS, *keys), bracket_end, _bare_decode)


OPENERS = (
    Opener((FENCE + "json", WS), json_then(FENCE), _fence_decode),
    _bare('"tool_calls"'),
    _bare('"tool_call"'),
    _bare('"name"'),
    _bare("'name'"),
    _bare('"response"'),
    Opener(("[", WS, "{", WS, '"name"'), bracket_end, _bare_decode),
)


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then ``{"tool_calls": [...]}``."""
    body = dumps({"tool_calls": [{"name": c.name, "arguments": c.args} for c in calls]})
    return join_content(content, [body] if calls else [])


FORMAT = ToolCallFormat(
    name="generic",
    openers=OPENERS,
    renderer=render,
    description='Generic JSON: {"tool_calls": [...]}, also in ```json fences',
    aliases=("json", "generic_json"),
)
