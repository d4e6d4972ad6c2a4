"""Client-side checks on a request, so a bad one fails before any network call.

Every error is a :class:`~pedrollm.errors.RequestValidationError` whose ``field``
names the offending field (``tools[2].name``, ``temperature``, ...).
"""

from __future__ import annotations

import math
import re
from typing import Any

from .errors import RequestValidationError
from .images import check_image_url
from .types import THINK_LEVELS, Image, InferenceRequest, Message, ToolDefinition

TOOL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_ROLES = ("system", "user", "assistant", "tool")


def _check_number(field: str, value: float | int | None, *, low: float | None = None,
                  high: float | None = None, low_open: bool = False) -> None:
    """Refuse a non-finite number or one outside [low, high] (or (low, high] if low_open)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestValidationError(field, f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise RequestValidationError(field, f"must be finite, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        bound = f"greater than {low:g}" if low_open else f"at least {low:g}"
        raise RequestValidationError(field, f"must be {bound}, got {value!r}")
    if high is not None and value > high:
        raise RequestValidationError(field, f"must be at most {high:g}, got {value!r}")


def _check_int(field: str, value: Any, *, low: int) -> None:
    """Refuse a value that is not an integer >= low."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestValidationError(field, f"must be an integer, got {value!r}")
    if value < low:
        raise RequestValidationError(field, f"must be at least {low}, got {value!r}")


def validate_tool(tool: ToolDefinition, field: str = "tool") -> None:
    """Check a tool's name and that its parameters are a JSON-schema object."""
    if not isinstance(tool.name, str) or not TOOL_NAME_PATTERN.match(tool.name):
        raise RequestValidationError(
            f"{field}.name",
            f"{tool.name!r} must match {TOOL_NAME_PATTERN.pattern} "
            "(letters, digits, '_', '.', '-'; 1 to 64 characters)",
        )
    params = tool.parameters
    if not isinstance(params, dict):
        raise RequestValidationError(
            f"{field}.parameters", f"must be a JSON-schema object, got {type(params).__name__}"
        )
    if params.get("type", "object") != "object":
        raise RequestValidationError(
            f"{field}.parameters.type", f"must be 'object', got {params.get('type')!r}"
        )
    props = params.get("properties", {})
    if not isinstance(props, dict):
        raise RequestValidationError(
            f"{field}.parameters.properties",
            f"must be an object mapping names to schemas, got {type(props).__name__}",
        )
    required = params.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise RequestValidationError(
            f"{field}.parameters.required", f"must be a list of names, got {required!r}"
        )


def validate_request(req: InferenceRequest) -> None:
    """Raise RequestValidationError naming the first bad field of ``req``."""
    messages = req.all_messages()
    if not messages:
        raise RequestValidationError(
            "messages", "the request has no messages: give user_prompt or messages"
        )
    for i, msg in enumerate(messages):
        if msg.role not in _ROLES:
            raise RequestValidationError(
                f"messages[{i}].role", f"must be one of {', '.join(_ROLES)}, got {msg.role!r}"
            )
        if msg.role == "tool" and not msg.tool_call_id:
            raise RequestValidationError(
                f"messages[{i}].tool_call_id", "a tool result must name the call it answers"
            )
        if msg.content is not None and not isinstance(msg.content, str):
            raise RequestValidationError(
                f"messages[{i}].content", f"must be a string, got {type(msg.content).__name__}"
            )
        if msg.images:
            _check_images(msg, f"messages[{i}]")
    _check_number("temperature", req.temperature, low=0.0)
    _check_int("max_tokens", req.max_tokens, low=1)
    _check_number("top_p", req.top_p, low=0.0, high=1.0)
    _check_number("min_p", req.min_p, low=0.0, high=1.0)
    _check_int("top_k", req.top_k, low=0)
    _check_number("repeat_penalty", req.repeat_penalty, low=0.0)
    _check_int("n_probs", req.n_probs, low=0)
    _check_int("seed", req.seed, low=-1)
    if not isinstance(req.stop, list) or not all(isinstance(s, str) for s in req.stop):
        raise RequestValidationError("stop", f"must be a list of strings, got {req.stop!r}")
    if req.grammar is not None:
        if not isinstance(req.grammar, str) or not req.grammar.strip():
            raise RequestValidationError("grammar", "must be a non-empty GBNF string")
        if req.json_schema is not None:
            raise RequestValidationError(
                "grammar", "cannot be combined with json_schema: give one or the other"
            )
        if req.tools:
            raise RequestValidationError(
                "grammar", "cannot be combined with tools: the server builds its own "
                "tool-call grammar"
            )
    if req.json_schema is not None and not isinstance(req.json_schema, dict):
        raise RequestValidationError(
            "json_schema", f"must be a JSON-schema object, got {type(req.json_schema).__name__}"
        )
    seen: set[str] = set()
    for i, tool in enumerate(req.tools):
        validate_tool(tool, f"tools[{i}]")
        if tool.name in seen:
            raise RequestValidationError(f"tools[{i}].name", f"{tool.name!r} is offered twice")
        seen.add(tool.name)
    if req.tool_choice is not None:
        if not req.tools:
            raise RequestValidationError("tool_choice", "is set but no tools are offered")
        if isinstance(req.tool_choice, str) and req.tool_choice not in (
            "auto", "none", "required"
        ) and req.tool_choice not in seen:
            raise RequestValidationError(
                "tool_choice",
                f"must be 'auto', 'none', 'required' or an offered tool's name, "
                f"got {req.tool_choice!r}",
            )
    if not isinstance(req.extra, dict):
        raise RequestValidationError("extra", f"must be a dict, got {type(req.extra).__name__}")
    for key, value in req.extra.items():
        _check_json(f"extra.{key}", value)
    if req.deadline is not None:
        _check_number("deadline", req.deadline, low=0.0, low_open=True)
    if req.think is not None and not isinstance(req.think, bool) \
            and req.think not in THINK_LEVELS:
        raise RequestValidationError(
            "think", f"must be True, False, None or one of {', '.join(THINK_LEVELS)}, "
                     f"got {req.think!r}")


def _check_images(msg: Message, field: str) -> None:
    """Images go in user messages only (OpenAI's API takes them nowhere else), as Images."""
    if msg.role != "user":
        raise RequestValidationError(
            f"{field}.images", f"only user messages may carry images, not {msg.role!r} ones")
    if not isinstance(msg.images, list):
        raise RequestValidationError(
            f"{field}.images", f"must be a list of Image, got {type(msg.images).__name__}")
    for j, item in enumerate(msg.images):
        if not isinstance(item, Image):
            raise RequestValidationError(
                f"{field}.images[{j}]", f"must be an Image (build one with pedrollm.image()), "
                                        f"got {type(item).__name__}")
        check_image_url(item.url, f"{field}.images[{j}].url")


def _check_json(field: str, value: Any, depth: int = 0) -> None:
    """Refuse what JSON cannot carry: NaN and infinities, non-string keys, other types."""
    if depth > 100:
        raise RequestValidationError(field, "is nested more than 100 levels deep")
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RequestValidationError(field, f"is {value!r}, which JSON cannot carry")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise RequestValidationError(field, f"has a key that is not a string: {key!r}")
            _check_json(f"{field}.{key}", item, depth + 1)
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(f"{field}[{i}]", item, depth + 1)
        return
    raise RequestValidationError(
        field, f"is a {type(value).__name__}, which JSON cannot carry")
