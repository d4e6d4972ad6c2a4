"""JSON schemas for Python functions, a small validator, and argument conversion.

``schema_for(func)`` describes a function's parameters as the JSON-schema object a
tool definition carries: types come from the annotations, descriptions from the
docstring (Google ``Args:``, NumPy ``Parameters``, or Sphinx ``:param x:``), and a
parameter with a default is not required. Supported annotations: ``str``, ``int``,
``float``, ``bool``, ``None``, ``Any``, ``list[X]``/``set[X]``/``tuple[X, ...]``/
``Sequence[X]``, ``dict``/``dict[str, X]``, ``Optional[X]``/``X | None``, other
unions, ``Literal[...]``, ``Enum`` subclasses, dataclasses (nested objects) and
``Annotated[X, "description"]``. Anything else, and ``*args``/``**kwargs`` or
positional-only parameters (a tool is called with keyword arguments), raise
:class:`ToolSchemaError` naming the function and the parameter.

``validate(value, schema)`` checks decoded arguments against a schema before a
tool runs: ``type``, ``enum``, ``const``, ``required``, ``properties``,
``additionalProperties``, ``items`` and ``anyOf``/``oneOf``. It is deliberately
small: enough to tell a model what it got wrong, not a full JSON-schema engine.

``convert(value, annotation)`` turns validated JSON values into what the function's
annotations ask for (Enum members, dataclass instances, floats for ints, tuples and
sets), so a tool body receives the types it declared.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .toolcalls.schema import json_type

JSONSchema = dict[str, Any]

_SIMPLE: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean",
                           type(None): "null"}
_SEQUENCES = (list, set, frozenset, tuple, Sequence, typing.Sequence)


class ToolSchemaError(TypeError):
    """A function cannot be described as a tool; the message names the function and why."""


# -- docstrings ----------------------------------------------------------------------

_GOOGLE_ARGS = re.compile(r"^(Args|Arguments|Parameters|Params|Attributes|Keyword Args):\s*$")
_GOOGLE_OTHER = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")
_GOOGLE_ITEM = re.compile(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_RULE = re.compile(r"^-{3,}\s*$")
_NUMPY_ITEM = re.compile(r"^(\*{0,2}\w+)\s*(:.*)?$")
_SPHINX = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+):\s*(.*)$")


@dataclasses.dataclass
class Docstring:
    """A docstring split into its description and per-parameter descriptions."""

    description: str = ""
    params: dict[str, str] = dataclasses.field(default_factory=dict)


def parse_docstring(doc: str | None) -> Docstring:
    """Split a Google, NumPy or Sphinx style docstring into description and parameters."""
    if not doc:
        return Docstring()
    lines = inspect.cleandoc(doc).splitlines()
    out = Docstring()
    description: list[str] = []
    section_started = False
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        numpy_header = i + 1 < len(lines) and _NUMPY_RULE.match(lines[i + 1].strip()) is not None
        if numpy_header and not line.startswith(" "):
            section_started = True
            name = stripped.lower()
            i += 2
            start = i
            # A NumPy section runs until the next "Header\n-----" pair.
            while i < len(lines) and not (
                i + 1 < len(lines) and _NUMPY_RULE.match(lines[i + 1].strip())
                and not lines[i].startswith(" ")
            ):
                i += 1
            if name in ("parameters", "other parameters", "attributes"):
                _numpy_items(lines[start:i], out.params)
            continue
        if _GOOGLE_ARGS.match(stripped) and not line.startswith(" "):
            section_started = True
            i = _google_items(lines, i + 1, out.params)
            continue
        if _GOOGLE_OTHER.match(stripped) and not line.startswith(" "):
            section_started = True
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
                i += 1
            continue
        sphinx = _SPHINX.match(stripped)
        if sphinx:
            section_started = True
            text = [sphinx.group(2)]
            i += 1
            while i < len(lines) and lines[i].startswith(" ") and lines[i].strip():
                text.append(lines[i].strip())
                i += 1
            out.params[sphinx.group(1)] = " ".join(t for t in text if t)
            continue
        if stripped.startswith(":"):
            section_started = True  # :returns:, :raises: and friends end the description
        if not section_started:
            description.append(line)
        i += 1
    out.description = "\n".join(description).strip()
    return out


def _google_items(lines: list[str], i: int, params: dict[str, str]) -> int:
    """Read the indented ``name (type): text`` items of a Google section; return the next line."""
    indent: int | None = None
    current: str | None = None
    while i < len(lines):
        line = lines[i]
        if line.strip() and not line.startswith(" "):
            break
        if not line.strip():
            i += 1
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        item = _GOOGLE_ITEM.match(line.strip())
        if depth == indent and item:
            current = item.group(1).lstrip("*")
            params[current] = item.group(3).strip()
        elif current is not None:
            params[current] = (params[current] + " " + line.strip()).strip()
        i += 1
    return i


def _numpy_items(lines: list[str], params: dict[str, str]) -> None:
    """Read the ``name : type`` items (text indented below) of a NumPy section."""
    current: str | None = None
    for line in lines:
        if not line.strip():
            continue
        if not line.startswith(" "):
            item = _NUMPY_ITEM.match(line.strip())
            current = item.group(1).lstrip("*") if item else None
            if current is not None:
                params[current] = ""
        elif current is not None:
            params[current] = (params[current] + " " + line.strip()).strip()


# -- schemas -------------------------------------------------------------------------


def _where(func: Callable[..., Any]) -> str:
    """Name a function for error messages."""
    return getattr(func, "__qualname__", None) or repr(func)


def schema_for(func: Callable[..., Any]) -> JSONSchema:
    """Return the JSON-schema object describing ``func``'s parameters."""
    where = _where(func)
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise ToolSchemaError(f"{where}: cannot read its signature ({exc})") from exc
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:  # a forward reference that does not resolve, for instance
        raise ToolSchemaError(f"{where}: cannot resolve its type hints ({exc})") from exc
    doc = parse_docstring(inspect.getdoc(func))
    properties: dict[str, JSONSchema] = {}
    required: list[str] = []
    for name, param in sig.parameters.items():
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            raise ToolSchemaError(
                f"{where}: *{name} cannot be described as a tool parameter; "
                "name every parameter instead"
            )
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            raise ToolSchemaError(
                f"{where}: **{name} cannot be described as a tool parameter; "
                "name every parameter instead"
            )
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise ToolSchemaError(
                f"{where}: parameter {name!r} is positional-only, but tools are called "
                "with keyword arguments"
            )
        annotation = hints.get(name, Any)
        schema = _schema(annotation, f"{where}: parameter {name!r}", ())
        if doc.params.get(name) and "description" not in schema:
            schema["description"] = doc.params[name]
        if param.default is inspect.Parameter.empty:
            required.append(name)
        else:
            default = _json_default(param.default)
            if default is not _NO_DEFAULT:
                schema["default"] = default
        properties[name] = schema
    out: JSONSchema = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    out["additionalProperties"] = False
    return out


