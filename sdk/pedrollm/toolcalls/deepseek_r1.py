"""DeepSeek R1 (and V3 0324): calls inside DeepSeek's tool-call tokens, JSON fenced::

    <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather
    ```json
    {"city": "Paris"}
    ```<｜tool▁call▁end｜><｜tool▁calls▁end｜>

The V3.1 layout (``name<｜tool▁sep｜>{json}``, see deepseek_v3_1) is read as well.
R1's prompt usually opens the think block, so pass ``think_open=True`` for it.

Models that do not have the tokens as special tokens (the R1 distills of Qwen) spell
the section's begin token other ways; the ones llama.cpp accepts are read too:
``<｜tool_calls_begin｜>``, ``<｜tool calls begin｜>``, ``<｜tool\\_calls\\_begin｜>`` and
``<｜tool▁calls｜>``. The other tokens are read only as spelled above (llama.cpp's
grammar writes them once the begin token has appeared).
"""

from __future__ import annotations

import re

from pedrollm.toolcalls.engine import Opener, ToolCallFormat, Tools
from pedrollm.toolcalls.jsontext import decode_arguments, dumps, load_lenient, scan_value
from pedrollm.toolcalls.regions import join_content, spans, until
from pedrollm.toolcalls.result import Region
from pedrollm.types import InvalidToolCall, ToolCall

CALLS_BEGIN = "<｜tool▁calls▁begin｜>"
CALLS_END = "<｜tool▁calls▁end｜>"
CALL_BEGIN = "<｜tool▁call▁begin｜>"
CALL_END = "<｜tool▁call▁end｜>"
SEP = "<｜tool▁sep｜>"
MARKERS = (CALLS_BEGIN, CALLS_END, CALL_BEGIN, CALL_END, SEP)
# Other spellings of CALLS_BEGIN that models write and llama.cpp's parser accepts.
CALLS_BEGIN_VARIANTS = (
    "<｜tool_calls_begin｜>",
    "<｜tool calls begin｜>",
    "<｜tool\\_calls\\_begin｜>",
    "<｜tool▁calls｜>",
)

# The name's line and the opening fence; the closing fence ends the text.
_FENCE_HEAD = re.compile(r"\s*([^\n]+?)\s*\n\s*```(?:json)?\s*\n")
FENCE = "```"


def _fenced(right: str) -> tuple[str, str] | None:
    """The name and the JSON of R1's ``name\n```json\n{...}\n```` ``, or None.

    The closing fence usually has a line of its own; models also close it on the
    JSON's last line (``{"a": 1}```), which both peers read.
    """
    m = _FENCE_HEAD.match(right)
    if m is None:
        return None
    rest = right[m.end() :].rstrip()
    if not rest.endswith(FENCE):
        return None
    return m.group(1), rest[: -len(FENCE)]


def _one_call(inner: str, whole: bool = False) -> ToolCall | InvalidToolCall:
    left, sep, right = inner.partition(SEP)
    if not sep:
        return InvalidToolCall(raw=inner, error=f"no {SEP} in tool call")
    fenced = _fenced(right) if left.strip() == "function" else None
    if fenced is not None:
        name, args_text = fenced
    else:
        name, args_text = left.strip(), right
    if not name:
        return InvalidToolCall(raw=inner, error="tool call has no name")
    bare = args_text.strip()
    if whole and not (bare.startswith("{") and scan_value(bare, 0) == len(bare)):
        return InvalidToolCall(raw=inner, error=f"tool call cut off before {CALL_END}", name=name)
    try:
        args = decode_arguments(load_lenient(args_text.strip()))
    except ValueError as exc:
        return InvalidToolCall(raw=inner, error=str(exc), name=name)
    return ToolCall(id="", name=name, args=args)


def decode_calls(body: str, closed: bool = True) -> list[ToolCall | InvalidToolCall]:
    """Decode the ``<｜tool▁call▁begin｜>...<｜tool▁call▁end｜>`` calls of a body in order.

    In a body the reply ended in (not ``closed``) a last call cut off before its end
    token counts when its arguments are whole.
    """
    items: list[ToolCall | InvalidToolCall] = []
    for span in spans(body, CALL_BEGIN, CALL_END):
        if isinstance(span, InvalidToolCall):
            cut = _one_call(span.raw[len(CALL_BEGIN) :], whole=True) if not closed else span
            items.append(cut if isinstance(cut, ToolCall) else span)
        else:
            items.append(_one_call(span))
    return items


def _decode_section(region: str, head_len: int, tools: Tools) -> Region:
    closed = region.endswith(CALLS_END)
    items = decode_calls(region, closed)
    if not items:
        return Region(items=[InvalidToolCall(raw=region, error="no tool call in the section")])
    return Region(items=items, unclosed=not closed)


def _decode_single(region: str, head_len: int, tools: Tools) -> Region:
    closed = region.endswith(CALL_END)
    return Region(items=decode_calls(region, closed), unclosed=not closed)


OPENERS = (
    *(
        Opener((begin,), until(CALLS_END), _decode_section)
        for begin in (CALLS_BEGIN, *CALLS_BEGIN_VARIANTS)
    ),
    Opener((CALL_BEGIN,), until(CALL_END), _decode_single),
    # A stray end token (a server that split the section) carries no text.
    Opener((CALLS_END,), lambda t, s, h, f: h, lambda r, n, t: Region()),
)


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then the calls in R1's fenced layout."""
    inner = "".join(
        f"{CALL_BEGIN}function{SEP}{c.name}\n```json\n{dumps(c.args)}\n```{CALL_END}" for c in calls
    )
    return join_content(content, [CALLS_BEGIN + inner + CALLS_END] if calls else [])


FORMAT = ToolCallFormat(
    name="deepseek_r1",
    openers=OPENERS,
    renderer=render,
    markers=MARKERS,
    json_safe_markers=False,
    description="DeepSeek R1 / V3: <｜tool▁call▁begin｜>function<｜tool▁sep｜>name ```json ...```",
    aliases=("deepseek", "deepseek_v3", "deepseek_r1_0528"),
)
