"""Checking one config value: the validators, and how a bad value is shown.

Each validator takes a value (never None: a field's type says whether null is
allowed) and returns it normalised, or raises :class:`InvalidValue` with a message
that reads after ``model.FIELD: `` and shows the bad value as it looks in JSON, with
secrets hidden.

The backend type names and default addresses are read from
:data:`pedrollm.backends.BACKENDS`, never copied here.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from typing import Any
from urllib.parse import urlsplit

from .backends import BACKENDS
from .backends.openai import TOOL_MODES
from .backends.pool import POOL_STRATEGIES
from .client import api_key_problem
from .redaction import REDACTED, redact_url

#: The backend type names, in the order the backends are declared.
BACKEND_TYPES: tuple[str, ...] = tuple(BACKENDS)

#: The type of a backend over several servers (``model.servers``), not one address.
POOL_TYPE = "pool"

#: Each backend's default server address; a backend without one needs ``server_url``.
DEFAULT_SERVER_URLS: dict[str, str] = {
    name: cls.default_url for name, cls in BACKENDS.items() if cls.default_url
}


class InvalidValue(ValueError):
    """One field's value is wrong; the message reads after ``model.FIELD: ``."""


# ---------------------------------------------------------------------------
# Showing values in messages


def show_value(value: Any, *, secret: bool = False) -> str:
    """Render a bad value the way it would look in the JSON file, never a secret."""
    if secret:
        return REDACTED if isinstance(value, str) else type(value).__name__
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# Names people give the backends, keyed by the name reduced to lower-case letters.
_BACKEND_ALIASES = {
    "llama": "llamacpp",
    "llamaserver": "llamacpp",
    "llamacppserver": "llamacpp",
    "lms": "lmstudio",
    "openaicompatible": "openai",
}


def suggest(name: str, candidates: list[str] | tuple[str, ...]) -> str:
    """Return `` (did you mean 'x'?)`` for a close candidate, else an empty string."""
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _suggest_backend(value: str) -> str:
    """Return `` (did you mean 'x'?)`` for a misspelt backend type, else ''."""
    reduced = re.sub(r"[^a-z]", "", value.lower())
    if reduced in BACKEND_TYPES:
        return f" (did you mean {reduced!r}?)"
    if _BACKEND_ALIASES.get(reduced) in BACKEND_TYPES:
        return f" (did you mean {_BACKEND_ALIASES[reduced]!r}?)"
    return suggest(value, BACKEND_TYPES)


# ---------------------------------------------------------------------------
# Validators


_FORMAT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_backend_type(value: Any) -> str:
    """A backend type name from :data:`BACKEND_TYPES`."""
    if not isinstance(value, str):
        raise InvalidValue(f"must be a string naming the backend, got {show_value(value)}")
    if value not in BACKEND_TYPES:
        raise InvalidValue(
            f"unknown backend type {show_value(value)}{_suggest_backend(value)}; "
            f"supported: {', '.join(BACKEND_TYPES)}"
        )
    return value


def check_url(value: Any) -> str:
    """An http(s) URL with a host; a password in it is never shown."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(f"must be an http:// or https:// URL, got {show_value(value)}")
    shown = show_value(redact_url(value))
    if any(ch.isspace() for ch in value):
        raise InvalidValue(f"must not contain spaces, got {shown}")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise InvalidValue(f"is not a valid URL, got {shown}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidValue(f"must start with http:// or https://, got {shown}")
    try:
        port = parts.port
    except ValueError:
        raise InvalidValue(f"port must be a number from 1 to 65535, got {shown}") from None
    if not parts.hostname:
        raise InvalidValue(f"must name a host, as in http://localhost:8081, got {shown}")
    if port is not None and not 1 <= port <= 65535:
        raise InvalidValue(f"port must be a number from 1 to 65535, got {shown}")
    if parts.query or parts.fragment:
        raise InvalidValue(f"must not have a query or fragment, got {shown}")
    return value


def check_name(value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(f"must be a non-empty string, got {show_value(value)}")
    return value


def check_path(value: Any) -> str:
    """A file or directory path (not checked on disk)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(f"must be a path, got {show_value(value)}")
    return value


