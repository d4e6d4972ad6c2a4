"""DeepSeek V3.1: ``<｜tool▁call▁begin｜>name<｜tool▁sep｜>{json}<｜tool▁call▁end｜>``
inside ``<｜tool▁calls▁begin｜>...<｜tool▁calls▁end｜>``. R1's fenced layout is read too,
and so are the other spellings of the begin token (see deepseek_r1). V3.2 writes
DSML instead (see deepseek_v3_2).
"""

from __future__ import annotations

from pedrollm.toolcalls.deepseek_r1 import (
    CALL_BEGIN,
    CALL_END,
    CALLS_BEGIN,
    CALLS_END,
    MARKERS,
    OPENERS,
    SEP,
)
from pedrollm.toolcalls.engine import ToolCallFormat
from pedrollm.toolcalls.jsontext import dumps
from pedrollm.toolcalls.regions import join_content
from pedrollm.types import ToolCall


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then the calls in V3.1's layout."""
    inner = "".join(f"{CALL_BEGIN}{c.name}{SEP}{dumps(c.args)}{CALL_END}" for c in calls)
    return join_content(content, [CALLS_BEGIN + inner + CALLS_END] if calls else [])


FORMAT = ToolCallFormat(
    name="deepseek_v3_1",
    openers=OPENERS,
    renderer=render,
    markers=MARKERS,
    json_safe_markers=False,
    description="DeepSeek V3.1: <｜tool▁call▁begin｜>name<｜tool▁sep｜>{json}",
    aliases=("deepseek_v31",),
)
