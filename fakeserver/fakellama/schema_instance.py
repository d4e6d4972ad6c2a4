"""A deterministic instance of a JSON schema: what the fake answers a json_schema request with.

llama-server turns a schema into a grammar, so whatever its model writes validates. The fake
has no model; it builds the simplest instance that validates: required properties only,
the least items an array allows, the first enum value, the lowest number in range. A
schema it cannot satisfy this way (patterns, formats, ``not``, conditionals) raises
:class:`Unsatisfiable` naming the keyword, so the fake says so instead of answering with a
value that would not validate.
"""

from __future__ import annotations

import math
from typing import Any

_UNSUPPORTED = ("pattern", "patternProperties", "not", "if", "dependentSchemas",
                "dependentRequired", "contains", "uniqueItems", "multipleOf", "propertyNames",
                "minProperties", "maxProperties")
_FORMATS = {"date": "2025-01-01", "time": "12:00:00", "date-time": "2025-01-01T12:00:00Z",
            "uuid": "00000000-0000-4000-8000-000000000000"}
_MAX_DEPTH = 32


class Unsatisfiable(ValueError):
    """A schema the fake cannot build an instance of; the message names the keyword."""


def instance(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """Return a value that validates against schema (a JSON schema object)."""
    root = schema if root is None else root
    if depth > _MAX_DEPTH:
        raise Unsatisfiable("schema nests deeper than the fake follows ($ref cycle?)")
    if schema is True or schema == {}:
        return {}
    if not isinstance(schema, dict):
        raise Unsatisfiable("schema is not an object")
    if "$ref" in schema:
        return instance(_resolve(root, schema["$ref"]), root, depth + 1)
    for key in _UNSUPPORTED:
        if key in schema:
            raise Unsatisfiable(f"the fake cannot satisfy '{key}'")
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            rest = {k: v for k, v in schema.items() if k != key}
            return instance({**schema[key][0], **rest}, root, depth + 1)
    if "allOf" in schema:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = _resolve(root, part["$ref"]) if isinstance(part, dict) and "$ref" in part \
                else part
            merged = _merge(merged, part)
        return instance(merged, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0] if kind else None
    if kind is None:
        if "properties" in schema or "required" in schema:
            kind = "object"
        elif "items" in schema or "prefixItems" in schema:
            kind = "array"
        elif "minLength" in schema or "maxLength" in schema or "format" in schema:
            kind = "string"
        else:
            kind = "object"
    if kind == "object":
        return _object(schema, root, depth)
    if kind == "array":
        return _array(schema, root, depth)
    if kind == "string":
        return _string(schema)
    if kind in ("integer", "number"):
        return _number(schema, kind)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    raise Unsatisfiable(f"unknown type {kind!r}")


def _resolve(root: Any, ref: Any) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise Unsatisfiable(f"cannot resolve $ref {ref!r}")
    target = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and part in target:
            target = target[part]
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            raise Unsatisfiable(f"cannot resolve $ref {ref!r}")
    return target


def _merge(a: dict[str, Any], b: Any) -> dict[str, Any]:
    if not isinstance(b, dict):
        return a
    out = dict(a)
    for key, value in b.items():
        if key == "properties" and isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = {**out[key], **value}
        elif key == "required" and isinstance(out.get(key), list) and isinstance(value, list):
            out[key] = out[key] + [v for v in value if v not in out[key]]
        else:
            out[key] = value
    return out


def _object(schema: dict[str, Any], root: Any, depth: int) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    out: dict[str, Any] = {}
    for name in schema.get("required") or []:
        if name in properties:
            out[name] = instance(properties[name], root, depth + 1)
        else:
            extra = schema.get("additionalProperties", True)
            out[name] = instance(extra if isinstance(extra, dict) else {}, root, depth + 1)
    return out


def _array(schema: dict[str, Any], root: Any, depth: int) -> list[Any]:
    prefix = schema.get("prefixItems") or []
    count = max(int(schema.get("minItems", 0) or 0), 0)
    out = [instance(p, root, depth + 1) for p in prefix[:count]]
    items = schema.get("items", {})
    while len(out) < count:
        out.append(instance(items if isinstance(items, dict) else {}, root, depth + 1))
    return out


def _string(schema: dict[str, Any]) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        return _FORMATS[fmt]
    if isinstance(fmt, str) and fmt.startswith("uuid"):
        return _FORMATS["uuid"]
    low = int(schema.get("minLength", 0) or 0)
    high = schema.get("maxLength")
    text = "fakellama"
    if len(text) < low:
        text = text + "a" * (low - len(text))
    if isinstance(high, int) and len(text) > high:
        text = text[:high]
    return text


def _number(schema: dict[str, Any], kind: str) -> int | float:
    low = schema.get("minimum")
    high = schema.get("maximum")
    if isinstance(schema.get("exclusiveMinimum"), (int, float)):
        bound = schema["exclusiveMinimum"]
        low = math.floor(bound) + 1 if kind == "integer" else bound + 0.5
    if isinstance(schema.get("exclusiveMaximum"), (int, float)):
        bound = schema["exclusiveMaximum"]
        high = math.ceil(bound) - 1 if kind == "integer" else bound - 0.5
    value: int | float = 0
    if isinstance(low, (int, float)) and value < low:
        value = math.ceil(low) if kind == "integer" else low
    if isinstance(high, (int, float)) and value > high:
        value = math.floor(high) if kind == "integer" else high
    if isinstance(low, (int, float)) and value < low:
        raise Unsatisfiable("minimum is above maximum")
    return int(value) if kind == "integer" else value