def check_format_name(value: Any) -> str:
    """A tool-call format name (whether it is known is checked by the backend)."""
    if not isinstance(value, str) or not _FORMAT_NAME.fullmatch(value):
        raise InvalidValue(
            f'must be a tool-call format name such as "hermes", got {show_value(value)}'
        )
    return value


def check_api_key(value: Any) -> str | None:
    """A string a header can carry, surrounding whitespace stripped; empty means no key."""
    if not isinstance(value, str):
        raise InvalidValue(f"must be a string, got {show_value(value, secret=True)}")
    # A key read from a file or a secret mount often ends with a newline.
    value = value.strip()
    problem = api_key_problem(value)
    if problem:
        raise InvalidValue(problem)
    # An empty key in a template means "no key"; servers treat both alike.
    return value or None


def check_tool_mode(value: Any) -> str:
    """One of :data:`TOOL_MODES`."""
    if value not in TOOL_MODES:
        raise InvalidValue(f"must be one of {', '.join(TOOL_MODES)}, got {show_value(value)}")
    return str(value)


def check_strategy(value: Any) -> str:
    """One of :data:`POOL_STRATEGIES`."""
    if value not in POOL_STRATEGIES:
        raise InvalidValue(f"must be one of {', '.join(POOL_STRATEGIES)}, "
                           f"got {show_value(value)}{suggest(str(value), POOL_STRATEGIES)}")
    return str(value)


def check_server_list(value: Any) -> list[dict[str, Any]]:
    """A non-empty list of JSON objects (each one checked as a ``model`` section later)."""
    if not isinstance(value, list) or not value:
        raise InvalidValue("must be a non-empty list of server sections "
                           f'such as [{{"type": "llamacpp", "server_url": "http://host:8081"}}], '
                           f"got {show_value(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidValue(f"item {index} must be a JSON object (a server section), "
                               f"got {show_value(item)}")
    return [dict(item) for item in value]


def check_positive_int(value: Any) -> int:
    """An integer > 0 (not a bool, not a float)."""
    if not _is_int(value) or value <= 0:
        raise InvalidValue(f"must be a positive integer, got {show_value(value)}")
    return int(value)


def check_count(value: Any) -> int:
    """An integer >= 0."""
    if not _is_int(value) or value < 0:
        raise InvalidValue(f"must be a whole number >= 0, got {show_value(value)}")
    return int(value)


def check_gpu_layers(value: Any) -> int:
    """An integer >= -1, where -1 means every layer."""
    if not _is_int(value) or value < -1:
        raise InvalidValue(f"must be a whole number >= -1 (-1: all), got {show_value(value)}")
    return int(value)


def check_seconds(value: Any) -> float:
    """A finite number of seconds > 0."""
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise InvalidValue(f"must be a finite number of seconds > 0, got {show_value(value)}")
    return float(value)


def check_seconds_or_zero(value: Any) -> float:
    """A finite number of seconds >= 0."""
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise InvalidValue(f"must be a finite number of seconds >= 0, got {show_value(value)}")
    return float(value)


def check_temperature(value: Any) -> float:
    """A finite number >= 0."""
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise InvalidValue(f"must be a finite number >= 0, got {show_value(value)}")
    return float(value)


def check_bool(value: Any) -> bool:
    """true or false."""
    if not isinstance(value, bool):
        raise InvalidValue(f"must be true or false, got {show_value(value)}")
    return value


def check_tristate(value: Any) -> bool:
    """true or false, where the field also takes null."""
    if not isinstance(value, bool):
        raise InvalidValue(f"must be true, false or null (ask the server), got {show_value(value)}")
    return value


__all__ = [
    "BACKEND_TYPES",
    "DEFAULT_SERVER_URLS",
    "InvalidValue",
    "POOL_STRATEGIES",
    "POOL_TYPE",
    "check_server_list",
    "check_strategy",
    "check_api_key",
    "check_backend_type",
    "check_tool_mode",
    "check_bool",
    "check_count",
    "check_format_name",
    "check_gpu_layers",
    "check_name",
    "check_path",
    "check_positive_int",
    "check_seconds",
    "check_seconds_or_zero",
    "check_temperature",
    "check_tristate",
    "check_url",
    "show_value",
    "suggest",
]
