"""Functionary v3.1 (Llama 3.1 based): ``<function=get_weather>{"city": "Paris"}</function>``.

Code for the interpreter comes as ``<|python_tag|>...`` (see llama3_builtin).
"""

from __future__ import annotations

from pedrollm.toolcalls.engine import Opener, ToolCallFormat, Tools
from pedrollm.toolcalls.jsontext import decode_arguments, dumps, load_lenient
from pedrollm.toolcalls.llama3_json import PYTHON_TAG_OPENER
from pedrollm.toolcalls.markers import NAME
from pedrollm.toolcalls.regions import body_of, join_content, json_then, unterminated
from pedrollm.toolcalls.result import Region
from pedrollm.types import InvalidToolCall, ToolCall

OPEN = "<function="
CLOSE = "</function>"


def _decode(region: str, head_len: int, tools: Tools) -> Region:
    name = region[len(OPEN) : head_len - 1]
    body, closed = body_of(region, head_len, CLOSE)
    if not closed:
        return unterminated(region, CLOSE)
    try:
        args = decode_arguments(load_lenient(body.strip()))
    except ValueError as exc:
        return Region(items=[InvalidToolCall(raw=region, error=str(exc), name=name)])
    return Region(items=[ToolCall(id="", name=name, args=args)])


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then ``<function=name>{json}</function>`` per call."""
    blocks = [f"{OPEN}{c.name}>{dumps(c.args)}{CLOSE}" for c in calls]
    return join_content(content, ["".join(blocks)] if blocks else [])


FORMAT = ToolCallFormat(
    name="functionary_v3_1",
    openers=(Opener((OPEN, NAME, ">"), json_then(CLOSE), _decode), PYTHON_TAG_OPENER),
    renderer=render,
    markers=(CLOSE, "<|python_tag|>"),
    description="Functionary v3.1 (Llama 3.1): <function=name>{json}</function>",
    aliases=("functionary_v3_1_llama_3_1", "functionary_llama"),
)
