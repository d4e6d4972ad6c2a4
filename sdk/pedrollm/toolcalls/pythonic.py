"""Pythonic tool calls: ``[get_weather(city="Paris"), get_time()]``.

Written bare (Llama 3.2 and 4 pythonic templates, ToolACE), inside Llama 4's
``<|python_start|>...<|python_end|>`` or LFM2's
``<|tool_call_start|>...<|tool_call_end|>``. Read with ``ast``, never evaluated.
A bare bracket that turns out not to be a list of calls stays content; a list of
keyword calls whose value is not a literal (``f(x=inf)``, ``f(x=1e999)``: JSON has no
infinity) is a refused call.
"""

from __future__ import annotations

import ast

from pedrollm.toolcalls.engine import Opener, ToolCallFormat, Tools
from pedrollm.toolcalls.jsontext import MALFORMED, scan_value
from pedrollm.toolcalls.markers import IDENT, WS
from pedrollm.toolcalls.pyliterals import LiteralError, call_parts, parse_expression, render_call
from pedrollm.toolcalls.regions import (
    accept_unclosed,
    body_of,
    bracket_end,
    join_content,
    json_then,
    unterminated,
)
from pedrollm.toolcalls.result import Region
from pedrollm.types import InvalidToolCall, ToolCall

WRAPPERS = (("<|python_start|>", "<|python_end|>"), ("<|tool_call_start|>", "<|tool_call_end|>"))


def calls_from_python(code: str, raw: str) -> list[ToolCall | InvalidToolCall]:
    """Decode ``[f(a=1), g()]`` (or one bare ``f(a=1)``) into calls."""
    try:
        node = parse_expression(code)
        elts = node.elts if isinstance(node, ast.List) else [node]
        out: list[ToolCall | InvalidToolCall] = []
        for e in elts:
            name, args = call_parts(e)
            out.append(ToolCall(id="", name=name, args=args))
        return out
    except (LiteralError, RecursionError) as exc:
        return [InvalidToolCall(raw=raw, error=f"not a list of calls: {exc}")]


def _wrapped(open_: str, close: str) -> Opener:
    def decode(region: str, head_len: int, tools: Tools) -> Region:
        body, closed = body_of(region, head_len, close)
        if not closed:
            # The reply ended after a whole list: the end token was cut off.
            code = body.strip()
            if code.startswith("[") and scan_value(code, 0) == len(code):
                return accept_unclosed(region, close, calls_from_python(code, region))
            return unterminated(region, close)
        if not body.strip():
            return Region(items=[InvalidToolCall(raw=region, error="empty tool call")])
        return Region(items=calls_from_python(body, region))

    # The list is scanned string-aware, so its end token inside a value is text.
    return Opener((open_,), json_then(close), decode)


def _bare_decode(region: str, head_len: int, tools: Tools) -> Region:
    end = scan_value(region, 0)
    if end is None:
        return Region(items=[InvalidToolCall(raw=region, error="tool call list cut off")])
    if end == MALFORMED:
        return Region(content=region)
    items = calls_from_python(region, region)
    if len(items) == 1 and isinstance(items[0], InvalidToolCall) and not _call_shaped(region):
        # Brackets that close but hold no calls were prose, not a tool call.
        return Region(content=region)
    return Region(items=items)


def _call_shaped(code: str) -> bool:
    # ``[f(a=...), g(b=...)]``: a list of keyword-only calls of names. Such a list is a
    # tool call even when a value is not a literal JSON can carry (``1e999``, ``inf``).
    try:
        node = parse_expression(code)
    except LiteralError:
        return False
    return isinstance(node, ast.List) and all(
        isinstance(e, ast.Call)
        and isinstance(e.func, ast.Name | ast.Attribute)
        and not e.args
        and all(k.arg is not None for k in e.keywords)
        for e in node.elts
    )


BARE = Opener(("[", WS, IDENT, WS, "("), bracket_end, _bare_decode)


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then ``[f(a=1), g(b='x')]``."""
    body = "[" + ", ".join(render_call(c.name, c.args) for c in calls) + "]"
    return join_content(content, [body] if calls else [])


FORMAT = ToolCallFormat(
    name="pythonic",
    openers=(*(_wrapped(o, c) for o, c in WRAPPERS), BARE),
    renderer=render,
    markers=tuple(m for pair in WRAPPERS for m in pair),
    identifier_names=True,
    description="Pythonic [f(a=1)]: Llama 3.2/4 pythonic, LFM2, ToolACE",
    aliases=("llama4", "llama4_pythonic", "lfm2"),
)
