"""JSON inside model text: finding where a value ends, reading it leniently, call objects.

The scanner knows strings (double- and single-quoted) and escapes, so a marker or a
brace inside an argument string never ends a tool call early.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pedrollm.toolcalls.pyliterals import LiteralError, python_literal
from pedrollm.types import InvalidToolCall, ToolCall

MALFORMED = -1

# A whole string literal (either quote, escapes included), or one structural
# character; a lone quote is a string the text has not finished yet.
_TOKEN = re.compile(
    r'"[^"\\]*(?:\\.[^"\\]*)*"|\'[^\'\\]*(?:\\.[^\'\\]*)*\'|[{}\[\]()"\']', re.DOTALL
)
_CLOSERS = {"}": "{", "]": "[", ")": "("}
_DECODER = json.JSONDecoder()


def scan_value(text: str, start: int, openers: str = "{[") -> int | None:
    """Return the index just after the bracketed value opening at ``start``.

    Returns None when the text ends first, MALFORMED when a bracket closes the wrong
    opener or ``start`` does not hold one of ``openers``.
    """
    if start >= len(text) or text[start] not in openers:
        return MALFORMED
    if text[start] in "{[":
        # Valid JSON (the common case) ends where the C decoder says; the scanner
        # below handles the rest: Python-style literals, cut-off and broken text.
        try:
            return _DECODER.raw_decode(text, start)[1]
        except (ValueError, RecursionError):
            pass
    stack: list[str] = []
    for m in _TOKEN.finditer(text, start):
        tok = m.group()
        if len(tok) > 1:
            continue
        if tok in "\"'":
            return None
        if tok in "{[(":
            stack.append(tok)
        elif not stack or stack.pop() != _CLOSERS[tok]:
            return MALFORMED
        elif not stack:
            return m.end()
    return None


def skip_ws(text: str, pos: int) -> int:
    """Return the first index at or after ``pos`` that is not whitespace."""
    n = len(text)
    while pos < n and text[pos].isspace():
        pos += 1
    return pos


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"number {literal} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# Built once: json.loads with hooks would build a decoder per call.
_STRICT = json.JSONDecoder(parse_float=_finite, parse_constant=_no_constant)


def loads_strict(text: str) -> Any:
    """Decode JSON, refusing what JSON has no value for: ``NaN``, ``Infinity``, ``1e999``."""
    return _STRICT.decode(text)


def load_lenient(text: str) -> Any:
    """Decode JSON, or failing that a Python-style literal; raise ValueError if neither.

    Numbers that JSON cannot carry (``1e999``, ``NaN``, ``inf``) are refused in both
    notations, so every value read here can be written back as JSON.
    """
    try:
        return loads_strict(text)
    except (ValueError, RecursionError):
        pass
    try:
        return python_literal(text)
    except LiteralError as exc:
        raise ValueError(f"not JSON: {exc}") from None


def dumps(value: Any) -> str:
    """Write JSON the way models do: UTF-8 text, not ASCII escapes; never NaN or Infinity."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def decode_arguments(value: Any) -> dict[str, Any]:
    """Return call arguments as a dict; a JSON-encoded string of an object is decoded."""
    if value is None:
        return {}
    if isinstance(value, str):
        decoded = load_lenient(value) if value.strip() else {}
        value = decoded
    if not isinstance(value, dict):
        raise ValueError("arguments are not an object")
    return value


_NAME_KEYS = ("name", "tool_name", "function_name")
_ARG_KEYS = ("arguments", "parameters", "args", "input")
_ID_KEYS = ("id", "tool_call_id", "call_id")


def call_from_object(obj: Any, raw: str) -> ToolCall | InvalidToolCall:
    """Turn one decoded call object (``{"name":..., "arguments":...}`` and kin) into a call.

    Accepts ``arguments``/``parameters``, OpenAI's nested ``function`` shape and
    Cohere's ``tool_name``. A valid call with no id of its own gets ``id=""``.
    """
    if not isinstance(obj, dict):
        return InvalidToolCall(raw=raw, error="tool call is not an object")
    inner = obj.get("function")
    fields = inner if isinstance(inner, dict) else obj
    name = next((fields[k] for k in _NAME_KEYS if k in fields), None)
    call_id = next((obj[k] for k in _ID_KEYS if k in obj), None)
    if call_id is not None and not isinstance(call_id, str):
        call_id = str(call_id)
    if not isinstance(name, str) or not name:
        return InvalidToolCall(raw=raw, error="tool call has no name", id=call_id)
    arg_key = next((k for k in _ARG_KEYS if k in fields), None)
    try:
        args = decode_arguments(fields[arg_key] if arg_key else None)
    except ValueError as exc:
        return InvalidToolCall(raw=raw, error=str(exc), name=name, id=call_id)
    return ToolCall(id=call_id or "", name=name, args=args)


def calls_from_json(body: str) -> list[ToolCall | InvalidToolCall]:
    """Decode ``body`` as one call object or a list of them."""
    raw = body.strip()
    try:
        value = load_lenient(raw)
    except ValueError as exc:
        return [InvalidToolCall(raw=raw, error=str(exc))]
    if isinstance(value, list):
        if not value:
            return []
        return [call_from_object(v, dumps(v) if not isinstance(v, str) else v) for v in value]
    return [call_from_object(value, raw)]
