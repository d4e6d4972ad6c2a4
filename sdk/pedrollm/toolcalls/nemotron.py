"""NVIDIA Nemotron (Nano v2, Llama-Nemotron).

``<TOOLCALL>[{"name": ..., "arguments": ...}]</TOOLCALL>``
"""

from __future__ import annotations

from pedrollm.toolcalls.engine import ToolCallFormat
from pedrollm.toolcalls.jsontext import dumps
from pedrollm.toolcalls.regions import join_content, json_region
from pedrollm.types import ToolCall

OPEN = "<TOOLCALL>"
CLOSE = "</TOOLCALL>"


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then the calls as a JSON list between ``<TOOLCALL>`` tags."""
    body = dumps([{"name": c.name, "arguments": c.args} for c in calls])
    return join_content(content, [OPEN + body + CLOSE] if calls else [])


FORMAT = ToolCallFormat(
    name="nemotron",
    openers=(json_region((OPEN,), CLOSE),),
    renderer=render,
    markers=(OPEN, CLOSE),
    description="Nemotron: <TOOLCALL>[{...}]</TOOLCALL>",
    aliases=("nemotron_nano", "llama_nemotron"),
)