def description_for(func: Callable[..., Any]) -> str:
    """Return a function's description: its docstring without the parameter sections."""
    return parse_docstring(inspect.getdoc(func)).description


_NO_DEFAULT = object()


def _json_default(value: Any) -> Any:
    """Return a default as JSON, or _NO_DEFAULT when it has no JSON form."""
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple) and all(
        v is None or isinstance(v, str | int | float | bool) for v in value
    ):
        return list(value)
    return _NO_DEFAULT


def _schema(annotation: Any, where: str, seen: tuple[type, ...]) -> JSONSchema:
    """Return the schema of one annotation; ``seen`` guards against recursive dataclasses."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        inner = _schema(args[0], where, seen)
        notes = [a for a in args[1:] if isinstance(a, str)]
        if notes:
            inner["description"] = " ".join(notes)
        return inner
    if annotation is Any or annotation is inspect.Parameter.empty:
        return {}
    if annotation in _SIMPLE:
        return {"type": _SIMPLE[annotation]}
    if annotation is None:
        return {"type": "null"}
    if origin is typing.Union or origin is types.UnionType:
        return _union(args, where, seen)
    if origin is typing.Literal:
        return _enum_schema(list(args), where)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum_schema([m.value for m in annotation], where)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return _dataclass_schema(annotation, where, seen)
    if annotation in (list, set, frozenset, tuple) or annotation in (Sequence, typing.Sequence):
        return {"type": "array"}
    if origin in _SEQUENCES:
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            # A fixed-length tuple has no plain JSON-schema form that small servers' grammar
            # builders all accept; ask for tuple[X, ...] or a list instead.
            raise ToolSchemaError(
                f"{where}: fixed-length {annotation} is not supported; use tuple[X, ...] "
                "or list[X]"
            )
        out: JSONSchema = {"type": "array", "items": _schema(args[0], where, seen)}
        if origin in (set, frozenset):
            out["uniqueItems"] = True
        return out
    if annotation is dict or annotation in (Mapping, typing.Mapping):
        return {"type": "object"}
    if origin in (dict, Mapping):
        key, value = args
        if key is not str:
            raise ToolSchemaError(f"{where}: dict keys must be str in JSON, got {key!r}")
        return {"type": "object", "additionalProperties": _schema(value, where, seen)}
    raise ToolSchemaError(f"{where}: annotation {annotation!r} has no JSON-schema form")


def dataclass_schema(cls: type, where: str | None = None) -> JSONSchema:
    """Describe a dataclass as a JSON-schema object, the way a tool's dataclass argument is.

    Fields without a default are ``required``; no other keys are allowed. An annotation
    with no JSON-schema form raises :class:`ToolSchemaError` naming the field.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ToolSchemaError(f"{where or cls!r}: expected a dataclass type, got {cls!r}")
    return _dataclass_schema(cls, where or cls.__name__, ())


