"""Llama 3.1 built-in tools: ``<|python_tag|>brave_search.call(query="x")``.

One call per reply. Code for the interpreter (``<|python_tag|>`` then Python,
ended by ``<|eom_id|>``) becomes a call of ``python`` with ``{"code": ...}``.
"""

from __future__ import annotations

from pedrollm.toolcalls.engine import ToolCallFormat
from pedrollm.toolcalls.llama3_json import (
    BARE_OPENERS,
    END_OPENERS,
    END_TOKENS,
    PYTHON_TAG,
    PYTHON_TAG_OPENER,
)
from pedrollm.toolcalls.pyliterals import render_call
from pedrollm.toolcalls.regions import join_content
from pedrollm.types import ToolCall


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then ``<|python_tag|>name.call(k=v)`` for the (single) call."""
    blocks = [PYTHON_TAG + render_call(f"{c.name}.call", c.args) for c in calls[:1]]
    return join_content(content, blocks)


FORMAT = ToolCallFormat(
    name="llama3_builtin",
    openers=(PYTHON_TAG_OPENER, *BARE_OPENERS, *END_OPENERS),
    renderer=render,
    markers=(PYTHON_TAG, *END_TOKENS),
    max_calls=1,
    identifier_names=True,
    description="Llama 3.1 built-in tools: <|python_tag|>tool.call(query=...)",
)
