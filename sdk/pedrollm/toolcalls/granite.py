"""IBM Granite 3.x: ``<|tool_call|>[{"name": "f", "arguments": {...}}]``.

The list ends the reply, so the region ends where the JSON does. Granite 3.1 writes
the same list after a plain-text ``<tool_call>`` (not the special token); a
``</tool_call>`` after it carries no text. (Granite 4 uses the hermes format.)

Granite 3.2 with thinking on writes its reasoning in prose: the reply starts with
``Here is my thought process:``, and ``Here is my response:`` ends the thought (both
also as ``Here's``, which quantized models write, as vLLM's reasoning parser reads).
The thought goes to ``reasoning``, the response to content and calls; the same words
anywhere but the reply's start are content. Granite 3.3's ``<think>`` is read too.
"""

from __future__ import annotations

from pedrollm.toolcalls.engine import ToolCallFormat
from pedrollm.toolcalls.jsontext import dumps
from pedrollm.toolcalls.markers import WS
from pedrollm.toolcalls.regions import drop, join_content, json_region
from pedrollm.types import ToolCall

TOOL_CALL = "<|tool_call|>"
TEXT_TOOL_CALL = "<tool_call>"
THOUGHT_STARTS = ("Here is my thought process:", "Here's my thought process:")
RESPONSE_STARTS = ("Here is my response:", "Here's my response:")


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then ``<|tool_call|>`` and the calls as a JSON list."""
    body = dumps([{"name": c.name, "arguments": c.args} for c in calls])
    return join_content(content, [TOOL_CALL + body] if calls else [])


FORMAT = ToolCallFormat(
    name="granite",
    openers=(
        json_region((TOOL_CALL,), None),
        json_region((TEXT_TOOL_CALL,), None),
        drop(("</tool_call>",)),
    ),
    renderer=render,
    start_reasoning=tuple(((WS, start), RESPONSE_STARTS) for start in THOUGHT_STARTS),
    markers=(TOOL_CALL, TEXT_TOOL_CALL, "</tool_call>"),
    description='Granite 3.x: <|tool_call|>[{"name": ..., "arguments": ...}]',
    aliases=("granite3", "granite_3"),
)
