"""XML-style call bodies: ``<function=f><parameter=x>`` (Qwen3-Coder, Seed-OSS),
``<arg_key>/<arg_value>`` (GLM 4.5) and ``<invoke name=...>`` (MiniMax-M2).

Values in these formats are bare text, so a tool's JSON schema decides their type
(see ``schema.convert``); without a schema they stay strings.
"""

from __future__ import annotations

import re
from typing import Any

from pedrollm.toolcalls.engine import Tools
from pedrollm.toolcalls.jsontext import dumps, skip_ws
from pedrollm.toolcalls.schema import convert, param_schema
from pedrollm.types import InvalidToolCall, ToolCall

Items = list[ToolCall | InvalidToolCall]


def value_text(value: Any) -> str:
    """Write an argument value the way XML-style templates do: strings bare, the rest JSON."""
    return value if isinstance(value, str) else dumps(value)


def _first(text: str, pos: int, *needles: str) -> tuple[int, str]:
    best, which = -1, ""
    for nd in needles:
        at = text.find(nd, pos)
        if at >= 0 and (best < 0 or at < best):
            best, which = at, nd
    return best, which


PARAM_CLOSE = "</parameter>"
FUNCTION_CLOSE = "</function>"
# What may follow a parameter's closing tag, as the templates lay it out.
_AFTER_PARAM = ("<parameter=", FUNCTION_CLOSE)


def value_end(body: str, start: int, final: bool, layout: bool = True) -> int | None:
    """Return where the parameter value starting at ``start`` ends, -1 if nowhere.

    The value ends at the first ``</parameter>`` followed (after whitespace) by the next
    ``<parameter=``, by ``</function>`` or by the end of a complete body; when the value
    starts on a new line (the templates' layout) that ``</parameter>`` must start a
    line too. So a value holding ``</parameter>`` or ``</function>`` text (code, XML)
    is read whole. None: the text so far cannot tell (a growing text ends too early).
    Without ``layout`` the new-line rule is not applied.
    """
    if start >= len(body) and not final:
        return None
    own_line = layout and body.startswith("\n", start)
    pos = start
    while (j := body.find(PARAM_CLOSE, pos)) >= 0:
        if own_line and (j == start or body[j - 1] != "\n"):
            pos = j + 1
            continue
        after = skip_ws(body, j + len(PARAM_CLOSE))
        if after >= len(body):
            return j if final else None
        if body.startswith(_AFTER_PARAM, after):
            return j
        if not final and any(t.startswith(body[after:]) for t in _AFTER_PARAM):
            return None
        pos = j + 1
    return -1 if final else None


def function_blocks(body: str, tools: Tools, strip_newline: bool, strict: bool = False) -> Items:
    """Decode ``<function=f><parameter=x>v</parameter></function>`` blocks.

    With ``strip_newline`` one newline right after ``>`` and one right before
    ``</parameter>`` belong to the layout, not the value (Qwen3-Coder's template).
    A value ends where ``value_end`` says. A missing ``</parameter>`` or ``</function>``
    is tolerated inside a region whose own closing marker arrived (the value ends
    where the next tag starts); with ``strict`` (a body the reply ended in) it refuses
    the call.
    """
    items: Items = []
    pos = 0
    while True:
        start = body.find("<function=", pos)
        if start < 0:
            break
        gt = body.find(">", start)
        if gt < 0:
            items.append(InvalidToolCall(raw=body[start:], error="cut off in the function name"))
            break
        name = body[start + len("<function=") : gt].strip()
        pos = gt + 1
        args: dict[str, Any] = {}
        error = ""
        while True:
            p = skip_ws(body, pos)
            if body.startswith(FUNCTION_CLOSE, p):
                pos = p + len(FUNCTION_CLOSE)
                break
            if p >= len(body) or body.startswith("<function=", p):
                pos = p
                if strict:
                    error = "function cut off before </function>"
                break
            if not body.startswith("<parameter=", p):
                error = "unexpected text inside the function"
                pos = len(body)
                break
            q = body.find(">", p)
            if q < 0:
                error = "cut off in a parameter name"
                pos = len(body)
                break
            key = body[p + len("<parameter=") : q].strip()
            vstart = q + 1
            vend = value_end(body, vstart, final=True)
            if vend is not None and vend < 0 and not strict:
                # A value closed inline although it opened on a new line.
                vend = value_end(body, vstart, final=True, layout=False)
            tag = PARAM_CLOSE
            if vend is None or vend < 0:
                if strict:
                    error = "parameter cut off before </parameter>"
                    pos = len(body)
                    break
                vend, tag = _first(body, vstart, PARAM_CLOSE, "<parameter=", FUNCTION_CLOSE)
                if vend < 0:
                    vend = len(body)
            raw = body[vstart:vend]
            if strip_newline:
                raw = raw[1:] if raw.startswith("\n") else raw
                raw = raw[:-1] if raw.endswith("\n") else raw
            args[key] = convert(raw, param_schema(tools.get(name), key))
            pos = vend + len(tag) if tag == PARAM_CLOSE else vend
        raw_call = body[start:pos]
        if error or not name:
            items.append(
                InvalidToolCall(raw=raw_call, error=error or "function has no name", name=name)
            )
        else:
            items.append(ToolCall(id="", name=name, args=args))
    if not items:
        items.append(InvalidToolCall(raw=body, error="no <function=...> in tool call"))
    elif strict and body[pos:].strip():
        items.append(InvalidToolCall(raw=body[pos:], error="text after the last function"))
    return items


