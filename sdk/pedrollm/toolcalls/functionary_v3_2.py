"""Functionary v3.2: ``>>>get_weather\\n{"city": "Paris"}``; text comes as ``>>>all\\n...``.

The prompt usually ends with ``>>>``; a server that strips it from the reply leaves
``all\\n...`` or ``name\\n{...}`` at the start, which this parser does not guess at.
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
from pedrollm.toolcalls.result import ParseResult, Region
from pedrollm.types import InvalidToolCall, ToolCall, ToolDefinition

PREFIX = ">>>"


def _decode(region: str, head_len: int, tools: Tools) -> Region:
    name = region[len(PREFIX) : head_len].strip()
    body = region[head_len:].strip()
    if not body or scan_value(body, 0) in (None, MALFORMED):
        return Region(items=[InvalidToolCall(raw=region, error="arguments cut off", name=name)])
    try:
        args = decode_arguments(load_lenient(body))
    except ValueError as exc:
        return Region(items=[InvalidToolCall(raw=region, error=str(exc), name=name)])
    return Region(items=[ToolCall(id="", name=name, args=args)])


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write ``>>>all`` with the content, then ``>>>name`` and the arguments per call."""
    parts = [f"{PREFIX}all\n{content}"] if content else []
    parts += [f"{PREFIX}{c.name}\n{dumps(c.args)}" for c in calls]
    return "".join(parts)


FORMAT = ToolCallFormat(
    name="functionary_v3_2",
    openers=(
        drop((PREFIX, "all\n")),
        Opener((PREFIX, NAME, "\n"), json_then(None), _decode),
    ),
    renderer=render,
    description="Functionary v3.2: >>>name\\n{json}, >>>all\\ntext",
    aliases=("functionary", "functionary_v3"),
)


def parse(text: str, tools: list[ToolDefinition] | None = None) -> ParseResult:
    """Parse a reply written in the Functionary v3.2 format."""
    return FORMAT.parse(text, tools)
