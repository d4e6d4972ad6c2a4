"""Giving untyped argument text (XML formats) the type the tool's JSON schema asks for."""

from __future__ import annotations

from typing import Any

from pedrollm.toolcalls.jsontext import load_lenient
from pedrollm.types import ToolDefinition


def param_schema(tool: ToolDefinition | None, param: str) -> dict[str, Any] | None:
    """Return the JSON schema of ``param`` in ``tool``'s parameters, if it declares one."""
    if tool is None:
        return None
    props = tool.parameters.get("properties") if isinstance(tool.parameters, dict) else None
    if not isinstance(props, dict):
        return None
    sch = props.get(param)
    return sch if isinstance(sch, dict) else None


def _types(schema: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    t = schema.get("type")
    if isinstance(t, str):
        out.add(t)
    elif isinstance(t, list):
        out.update(x for x in t if isinstance(x, str))
    for key in ("anyOf", "oneOf", "allOf"):
        subs = schema.get(key)
        if isinstance(subs, list):
            for sub in subs:
                if isinstance(sub, dict):
                    out |= _types(sub)
    if not out and "enum" in schema and isinstance(schema["enum"], list):
        out.update(json_type(v) for v in schema["enum"])
    if not out and "properties" in schema:
        out.add("object")
    return out


def json_type(value: Any) -> str:
    """Return the JSON-schema type name of a decoded value (a Python type name otherwise)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _fits(value: Any, types: set[str]) -> bool:
    t = json_type(value)
    return t in types or (t == "integer" and "number" in types)


def convert(raw: str, schema: dict[str, Any] | None) -> Any:
    """Return ``raw`` converted to the type the schema names; what does not fit stays text.

    The rules, the same for every XML-style format:

    - no schema, or a schema that names no type: the text as written;
    - ``null`` (the value's text, trimmed) where the schema allows null: None, even
      when it allows a string too;
    - a schema that allows a string (alone or in a union): the text as written;
    - otherwise (boolean, integer, number, object, array, or unions of them): the
      trimmed text read as JSON (Python-style literals accepted), kept when its type is
      one the schema allows (an integer fits ``number``), else the text as written.
      ``1e999``, ``NaN`` and ``Infinity`` never read as numbers.
    """
    if schema is None:
        return raw
    types = _types(schema)
    text = raw.strip()
    if text == "null" and "null" in types:
        return None
    if not types or "string" in types:
        return raw
    try:
        value = load_lenient(text)
    except ValueError:
        return raw
    return value if _fits(value, types) else raw