def _union(args: tuple[Any, ...], where: str, seen: tuple[type, ...]) -> JSONSchema:
    """Describe a union; simple members collapse into one ``type`` list."""
    members = [_schema(a, where, seen) for a in args]
    if all(set(m) == {"type"} and isinstance(m["type"], str) for m in members):
        return {"type": [m["type"] for m in members]}
    nullable = [m for m in members if m == {"type": "null"}]
    others = [m for m in members if m != {"type": "null"}]
    if len(others) == 1 and nullable and "enum" in others[0]:
        # Keep Optional[Literal/Enum] readable: one enum that admits null.
        merged = dict(others[0])
        merged["enum"] = [*merged["enum"], None]
        if isinstance(merged.get("type"), str):
            merged["type"] = [merged["type"], "null"]
        return merged
    return {"anyOf": members}


def _enum_schema(values: list[Any], where: str) -> JSONSchema:
    """Describe a closed set of values; a uniform JSON type is given as ``type`` too."""
    kinds = set()
    for value in values:
        for py, name in _SIMPLE.items():
            if type(value) is py:
                kinds.add(name)
                break
        else:
            raise ToolSchemaError(f"{where}: choice {value!r} is not a JSON scalar")
    out: JSONSchema = {"enum": list(values)}
    if len(kinds) == 1:
        out = {"type": kinds.pop(), "enum": list(values)}
    return out


def _dataclass_schema(cls: type, where: str, seen: tuple[type, ...]) -> JSONSchema:
    """Describe a dataclass as a nested object; field docs come from its docstring."""
    if cls in seen:
        raise ToolSchemaError(f"{where}: dataclass {cls.__name__} refers to itself")
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception as exc:
        raise ToolSchemaError(f"{where}: cannot resolve {cls.__name__}'s hints ({exc})") from exc
    # A dataclass without a docstring gets a generated one ("Point(x: int, ...)"); skip it.
    raw_doc = cls.__doc__ if cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "(") \
        else None
    doc = parse_docstring(raw_doc)
    properties: dict[str, JSONSchema] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        schema = _schema(hints.get(f.name, Any), f"{where}: field {cls.__name__}.{f.name}",
                         (*seen, cls))
        if doc.params.get(f.name) and "description" not in schema:
            schema["description"] = doc.params[f.name]
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
        elif f.default is not dataclasses.MISSING:
            default = _json_default(f.default)
            if default is not _NO_DEFAULT:
                schema["default"] = default
        properties[f.name] = schema
    out: JSONSchema = {"type": "object", "properties": properties}
    if doc.description:
        out["description"] = doc.description
    if required:
        out["required"] = required
    out["additionalProperties"] = False
    return out


# -- validation ----------------------------------------------------------------------


