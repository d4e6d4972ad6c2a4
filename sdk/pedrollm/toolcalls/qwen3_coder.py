"""Qwen3-Coder and Qwen3.5: ``<tool_call><function=f><parameter=x>v</parameter></function>``.

Values are bare text; the tool's JSON schema types them (``schema.convert``). A value
ends at the ``</parameter>`` that the next ``<parameter=`` or ``</function>`` follows,
so code or XML holding those tags is read whole (``xmlcalls.value_end``).

Models also write the ``<function=...>`` block with no ``<tool_call>`` around it; it
is read the same. Qwen3.5's prompt opens the think block, and the model may write its
``<tool_call>`` before closing it: those calls are read (the block goes on after).
"""

from __future__ import annotations

from pedrollm.toolcalls.engine import Opener, ToolCallFormat, Tools
from pedrollm.toolcalls.hermes import CLOSE, OPEN, tool_call_opener
from pedrollm.toolcalls.markers import NAME
from pedrollm.toolcalls.regions import join_content, unterminated
from pedrollm.toolcalls.result import Region
from pedrollm.toolcalls.xmlcalls import (
    FUNCTION_CLOSE,
    function_blocks,
    function_end,
    render_function,
)
from pedrollm.types import ToolCall


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then one ``<tool_call><function=...>`` block per call."""
    blocks = [f"{OPEN}\n{render_function(c.name, c.args, newline=True)}\n{CLOSE}" for c in calls]
    return join_content(content, blocks)


def _bare_function(region: str, head_len: int, tools: Tools) -> Region:
    if not region.endswith(FUNCTION_CLOSE):
        return unterminated(region, FUNCTION_CLOSE)
    # No outer closing tag vouches for the block: every value must have closed as
    # the layout does, or a reply cut inside a value would yield a wrong call.
    return Region(items=function_blocks(region, tools, strip_newline=True, strict=True))


FORMAT = ToolCallFormat(
    name="qwen3_coder",
    openers=(
        tool_call_opener(),
        Opener(("<function=", NAME, ">"), function_end, _bare_function),
    ),
    reasoning_openers=(tool_call_opener(),),
    renderer=render,
    markers=(OPEN, CLOSE, "<function=", "</function>", "<parameter=", "</parameter>"),
    untyped_values=True,
    json_safe_markers=False,
    description="Qwen3-Coder, Qwen3.5: <tool_call><function=f><parameter=x>",
    aliases=("qwen3_5", "qwen3_xml"),
)
