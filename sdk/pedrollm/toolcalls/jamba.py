"""AI21 Jamba and Tencent Hunyuan: ``<tool_calls>[{"name": ..., "arguments": ...}]</tool_calls>``.

Hunyuan wraps its answer in ``<answer>...</answer>``; those tags carry no text.
"""

from __future__ import annotations

from pedrollm.toolcalls.engine import ToolCallFormat
from pedrollm.toolcalls.jsontext import dumps
from pedrollm.toolcalls.regions import drop, join_content, json_region
from pedrollm.types import ToolCall

OPEN = "<tool_calls>"
CLOSE = "</tool_calls>"


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then the calls as a JSON list between ``<tool_calls>`` tags."""
    body = dumps([{"name": c.name, "arguments": c.args} for c in calls])
    return join_content(content, [f"{OPEN}\n{body}\n{CLOSE}"] if calls else [])


FORMAT = ToolCallFormat(
    name="jamba",
    openers=(json_region((OPEN,), CLOSE), drop(("<answer>",)), drop(("</answer>",))),
    renderer=render,
    markers=(OPEN, CLOSE, "<answer>", "</answer>"),
    description="Jamba, Hunyuan: <tool_calls>[{...}]</tool_calls>",
    aliases=("hunyuan", "hunyuan_a13b"),
)
