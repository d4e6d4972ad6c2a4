"""Cohere Command R7B: ``<|START_ACTION|>[{"tool_call_id": "0", "tool_name": "f",
"parameters": {...}}]<|END_ACTION|>``.

Thinking is ``<|START_THINKING|>...<|END_THINKING|>``; the response wrapper tags
carry no text of their own, nor do Command A's (Cohere 2) ``<|START_TEXT|>`` and
``<|END_TEXT|>`` around the text it writes before an action. Ids come from
``tool_call_id``.
"""

from __future__ import annotations

from pedrollm.toolcalls.engine import ToolCallFormat
from pedrollm.toolcalls.jsontext import dumps
from pedrollm.toolcalls.regions import drop, join_content, json_region
from pedrollm.types import ToolCall

START_ACTION = "<|START_ACTION|>"
END_ACTION = "<|END_ACTION|>"
START_RESPONSE = "<|START_RESPONSE|>"
END_RESPONSE = "<|END_RESPONSE|>"
START_TEXT = "<|START_TEXT|>"
END_TEXT = "<|END_TEXT|>"


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then the action list with each call's id."""
    body = dumps(
        [
            {"tool_call_id": c.id or f"call_{i}", "tool_name": c.name, "parameters": c.args}
            for i, c in enumerate(calls)
        ]
    )
    return join_content(content, [START_ACTION + body + END_ACTION] if calls else [])


FORMAT = ToolCallFormat(
    name="command_r7b",
    openers=(
        json_region((START_ACTION,), END_ACTION),
        drop((START_RESPONSE,)),
        drop((END_RESPONSE,)),
        drop((START_TEXT,)),
        drop((END_TEXT,)),
    ),
    renderer=render,
    reasoning=(("<|START_THINKING|>", "<|END_THINKING|>"),),
    markers=(START_ACTION, END_ACTION, START_RESPONSE, END_RESPONSE, START_TEXT, END_TEXT),
    description="Command R7B, Command A: <|START_ACTION|>[{tool_call_id, tool_name, parameters}]",
    aliases=("command_r", "cohere", "command_a"),
)
