"""Seed-OSS: ``<seed:tool_call><function=f><parameter=x>v</parameter></function></seed:tool_call>``.

Reasoning is ``<seed:think>...</seed:think>``. Values are bare text; the tool's JSON
schema types them (``schema.convert``).
"""

from __future__ import annotations

from pedrollm.toolcalls.engine import Opener, ToolCallFormat, Tools
from pedrollm.toolcalls.regions import Items, decoder, join_content, until
from pedrollm.toolcalls.xmlcalls import function_blocks, render_function
from pedrollm.types import ToolCall

OPEN = "<seed:tool_call>"
CLOSE = "</seed:tool_call>"


def _body(body: str, tools: Tools) -> Items:
    return function_blocks(body, tools, strip_newline=True)


def _unclosed_body(body: str, tools: Tools) -> Items:
    return function_blocks(body, tools, strip_newline=True, strict=True)


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then one ``<seed:tool_call>`` block per call."""
    blocks = [f"{OPEN}\n{render_function(c.name, c.args, newline=True)}\n{CLOSE}" for c in calls]
    return join_content(content, blocks)


FORMAT = ToolCallFormat(
    name="seed_oss",
    openers=(Opener((OPEN,), until(CLOSE), decoder(CLOSE, _body, _unclosed_body)),),
    renderer=render,
    reasoning=(("<seed:think>", "</seed:think>"),),
    markers=(OPEN, CLOSE, "<function=", "</function>", "<parameter=", "</parameter>"),
    untyped_values=True,
    json_safe_markers=False,
    description="Seed-OSS: <seed:tool_call><function=f><parameter=x>",
    aliases=("seed", "seed_oss_36b"),
)
