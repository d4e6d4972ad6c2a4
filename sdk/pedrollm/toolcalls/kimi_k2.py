"""Kimi K2: calls in a section, each with an id ``functions.<name>:<index>``::

<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0
<|tool_call_argument_begin|>{"city": "Paris"}<|tool_call_end|><|tool_calls_section_end|>
"""

from __future__ import annotations

from pedrollm.toolcalls.engine import Opener, ToolCallFormat, Tools
from pedrollm.toolcalls.jsontext import decode_arguments, dumps, load_lenient
from pedrollm.toolcalls.regions import join_content, spans, until
from pedrollm.toolcalls.result import Region
from pedrollm.types import InvalidToolCall, ToolCall

SECTION_BEGIN = "<|tool_calls_section_begin|>"
SECTION_END = "<|tool_calls_section_end|>"
# Some checkpoints spell the section tokens in the singular.
SECTION_BEGIN_1 = "<|tool_call_section_begin|>"
SECTION_END_1 = "<|tool_call_section_end|>"
CALL_BEGIN = "<|tool_call_begin|>"
ARG_BEGIN = "<|tool_call_argument_begin|>"
CALL_END = "<|tool_call_end|>"


def name_from_id(call_id: str) -> str:
    """Return ``get_weather`` from ``functions.get_weather:0``."""
    head = call_id.rsplit(":", 1)[0] if ":" in call_id else call_id
    return head[len("functions.") :] if head.startswith("functions.") else head


def _decode(region: str, head_len: int, tools: Tools) -> Region:
    items: list[ToolCall | InvalidToolCall] = []
    for inner in spans(region, CALL_BEGIN, CALL_END):
        if isinstance(inner, InvalidToolCall):
            items.append(inner)
            continue
        call_id, sep, args_text = inner.partition(ARG_BEGIN)
        call_id = call_id.strip()
        name = name_from_id(call_id)
        if not sep or not name:
            items.append(
                InvalidToolCall(raw=inner, error="expected id<|tool_call_argument_begin|>")
            )
            continue
        try:
            args = decode_arguments(load_lenient(args_text.strip()))
        except ValueError as exc:
            items.append(InvalidToolCall(raw=inner, error=str(exc), name=name, id=call_id))
            continue
        items.append(ToolCall(id=call_id, name=name, args=args))
    if not items:
        items.append(InvalidToolCall(raw=region, error="no tool call in the section"))
    return Region(items=items)


def kimi_id(index: int, call: ToolCall) -> str:
    """Kimi's id for the call at ``index``: ``functions.<name>:<index>``."""
    return f"functions.{call.name}:{index}"


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then one section holding every call with its Kimi id."""
    inner = "".join(
        f"{CALL_BEGIN}{c.id or kimi_id(i, c)}{ARG_BEGIN}{dumps(c.args)}{CALL_END}"
        for i, c in enumerate(calls)
    )
    return join_content(content, [SECTION_BEGIN + inner + SECTION_END] if calls else [])


FORMAT = ToolCallFormat(
    name="kimi_k2",
    openers=(
        Opener((SECTION_BEGIN,), until(SECTION_END), _decode),
        Opener((SECTION_BEGIN_1,), until(SECTION_END_1), _decode),
    ),
    renderer=render,
    markers=(
        SECTION_BEGIN,
        SECTION_END,
        SECTION_BEGIN_1,
        SECTION_END_1,
        CALL_BEGIN,
        ARG_BEGIN,
        CALL_END,
    ),  # fmt: skip
    json_safe_markers=False,
    id_for=kimi_id,
    description="Kimi K2: <|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{json}",
    aliases=("kimi", "kimi_k2_thinking"),
)
