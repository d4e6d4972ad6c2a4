"""MiniMax-M2: ``<minimax:tool_call><invoke name="f"><parameter name="x">v</parameter></invoke>``.

Values are bare text; the tool's JSON schema types them (``schema.convert``).
"""

from __future__ import annotations

from pedrollm.toolcalls.engine import Opener, ToolCallFormat, Tools
from pedrollm.toolcalls.regions import decoder, join_content, until
from pedrollm.toolcalls.xmlcalls import Items, invoke_blocks, value_text
from pedrollm.types import ToolCall

OPEN = "<minimax:tool_call>"
CLOSE = "</minimax:tool_call>"


def _invoke(call: ToolCall) -> str:
    params = "".join(
        f'<parameter name="{k}">{value_text(v)}</parameter>\n' for k, v in call.args.items()
    )
    return f'<invoke name="{call.name}">\n{params}</invoke>\n'


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then one ``<minimax:tool_call>`` block holding every call."""
    body = "".join(_invoke(c) for c in calls)
    return join_content(content, [f"{OPEN}\n{body}{CLOSE}"] if calls else [])


def _unclosed_body(body: str, tools: Tools) -> Items:
    # Whole invokes only: the reply ended after one's ``</invoke>``.
    if not body.rstrip().endswith("</invoke>"):
        return []
    return invoke_blocks(body, tools)


FORMAT = ToolCallFormat(
    name="minimax_m2",
    openers=(Opener((OPEN,), until(CLOSE), decoder(CLOSE, invoke_blocks, _unclosed_body)),),
    renderer=render,
    markers=(OPEN, CLOSE, "<invoke", "</invoke>", "<parameter", "</parameter>"),
    untyped_values=True,
    json_safe_markers=False,
    description='MiniMax-M2: <minimax:tool_call><invoke name="f"><parameter name="x">',
    aliases=("minimax", "minimax_m2_1", "minimax_m2_5"),
)
