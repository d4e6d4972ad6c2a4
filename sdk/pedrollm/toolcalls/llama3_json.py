"""Llama 3.1 / 3.2 / 3.3 JSON tool calls: ``{"name": "f", "parameters": {...}}``.

Optionally after ``<|python_tag|>``; several calls are separated by ``;``. The
object may say ``arguments`` instead of ``parameters``. After ``<|python_tag|>`` a
built-in call (``brave_search.call(query="x")``) is read too (see llama3_builtin).
"""

from __future__ import annotations

import re

from pedrollm.toolcalls.engine import Opener, ToolCallFormat, Tools
from pedrollm.toolcalls.jsonseq import decode_sequence, sequence_decoder, sequence_end
from pedrollm.toolcalls.jsontext import MALFORMED, dumps, scan_value, skip_ws
from pedrollm.toolcalls.markers import WS
from pedrollm.toolcalls.pyliterals import LiteralError, call_parts, parse_expression
from pedrollm.toolcalls.regions import drop, join_content
from pedrollm.toolcalls.result import Region
from pedrollm.types import InvalidToolCall, ToolCall

PYTHON_TAG = "<|python_tag|>"
_BUILTIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.call\s*\(")
_BUILTIN_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.(c(a(l(l\s*)?)?)?)?)?")
END_TOKENS = ("<|eom_id|>", "<|eot_id|>")


def _tag_end(text: str, start: int, head_end: int, final: bool) -> int | None:
    pos = skip_ws(text, head_end)
    if pos >= len(text):
        return len(text) if final else None
    if text[pos] in "{[":
        return sequence_end(from_start=False)(text, start, head_end, final)
    m = _BUILTIN.match(text, pos)
    if m is not None:
        # A built-in call ends at its closing parenthesis, strings taken into account.
        end = scan_value(text, m.end() - 1, "(")
        if end is None:
            return len(text) if final else None
        if end != MALFORMED:
            return end
    elif not final and _BUILTIN_PREFIX.fullmatch(text, pos):
        return None
    hits = [j for j in (text.find(t, head_end) for t in END_TOKENS) if j >= 0]
    if hits:
        j = min(hits)
        return j + len(next(t for t in END_TOKENS if text.startswith(t, j)))
    return len(text) if final else None


def _decode_tag(region: str, head_len: int, tools: Tools) -> Region:
    body = region[head_len:]
    terminated = body.endswith(END_TOKENS)
    for t in END_TOKENS:
        if body.endswith(t):
            body = body[: -len(t)]
    code = body.strip()
    if not code:
        return Region(items=[InvalidToolCall(raw=region, error="empty tool call")])
    if code.startswith(("{", "[")):
        return decode_sequence(body, bare=False)
    try:
        name, args = call_parts(parse_expression(code))
        if name.endswith(".call"):
            return Region(items=[ToolCall(id="", name=name[: -len(".call")], args=args)])
    except LiteralError as exc:
        if ".call(" in code.split("\n", 1)[0]:
            return Region(items=[InvalidToolCall(raw=region, error=f"bad built-in call: {exc}")])
    if terminated:
        # Code for the interpreter, as Llama 3.1's ipython tool receives it.
        return Region(items=[ToolCall(id="", name="python", args={"code": code})])
    return Region(
        items=[InvalidToolCall(raw=region, error="code after <|python_tag|> not terminated")]
    )


PYTHON_TAG_OPENER = Opener((PYTHON_TAG,), _tag_end, _decode_tag)
# The end-of-message tokens carry no text when a server leaves them in.
END_OPENERS = tuple(drop((t,)) for t in END_TOKENS)
BARE_OPENERS = (
    Opener(("{", WS, '"name"'), sequence_end(from_start=True), sequence_decoder(bare=True)),
    Opener(("{", WS, "'name'"), sequence_end(from_start=True), sequence_decoder(bare=True)),
    Opener(
        ("{", WS, '"type"', WS, ":", WS, '"function"'),
        sequence_end(from_start=True),
        sequence_decoder(bare=True),
    ),
)


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then the calls as JSON objects separated by ``; ``."""
    body = "; ".join(dumps({"name": c.name, "parameters": c.args}) for c in calls)
    return join_content(content, [body] if calls else [])


FORMAT = ToolCallFormat(
    name="llama3_json",
    openers=(PYTHON_TAG_OPENER, *BARE_OPENERS, *END_OPENERS),
    renderer=render,
    markers=(PYTHON_TAG, *END_TOKENS),
    description='Llama 3.1/3.2/3.3: {"name": f, "parameters": {...}}; optional <|python_tag|>',
    aliases=("llama3", "llama3_1", "llama3_2", "llama3_3", "llama"),
)
