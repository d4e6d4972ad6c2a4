"""Kimi K2: calls in a section, each with an id ``functions.<name>:<index>``::

<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0
<|tool_call_argument_begin|>{"city": "Paris"}<|tool_call_end|><|tool_calls_section_end|>

An id that is not ``functions.<name>:<index>`` (``functions.invalid.0``) makes the
call refused. Kimi-K2-Thinking writes its calls before closing ``<think>``: a section
inside an open think block is read, and the block goes on after it. A reply that
ends inside the section (its end tokens cut off) keeps the calls whose arguments are
whole.
"""

from __future__ import annotations

import re

from pedrollm.toolcalls.engine import Opener, ToolCallFormat, Tools
from pedrollm.toolcalls.jsontext import decode_arguments, dumps, load_lenient, scan_value
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


# ``functions.<name>:<index>``; the ``functions.`` prefix is sometimes left out.
_ID = re.compile(r"(?:functions\.)?([A-Za-z0-9_\-.]+):(\d+)")


def name_from_id(call_id: str) -> str | None:
    """Return ``get_weather`` from ``functions.get_weather:0``; None if the id is malformed."""
    m = _ID.fullmatch(call_id)
    return m.group(1) if m else None


def _one_call(inner: str, whole: bool) -> ToolCall | InvalidToolCall:
    call_id, sep, args_text = inner.partition(ARG_BEGIN)
    call_id = call_id.strip()
    if not sep:
        return InvalidToolCall(raw=inner, error="expected id<|tool_call_argument_begin|>")
    name = name_from_id(call_id)
    if name is None:
        return InvalidToolCall(
            raw=inner, error=f"malformed call id {call_id!r} (expected functions.NAME:INDEX)"
        )
    args_text = args_text.strip()
    if whole and not (args_text.startswith("{") and scan_value(args_text, 0) == len(args_text)):
        return InvalidToolCall(raw=inner, error=f"tool call cut off before {CALL_END}", name=name)
    try:
        args = decode_arguments(load_lenient(args_text))
    except ValueError as exc:
        return InvalidToolCall(raw=inner, error=str(exc), name=name, id=call_id)
    return ToolCall(id=call_id, name=name, args=args)


def _decode(region: str, head_len: int, tools: Tools) -> Region:
    closed = region.endswith((SECTION_END, SECTION_END_1))
    items: list[ToolCall | InvalidToolCall] = []
    for inner in spans(region, CALL_BEGIN, CALL_END):
        if isinstance(inner, InvalidToolCall):
            # The last call of a reply that ended without its end tokens counts when
            # its arguments are whole.
            cut = _one_call(inner.raw[len(CALL_BEGIN) :], whole=True) if not closed else inner
            items.append(cut if isinstance(cut, ToolCall) else inner)
            continue
        items.append(_one_call(inner, whole=False))
    if not items:
        items.append(InvalidToolCall(raw=region, error="no tool call in the section"))
    return Region(items=items, unclosed=not closed)


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


SECTIONS = (
    Opener((SECTION_BEGIN,), until(SECTION_END), _decode),
    Opener((SECTION_BEGIN_1,), until(SECTION_END_1), _decode),
)

FORMAT = ToolCallFormat(
    name="kimi_k2",
    openers=SECTIONS,
    reasoning_openers=SECTIONS,
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
