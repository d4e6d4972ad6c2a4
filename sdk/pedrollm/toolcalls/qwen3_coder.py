"""Qwen3-Coder and Qwen3.5: ``<tool_call><function=f><parameter=x>v</parameter></function>``.

Values are bare text; the tool's JSON schema types them (``schema.convert``).
"""

from __future__ import annotations

from pedrollm.toolcalls.engine import ToolCallFormat
from pedrollm.toolcalls.hermes import CLOSE, OPEN, tool_call_opener
from pedrollm.toolcalls.regions import join_content
from pedrollm.toolcalls.xmlcalls import render_function
from pedrollm.types import ToolCall


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then one ``<tool_call><function=...>`` block per call."""
    blocks = [f"{OPEN}\n{render_function(c.name, c.args, newline=True)}\n{CLOSE}" for c in calls]
    return join_content(content, blocks)


FORMAT = ToolCallFormat(
    name="qwen3_coder",
    openers=(tool_call_opener(),),
    renderer=render,
    markers=(OPEN, CLOSE, "<function=", "</function>", "<parameter=", "</parameter>"),
    untyped_values=True,
    json_safe_markers=False,
    description="Qwen3-Coder, Qwen3.5: <tool_call><function=f><parameter=x>",
    aliases=("qwen3_5", "qwen3_xml"),
)
