"""FireFunction v2 and Phi-4-mini: `` functools[{"name": ..., "arguments": ...}]``."""

from __future__ import annotations

from pedrollm.toolcalls.engine import Opener, ToolCallFormat, Tools
from pedrollm.toolcalls.jsontext import MALFORMED, calls_from_json, dumps, scan_value
from pedrollm.toolcalls.markers import WS
from pedrollm.toolcalls.regions import join_content
from pedrollm.toolcalls.result import Region
from pedrollm.types import InvalidToolCall, ToolCall

FUNCTOOLS = "functools"


def _find_end(text: str, start: int, head_end: int, final: bool) -> int | None:
    # The marker's pattern ends on the list's opening bracket.
    end = scan_value(text, head_end - 1)
    if end is None:
        return len(text) if final else None
    return len(text) if end == MALFORMED else end


def _decode(region: str, head_len: int, tools: Tools) -> Region:
    body = region[head_len - 1 :]
    if scan_value(body, 0) != len(body):
        return Region(items=[InvalidToolCall(raw=region, error="tool call list cut off")])
    return Region(items=calls_from_json(body))


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then `` functools[...]`` with the calls."""
    body = dumps([{"name": c.name, "arguments": c.args} for c in calls])
    return join_content(content, [f" {FUNCTOOLS}{body}"] if calls else [], sep="")


FORMAT = ToolCallFormat(
    name="firefunction",
    openers=(Opener((FUNCTOOLS, WS, "["), _find_end, _decode),),
    renderer=render,
    description="FireFunction v2, Phi-4-mini: functools[{...}]",
    aliases=("firefunction_v2", "phi4_mini", "phi_4_mini"),
)
