"""Bare JSON call objects in the text, one or several separated by ``;`` (Llama 3.x).

With no tag around them, an object only counts as a call when it has the call's
shape (a name and ``parameters``/``arguments``); other JSON stays content.
"""

from __future__ import annotations

import json
from typing import Any

from pedrollm.toolcalls.engine import EndFinder, RegionDecoder, Tools
from pedrollm.toolcalls.jsontext import (
    MALFORMED,
    call_from_object,
    dumps,
    load_lenient,
    scan_value,
    skip_ws,
)
from pedrollm.toolcalls.result import Region
from pedrollm.types import InvalidToolCall, ToolCall

_ARG_KEYS = ("parameters", "arguments")


def sequence_end(from_start: bool, sep: str = ";") -> EndFinder:
    """Region is JSON values separated by ``sep``, starting at the marker or right after it."""

    def find(text: str, start: int, head_end: int, final: bool) -> int | None:
        n = len(text)
        pos = start if from_start else skip_ws(text, head_end)
        last = -1
        while True:
            if pos >= n:
                return n if final else None
            if text[pos] not in "{[":
                return last if last >= 0 else head_end
            end = scan_value(text, pos)
            if end is None or (end == MALFORMED and last < 0):
                return n if final else None
            if end == MALFORMED:
                return last
            last = end
            p = skip_ws(text, end)
            if p >= n:
                return end if final else None
            if text[p] != sep:
                return end
            p = skip_ws(text, p + 1)
            if p >= n:
                return end if final else None
            if text[p] not in "{[":
                return end
            pos = p

    return find


def _is_call_shape(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    fields = value.get("function") if isinstance(value.get("function"), dict) else value
    return isinstance(fields, dict) and "name" in fields and any(k in fields for k in _ARG_KEYS)


def _load_loose(raw: str) -> Any:
    # Python's own reading, which takes NaN, Infinity and 1e999; None if not even that.
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def split_values(body: str) -> list[tuple[str, bool]]:
    """Split ``{..}; {..}`` into the raw values and whether each one is complete."""
    out: list[tuple[str, bool]] = []
    pos = skip_ws(body, 0)
    while pos < len(body):
        end = scan_value(body, pos)
        if end is None or end == MALFORMED:
            out.append((body[pos:].strip(), False))
            break
        out.append((body[pos:end], True))
        pos = skip_ws(body, end)
        if pos < len(body) and body[pos] == ";":
            pos = skip_ws(body, pos + 1)
        elif pos < len(body):
            out.append((body[pos:].strip(), False))
            break
    return out


def decode_sequence(body: str, bare: bool) -> Region:
    """Decode ``;``-separated call objects; with ``bare``, JSON without call shape is content."""
    items: list[ToolCall | InvalidToolCall] = []
    shaped = False
    for raw, complete in split_values(body):
        if not complete:
            items.append(InvalidToolCall(raw=raw, error="tool call cut off or not JSON"))
            continue
        try:
            value = load_lenient(raw)
        except ValueError as exc:
            # A call whose JSON holds NaN or Infinity is a refused call, not prose.
            shaped = shaped or _is_call_shape(_load_loose(raw))
            items.append(InvalidToolCall(raw=raw, error=str(exc)))
            continue
        values = value if isinstance(value, list) else [value]
        for v in values:
            if _is_call_shape(v):
                shaped = True
                items.append(call_from_object(v, raw if v is value else dumps(v)))
            else:
                items.append(InvalidToolCall(raw=raw, error="JSON is not a tool call"))
    if bare and not shaped and all(isinstance(i, InvalidToolCall) for i in items):
        complete = all(ok for _, ok in split_values(body))
        if complete:
            return Region(content=body)
    return Region(items=items)


def sequence_decoder(bare: bool) -> RegionDecoder:
    """Decoder for a region of ``;``-separated call objects after a marker of ``head_len``."""

    def decode(region: str, head_len: int, tools: Tools) -> Region:
        body = region if bare else region[head_len:]
        if not body.strip():
            return Region(items=[InvalidToolCall(raw=region, error="empty tool call")])
        return decode_sequence(body, bare)

    return decode
