"""Mistral before tokenizer v11: ``[TOOL_CALLS] [{"name": "f", "arguments": {...}, "id": "..."}]``.

The same marker followed by a name (v11+, see mistral_v11) is read as well, also
without its ``[ARGS]`` (``[TOOL_CALLS]get_weather{"city": "Paris"}``), which a server
that drops control tokens leaves: a name, then a whole JSON object.
Reasoning (Magistral) is ``[THINK]...[/THINK]``.
"""

from __future__ import annotations

import re

from pedrollm.toolcalls.engine import Opener, ToolCallFormat, Tools
from pedrollm.toolcalls.jsontext import (
    MALFORMED,
    calls_from_json,
    decode_arguments,
    dumps,
    load_lenient,
    scan_value,
    skip_ws,
)
from pedrollm.toolcalls.markers import NEED_MORE, match_pattern
from pedrollm.toolcalls.regions import join_content
from pedrollm.toolcalls.result import Region
from pedrollm.types import InvalidToolCall, ToolCall

TOOL_CALLS = "[TOOL_CALLS]"
_NAME = re.compile(r"[A-Za-z0-9_\-.]+")
ARGS = "[ARGS]"
CALL_ID = "[CALL_ID]"
REASONING = (("[THINK]", "[/THINK]"),)
MARKERS = (TOOL_CALLS, ARGS, CALL_ID, "[/TOOL_CALLS]")


def _find_end(text: str, start: int, head_end: int, final: bool) -> int | None:
    n = len(text)
    pos = skip_ws(text, head_end)
    if pos >= n:
        return n if final else None
    if text[pos] == "[":
        # The list form; its end is the list's closing bracket.
        end = scan_value(text, pos)
        if end is None:
            return n if final else None
        return n if end == MALFORMED else end
    # name{json}: a server dropped the [ARGS] control token.
    m = _NAME.match(text, pos)
    if m is not None and m.end() < n and text[m.end()] == "{":
        end = scan_value(text, m.end())
        if end is None:
            return n if final else None
        if end != MALFORMED:
            return end
    # name [CALL_ID]id [ARGS]{json}
    p = text.find("[", pos)
    if p < 0:
        return n if final else None
    r = match_pattern((CALL_ID,), text, p, final)
    if r == NEED_MORE:
        return None
    if r >= 0:
        p = text.find("[", r)
        if p < 0:
            return n if final else None
    r = match_pattern((ARGS,), text, p, final)
    if r == NEED_MORE:
        return None
    if r < 0:
        return _next_marker(text, p, final)
    q = skip_ws(text, r)
    if q >= n:
        return n if final else None
    end = scan_value(text, q)
    if end is None:
        return n if final else None
    return _next_marker(text, q, final) if end == MALFORMED else end


def _next_marker(text: str, pos: int, final: bool) -> int | None:
    j = text.find(TOOL_CALLS, pos)
    if j >= 0:
        return j
    return len(text) if final else None


def _decode(region: str, head_len: int, tools: Tools) -> Region:
    body = region[head_len:].strip()
    if not body:
        return Region(items=[InvalidToolCall(raw=region, error="empty tool call")])
    if body.startswith("["):
        if scan_value(body, 0) in (None, MALFORMED):
            return Region(items=[InvalidToolCall(raw=region, error="tool call list cut off")])
        return Region(items=calls_from_json(body))
    m = _NAME.match(body)
    if m is not None and body.startswith("{", m.end()):
        return _call(region, m.group(), None, body[m.end() :])
    name, sep, rest = body.partition("[")
    name = name.strip()
    call_id: str | None = None
    rest = "[" + rest if sep else ""
    if rest.startswith(CALL_ID):
        call_id, _, rest = rest[len(CALL_ID) :].partition("[")
        call_id = call_id.strip()
        rest = "[" + rest
    if not name or not rest.startswith(ARGS):
        return Region(items=[InvalidToolCall(raw=region, error="expected name[ARGS]{...}")])
    return _call(region, name, call_id, rest[len(ARGS) :])


def _call(region: str, name: str, call_id: str | None, args_text: str) -> Region:
    args_text = args_text.strip()
    if not args_text.startswith(("{", "[")) or scan_value(args_text, 0) != len(args_text):
        return Region(
            items=[InvalidToolCall(raw=region, error="arguments cut off or not JSON", name=name)]
        )
    try:
        args = decode_arguments(load_lenient(args_text))
    except ValueError as exc:
        return Region(items=[InvalidToolCall(raw=region, error=str(exc), name=name, id=call_id)])
    return Region(items=[ToolCall(id=call_id or "", name=name, args=args)])


OPENER = Opener((TOOL_CALLS,), _find_end, _decode)


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then ``[TOOL_CALLS] [{...}, ...]`` with each call's id."""
    objs = [
        {"name": c.name, "arguments": c.args, "id": c.id or f"call_{i}"}
        for i, c in enumerate(calls)
    ]
    return join_content(content, [f"{TOOL_CALLS} {dumps(objs)}"] if calls else [], sep=" ")


FORMAT = ToolCallFormat(
    name="mistral",
    openers=(OPENER,),
    renderer=render,
    reasoning=REASONING,
    markers=MARKERS,
    description="Mistral (tokenizer before v11): [TOOL_CALLS] [{...}]",
    aliases=("mistral_v3", "mistral_nemo", "mixtral"),
)