def _is_type(value: Any, name: str) -> bool:
    """True when a decoded value has the JSON type ``name`` (an integer is a number)."""
    actual = json_type(value)
    if name == "number":
        return actual in ("number", "integer")
    if name == "integer" and actual == "number":
        return float(value).is_integer()  # 2.0 is an integer in JSON Schema
    return actual == name


def _path(path: str, key: str | int) -> str:
    """Extend a location path for error messages."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def validate(value: Any, schema: Mapping[str, Any], path: str = "") -> list[str]:
    """Return what is wrong with ``value`` under ``schema`` (an empty list when it fits)."""
    where = f"'{path}'" if path else "the arguments"
    errors: list[str] = []
    expected = schema.get("type")
    if expected is not None:
        names = [expected] if isinstance(expected, str) else list(expected)
        if not any(_is_type(value, n) for n in names):
            wanted = " or ".join(names)
            return [f"{where} must be {wanted}, got {json_type(value)} {_short(value)}"]
    if "enum" in schema and not any(_same(value, v) for v in schema["enum"]):
        choices = ", ".join(_short(v) for v in schema["enum"])
        errors.append(f"{where} must be one of {choices}; got {_short(value)}")
    if "const" in schema and not _same(value, schema["const"]):
        errors.append(f"{where} must be {_short(schema['const'])}; got {_short(value)}")
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            if not any(not validate(value, o, path) for o in options):
                first = validate(value, options[0], path)
                errors.append(first[0] if len(options) == 1 else
                              f"{where} matches none of the allowed forms "
                              f"({'; '.join(validate(value, o, path)[0] for o in options)})")
    if isinstance(value, dict):
        errors.extend(_validate_object(value, schema, path))
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            errors.extend(validate(item, schema["items"], _path(path, i)))
    return errors


def _validate_object(value: dict[str, Any], schema: Mapping[str, Any], path: str) -> list[str]:
    """Check an object's required keys, known properties and extra keys."""
    errors: list[str] = []
    props = schema.get("properties")
    props = props if isinstance(props, Mapping) else {}
    for key in schema.get("required", []) or []:
        if key not in value:
            errors.append(f"'{_path(path, key)}' is required")
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in props:
            errors.extend(validate(item, props[key], _path(path, key)))
        elif extra is False:
            known = ", ".join(props) or "none"
            errors.append(f"'{_path(path, key)}' is not an accepted argument (accepted: {known})")
        elif isinstance(extra, Mapping):
            errors.extend(validate(item, extra, _path(path, key)))
    return errors


def _same(a: Any, b: Any) -> bool:
    """JSON equality: True is not 1."""
    return json_type(a) == json_type(b) and a == b or (
        {json_type(a), json_type(b)} == {"integer", "number"} and a == b
    )


def _short(value: Any) -> str:
    """Render a value for an error message, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- conversion ----------------------------------------------------------------------


def convert(value: Any, annotation: Any) -> Any:
    """Turn a validated JSON value into the Python type ``annotation`` names."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return convert(value, args[0])
    if value is None:
        return None
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation(value)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            return value
        hints = typing.get_type_hints(annotation, include_extras=True)
        return annotation(**{k: convert(v, hints.get(k, Any)) for k, v in value.items()})
    if origin is typing.Union or origin is types.UnionType:
        for member in args:
            if member is type(None):
                continue
            try:
                if not validate(value, _schema(member, "", ())):
                    return convert(value, member)
            except ToolSchemaError:
                continue
        return value
    if origin in _SEQUENCES and isinstance(value, list):
        item_type = args[0] if args else Any
        items = [convert(v, item_type) for v in value]
        if origin is tuple:
            return tuple(items)
        if origin in (set, frozenset):
            return origin(items)
        return items
    if origin in (dict, Mapping) and isinstance(value, dict) and len(args) == 2:
        return {k: convert(v, args[1]) for k, v in value.items()}
    return value


def convert_arguments(func: Callable[..., Any], args: Mapping[str, Any]) -> dict[str, Any]:
    """Convert a tool call's decoded arguments to the types ``func`` annotates."""
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:  # an unresolvable hint: pass the JSON values through unchanged
        hints = {}
    return {k: convert(v, hints.get(k, Any)) for k, v in args.items()}
