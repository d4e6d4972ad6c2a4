"""DeepSeek V3.2: calls in DSML, an XML layout with DeepSeek's ``｜`` brackets::

    <｜DSML｜function_calls>
    <｜DSML｜invoke name="get_weather">
    <｜DSML｜parameter name="city" string="true">Paris</｜DSML｜parameter>
    <｜DSML｜parameter name="days" string="false">3</｜DSML｜parameter>
    </｜DSML｜invoke>
    </｜DSML｜function_calls>

``string="true"`` marks a value taken as written; ``string="false"`` one written as
JSON (a value that is not JSON makes the call refused). A parameter without the
attribute is typed by the tool's schema like the other XML formats. Content comes
first, two newlines before the block. The ``<｜DSML｜tool_calls>`` spelling of the
section (later checkpoints) is read too. Thinking is ``<think>...</think>``.
"""

from __future__ import annotations

import re
from typing import Any

from pedrollm.toolcalls.engine import Opener, ToolCallFormat, Tools
from pedrollm.toolcalls.jsontext import dumps, load_lenient, skip_ws
from pedrollm.toolcalls.regions import Items, decoder, join_content, until
from pedrollm.toolcalls.schema import convert, param_schema
from pedrollm.types import InvalidToolCall, ToolCall

DSML = "｜DSML｜"
SECTIONS = (("<｜DSML｜function_calls>", "</｜DSML｜function_calls>"),
            ("<｜DSML｜tool_calls>", "</｜DSML｜tool_calls>"))  # fmt: skip
INVOKE_END = "</｜DSML｜invoke>"
PARAM_END = "</｜DSML｜parameter>"
_INVOKE = re.compile(r'<｜DSML｜invoke\s+name="([^"]*)"\s*>')
_PARAM = re.compile(r'<｜DSML｜parameter\s+name="([^"]*)"(?:\s+string="(true|false)")?\s*>')


def _value(raw: str, typed: str | None, schema: dict[str, Any] | None) -> Any:
    if typed == "true":
        return raw
    if typed == "false":
        return load_lenient(raw.strip())
    return convert(raw, schema)


def invokes(body: str, tools: Tools) -> Items:
    """Decode the ``<｜DSML｜invoke>`` calls of a section body, in order."""
    items: Items = []
    pos = 0
    while (m := _INVOKE.search(body, pos)) is not None:
        name = m.group(1).strip()
        end = body.find(INVOKE_END, m.end())
        if end < 0:
            items.append(InvalidToolCall(raw=body[m.start() :], error="invoke cut off", name=name))
            break
        pos = end + len(INVOKE_END)
        inner = body[m.end() : end]
        args: dict[str, Any] = {}
        error = ""
        at = 0
        while (p := skip_ws(inner, at)) < len(inner):
            pm = _PARAM.match(inner, p)
            v_end = inner.find(PARAM_END, pm.end()) if pm else -1
            if pm is None or v_end < 0:
                error = "unexpected text inside invoke" if pm is None else "parameter cut off"
                break
            key = pm.group(1)
            try:
                args[key] = _value(
                    inner[pm.end() : v_end], pm.group(2), param_schema(tools.get(name), key)
                )
            except ValueError as exc:
                error = f"parameter {key!r} is marked JSON but is not: {exc}"
                break
            at = v_end + len(PARAM_END)
        if error or not name:
            raw = body[m.start() : pos]
            items.append(InvalidToolCall(raw=raw, error=error or "invoke has no name", name=name))
        else:
            items.append(ToolCall(id="", name=name, args=args))
    if not items:
        items.append(InvalidToolCall(raw=body, error="no invoke in the tool calls"))
    return items


def _unclosed(body: str, tools: Tools) -> Items:
    # Whole invokes only: the reply ended right after one's closing tag.
    return invokes(body, tools) if body.rstrip().endswith(INVOKE_END) else []


def _param(key: str, value: Any) -> str:
    if isinstance(value, str):
        return f'<{DSML}parameter name="{key}" string="true">{value}{PARAM_END}\n'
    return f'<{DSML}parameter name="{key}" string="false">{dumps(value)}{PARAM_END}\n'


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write content, then the section with one invoke per call."""
    open_, close = SECTIONS[0]
    body = "".join(
        f'<{DSML}invoke name="{c.name}">\n'
        + "".join(_param(k, v) for k, v in c.args.items())
        + f"{INVOKE_END}\n"
        for c in calls
    )
    return join_content(content, [f"{open_}\n{body}{close}"] if calls else [], sep="\n\n")


FORMAT = ToolCallFormat(
    name="deepseek_v3_2",
    openers=tuple(Opener((o,), until(c), decoder(c, invokes, _unclosed)) for o, c in SECTIONS),
    renderer=render,
    markers=(
        *(m for pair in SECTIONS for m in pair),
        f"<{DSML}invoke",
        INVOKE_END,
        f"<{DSML}parameter",
        PARAM_END,
    ),
    json_safe_markers=False,
    description='DeepSeek V3.2: <｜DSML｜function_calls><｜DSML｜invoke name="f">',
    aliases=("deepseek_v32", "deepseek_dsml"),
)
