"""Mistral tokenizer v11+ (Mistral Small 3.2, Devstral, Magistral, Ministral 3):
``[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}``, optionally with ``[CALL_ID]id``.

Each call repeats ``[TOOL_CALLS]``; the older list form is read as well.
"""

from __future__ import annotations

from pedrollm.toolcalls.engine import ToolCallFormat
from pedrollm.toolcalls.jsontext import dumps
from pedrollm.toolcalls.mistral import ARGS, CALL_ID, MARKERS, OPENER, REASONING, TOOL_CALLS
from pedrollm.toolcalls.regions import join_content
from pedrollm.types import ToolCall


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then ``[TOOL_CALLS]name[CALL_ID]id[ARGS]{...}`` per call."""
    blocks = [
        f"{TOOL_CALLS}{c.name}{CALL_ID}{c.id or f'call_{i}'}{ARGS}{dumps(c.args)}"
        for i, c in enumerate(calls)
    ]
    return join_content(content, ["".join(blocks)] if blocks else [], sep="")


FORMAT = ToolCallFormat(
    name="mistral_v11",
    openers=(OPENER,),
    renderer=render,
    reasoning=REASONING,
    markers=MARKERS,
    description="Mistral (tokenizer v11+): [TOOL_CALLS]name[CALL_ID]id[ARGS]{...}",
    aliases=("mistral_small_3_2", "devstral", "magistral", "ministral"),
)
