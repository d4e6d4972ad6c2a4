"""Functionary v3.2: ``>>>get_weather\\n{"city": "Paris"}``; text comes as ``>>>all\\n...``.

The chat template ends the prompt with ``>>>``, so a reply from a server starts right
after it: ``all\\n`` and the text, or ``get_weather\\n{...}`` for a first call, with
``>>>`` before each later one. This form is read as llama.cpp reads it: at the very
start of the reply only, ``all\\n`` opens the text and a name, a newline and ``{`` open
a call (``all`` is never a call's name there). A reply that kept its first ``>>>``
(the rendered form) is read too.
"""

from __future__ import annotations

from pedrollm.toolcalls.engine import Opener, ToolCallFormat, Tools
from pedrollm.toolcalls.jsontext import (
    MALFORMED,
    decode_arguments,
    dumps,
    load_lenient,
    scan_value,
)
from pedrollm.toolcalls.markers import NAME
from pedrollm.toolcalls.regions import drop, json_then
from pedrollm.toolcalls.result import Region
from pedrollm.types import InvalidToolCall, ToolCall

PREFIX = ">>>"
ALL = "all\n"
# A first call at the start of a reply: the name, then the arguments' opening brace.
FIRST_CALL = "\n{"


def _call(region: str, name: str, body: str) -> Region:
    body = body.strip()
    if not body or scan_value(body, 0) in (None, MALFORMED):
        return Region(items=[InvalidToolCall(raw=region, error="arguments cut off", name=name)])
    try:
        args = decode_arguments(load_lenient(body))
    except ValueError as exc:
        return Region(items=[InvalidToolCall(raw=region, error=str(exc), name=name)])
    return Region(items=[ToolCall(id="", name=name, args=args)])


def _decode(region: str, head_len: int, tools: Tools) -> Region:
    return _call(region, region[len(PREFIX) : head_len].strip(), region[head_len:])


_json_end = json_then(None)


def _first_call_end(text: str, start: int, head_end: int, final: bool) -> int | None:
    # The head ends with the arguments' ``{``: the JSON value starts on it.
    return _json_end(text, start, head_end - 1, final)


def _decode_first(region: str, head_len: int, tools: Tools) -> Region:
    name = region[: head_len - len(FIRST_CALL)]
    return _call(region, name, region[head_len - 1 :])


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write ``>>>all`` with the content, then ``>>>name`` and the arguments per call."""
    parts = [f"{PREFIX}{ALL}{content}"] if content else []
    parts += [f"{PREFIX}{c.name}\n{dumps(c.args)}" for c in calls]
    return "".join(parts)


FORMAT = ToolCallFormat(
    name="functionary_v3_2",
    openers=(
        drop((PREFIX, ALL)),
        Opener((PREFIX, NAME, "\n"), json_then(None), _decode),
    ),
    start_openers=(
        drop((ALL,)),
        Opener((NAME, FIRST_CALL), _first_call_end, _decode_first),
    ),
    renderer=render,
    description="Functionary v3.2: >>>name\\n{json}, >>>all\\ntext (first >>> optional)",
    aliases=("functionary", "functionary_v3"),
)
