"""Python-style literals: reading ``{'a': True}`` and ``f(a=1)``, writing values back.

Models trained on Python emit single-quoted dicts and keyword calls; these are read
with ``ast`` (never evaluated), and ``true``/``false``/``null`` are accepted too
because models mix the two notations.
"""

from __future__ import annotations

import ast
import json
import math
from typing import Any

_NAMES: dict[str, Any] = {
    "True": True,
    "False": False,
    "None": None,
    "true": True,
    "false": False,
    "null": None,
}


class LiteralError(ValueError):
    """The text is not a plain literal (a call, an operator, a name we do not know)."""


def literal_value(node: ast.AST) -> Any:
    """Return the Python value of a literal expression node, or raise LiteralError."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, float) and not math.isfinite(node.value):
            # ``1e999`` reads as infinity, which no JSON can carry.
            raise LiteralError("number out of range (JSON has no infinity)")
        if isinstance(node.value, str | int | float | bool) or node.value is None:
            return node.value
        raise LiteralError(f"unsupported constant {node.value!r}")
    if isinstance(node, ast.Dict):
        out: dict[str, Any] = {}
        for k, v in zip(node.keys, node.values, strict=True):
            if k is None:
                raise LiteralError("dict unpacking is not a literal")
            key = literal_value(k)
            if not isinstance(key, str):
                raise LiteralError("object keys must be strings")
            out[key] = literal_value(v)
        return out
    if isinstance(node, ast.List | ast.Tuple):
        return [literal_value(e) for e in node.elts]
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        val = literal_value(node.operand)
        if isinstance(val, bool) or not isinstance(val, int | float):
            raise LiteralError("sign applied to a non-number")
        return -val if isinstance(node.op, ast.USub) else val
    raise LiteralError(f"not a literal: {type(node).__name__}")


def parse_expression(text: str) -> ast.expr:
    """Parse ``text`` as one Python expression; raise LiteralError if it is not one."""
    try:
        return ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise LiteralError(f"not a Python expression: {exc}") from None


def python_literal(text: str) -> Any:
    """Return the value of a Python-style literal such as ``{'a': [1, True]}``."""
    try:
        return literal_value(parse_expression(text))
    except RecursionError:
        raise LiteralError("literal nested too deeply") from None


def render_value(value: Any) -> str:
    """Write ``value`` as a Python literal that ``python_literal`` reads back unchanged."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("non-finite floats have no literal")
        return repr(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{render_value(str(k))}: {render_value(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render_value(v) for v in value) + "]"
    # Anything else gets its JSON spelling, which the reader also accepts.
    return json.dumps(value, allow_nan=False)


def render_call(name: str, args: dict[str, Any]) -> str:
    """Write ``name(k=v, ...)`` with Python literals."""
    inner = ", ".join(f"{k}={render_value(v)}" for k, v in args.items())
    return f"{name}({inner})"


def call_parts(node: ast.expr) -> tuple[str, dict[str, Any]]:
    """Return the name and keyword arguments of a call node like ``f(a=1)`` or ``x.call(a=1)``."""
    if not isinstance(node, ast.Call):
        raise LiteralError("not a function call")
    if node.args:
        raise LiteralError("positional arguments have no parameter names")
    func = node.func
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        raise LiteralError("call target is not a name")
    parts.append(func.id)
    name = ".".join(reversed(parts))
    args: dict[str, Any] = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise LiteralError("**kwargs is not a literal")
        args[kw.arg] = literal_value(kw.value)
    return name, args