def function_end(text: str, start: int, head_end: int, final: bool) -> int | None:
    """Region is one ``<function=f>`` block, to its ``</function>`` (a value may hold one).

    Parameters are walked as ``value_end`` reads them; a value that never closes runs
    to the end of the text, and text that is not a parameter ends the region at the
    next ``</function>``.
    """
    pos = head_end
    n = len(text)
    while True:
        p = skip_ws(text, pos)
        if text.startswith(FUNCTION_CLOSE, p):
            return p + len(FUNCTION_CLOSE)
        if p >= n or (not final and FUNCTION_CLOSE.startswith(text[p:])):
            return n if final else None
        if text.startswith("<parameter=", p):
            q = text.find(">", p)
            vend = value_end(text, q + 1, final) if q >= 0 else (-1 if final else None)
            if vend is None:
                return None
            if vend < 0:
                # A value that never closed runs to the end: the reply was cut in it.
                return n
            pos = vend + len(PARAM_CLOSE)
            continue
        elif not final and "<parameter=".startswith(text[p:]):
            return None
        j = text.find(FUNCTION_CLOSE, p)
        if j >= 0:
            return j + len(FUNCTION_CLOSE)
        return n if final else None


def render_function(name: str, args: dict[str, Any], newline: bool) -> str:
    """Write one ``<function=...>`` block."""
    nl = "\n" if newline else ""
    params = "".join(
        f"<parameter={k}>{nl}{value_text(v)}{nl}</parameter>\n" for k, v in args.items()
    )
    return f"<function={name}>\n{params}</function>"


def arg_pairs(body: str, tools: Tools) -> Items:
    """Decode GLM 4.5's ``name<arg_key>k</arg_key><arg_value>v</arg_value>...`` body."""
    first = body.find("<arg_key>")
    name = (body if first < 0 else body[:first]).strip()
    if not name or "<" in name or "\n" in name:
        return [InvalidToolCall(raw=body, error="tool call has no function name")]
    args: dict[str, Any] = {}
    pos = len(body) if first < 0 else first
    tool = tools.get(name)
    while True:
        p = skip_ws(body, pos)
        if p >= len(body):
            break
        if not body.startswith("<arg_key>", p):
            return [InvalidToolCall(raw=body, error="unexpected text between arguments", name=name)]
        k_end = body.find("</arg_key>", p)
        v_open = skip_ws(body, k_end + len("</arg_key>")) if k_end >= 0 else -1
        if k_end < 0 or not body.startswith("<arg_value>", v_open):
            return [InvalidToolCall(raw=body, error="argument without a value", name=name)]
        v_end = body.find("</arg_value>", v_open)
        if v_end < 0:
            return [InvalidToolCall(raw=body, error="argument value cut off", name=name)]
        key = body[p + len("<arg_key>") : k_end]
        raw = body[v_open + len("<arg_value>") : v_end]
        args[key] = convert(raw, param_schema(tool, key))
        pos = v_end + len("</arg_value>")
    return [ToolCall(id="", name=name, args=args)]


_INVOKE = re.compile(r"""<invoke\s+name\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*))\s*>""")
_PARAM = re.compile(r"""<parameter\s+name\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*))\s*>""")


def _attr(m: re.Match[str]) -> str:
    return next(g for g in m.groups() if g is not None)


def invoke_blocks(body: str, tools: Tools) -> Items:
    """Decode MiniMax-M2's ``<invoke name="f"><parameter name="x">v</parameter></invoke>``."""
    items: Items = []
    pos = 0
    while True:
        m = _INVOKE.search(body, pos)
        if m is None:
            break
        name = _attr(m).strip()
        end = body.find("</invoke>", m.end())
        if end < 0:
            items.append(InvalidToolCall(raw=body[m.start() :], error="invoke cut off", name=name))
            break
        inner = body[m.end() : end]
        pos = end + len("</invoke>")
        args: dict[str, Any] = {}
        ip = 0
        error = ""
        while True:
            p = skip_ws(inner, ip)
            if p >= len(inner):
                break
            pm = _PARAM.match(inner, p)
            if pm is None:
                error = "unexpected text inside invoke"
                break
            v_end = inner.find("</parameter>", pm.end())
            if v_end < 0:
                error = "parameter cut off"
                break
            key = _attr(pm)
            args[key] = convert(inner[pm.end() : v_end], param_schema(tools.get(name), key))
            ip = v_end + len("</parameter>")
        if error or not name:
            items.append(
                InvalidToolCall(
                    raw=body[m.start() : pos], error=error or "invoke has no name", name=name
                )
            )
        else:
            items.append(ToolCall(id="", name=name, args=args))
    if not items:
        items.append(InvalidToolCall(raw=body, error="no <invoke> in tool call"))
    return items
