"""Hermes / Qwen2.5 / Qwen3: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``.

The ``<tool_call>`` tag is shared with Qwen3-Coder (XML body) and GLM 4.5 (name and
``<arg_key>`` pairs); any of the three bodies is accepted here, so a model whose
template is not the one expected still gets its calls read.
"""

from __future__ import annotations

from pedrollm.toolcalls.engine import Opener, ToolCallFormat, Tools
from pedrollm.toolcalls.jsontext import calls_from_json, dumps
from pedrollm.toolcalls.markers import Pattern
from pedrollm.toolcalls.regions import decoder, join_content, json_then, whole_json_body
from pedrollm.toolcalls.xmlcalls import Items, arg_pairs, function_blocks
from pedrollm.types import ToolCall

OPEN = "<tool_call>"
CLOSE = "</tool_call>"


def tool_call_body(body: str, tools: Tools) -> Items:
    """Decode a ``<tool_call>`` body: JSON, a ``<function=...>`` block or GLM's pairs."""
    lead = body.lstrip()
    if lead.startswith(("{", "[")):
        return calls_from_json(body)
    if lead.startswith("<function="):
        return function_blocks(body, tools, strip_newline=True)
    return arg_pairs(body, tools)


def unclosed_tool_call_body(body: str, tools: Tools) -> Items:
    """A ``<tool_call>`` body the reply ended in: a whole JSON value or a closed
    ``<function=...>`` block. GLM's pairs are refused: nothing says the last was the last.
    """
    lead = body.lstrip()
    if lead.startswith(("{", "[")):
        return whole_json_body(body, tools)
    if lead.startswith("<function="):
        return function_blocks(body, tools, strip_newline=True, strict=True)
    return []


def tool_call_opener(pattern: Pattern = (OPEN,)) -> Opener:
    """The opener for ``<tool_call>...</tool_call>`` regions."""
    return Opener(
        pattern, json_then(CLOSE), decoder(CLOSE, tool_call_body, unclosed_tool_call_body)
    )


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then one ``<tool_call>`` block per call."""
    blocks = [f"{OPEN}\n{dumps({'name': c.name, 'arguments': c.args})}\n{CLOSE}" for c in calls]
    return join_content(content, blocks)


FORMAT = ToolCallFormat(
    name="hermes",
    openers=(tool_call_opener(),),
    renderer=render,
    markers=(OPEN, CLOSE),
    description="Hermes 2 Pro, Qwen2.5, Qwen3, QwQ, Granite 4: <tool_call>{json}</tool_call>",
    aliases=("qwen", "qwen2_5", "qwen3"),
)
