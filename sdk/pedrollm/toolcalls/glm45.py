"""GLM 4.5 / 4.6 / 4.7: ``<tool_call>f<arg_key>x</arg_key><arg_value>v</arg_value></tool_call>``.

Values are bare text; the tool's JSON schema types them (``schema.convert``).
"""

from __future__ import annotations

from pedrollm.toolcalls.engine import ToolCallFormat
from pedrollm.toolcalls.hermes import CLOSE, OPEN, tool_call_opener
from pedrollm.toolcalls.regions import join_content
from pedrollm.toolcalls.xmlcalls import value_text
from pedrollm.types import ToolCall


def _block(call: ToolCall) -> str:
    pairs = "".join(
        f"<arg_key>{k}</arg_key>\n<arg_value>{value_text(v)}</arg_value>\n"
        for k, v in call.args.items()
    )
    return f"{OPEN}{call.name}\n{pairs}{CLOSE}"


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then one ``<tool_call>name<arg_key>...`` block per call."""
    return join_content(content, [_block(c) for c in calls])


FORMAT = ToolCallFormat(
    name="glm45",
    openers=(tool_call_opener(),),
    renderer=render,
    markers=(OPEN, CLOSE, "<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>"),
    untyped_values=True,
    json_safe_markers=False,
    description="GLM 4.5, 4.6, 4.7: <tool_call>name<arg_key>k</arg_key><arg_value>v</arg_value>",
    aliases=("glm4_5", "glm", "glm4_moe"),
)
