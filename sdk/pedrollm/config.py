"""The configuration file: the ``model`` section, defaults, validation and loading.

A config file is JSON in the ``.pedrocli.json`` style::

    {
      "model": {"type": "llamacpp", "server_url": "http://localhost:8081", ...},
      "project": {...},
      "database": {...}
    }

Only ``model`` belongs to pedrollm; every other top-level section is kept untouched in
:attr:`Config.other` and written back unchanged.

Where :func:`load_config` looks, first match wins (files are never merged):

1. the ``path`` argument;
2. the file named by ``PEDROLLM_CONFIG``;
3. ``.pedrocli.json`` in the working directory;
4. ``.pedrocli.json`` in the home directory;
5. no file: the defaults (a llama-server at http://localhost:8081).

Environment variables override the file, and ``overrides`` (command-line flags) override
both. An empty variable counts as unset. The variables and the fields they set:

- ``PEDROLLM_BACKEND``: ``type``
- ``PEDROLLM_SERVER_URL``: ``server_url``
- ``PEDROLLM_MODEL``: ``model_name``
- ``PEDROLLM_API_KEY``: ``api_key``
- ``PEDROLLM_CONTEXT_SIZE``: ``context_size``
- ``PEDROLLM_USABLE_CONTEXT``: ``usable_context``
- ``PEDROLLM_TEMPERATURE``: ``temperature``
- ``PEDROLLM_MAX_TOKENS``: ``max_tokens``
- ``PEDROLLM_ENABLE_TOOLS``: ``enable_tools`` (true/false, 1/0, yes/no, on/off)
- ``PEDROLLM_NATIVE_TOOLS``: ``native_tools`` (unset: ask the server; false: tools go
  into the system prompt and calls are parsed from the text)
- ``PEDROLLM_TOOL_CALL_FORMAT``: ``tool_call_format``
- ``PEDROLLM_CONNECT_TIMEOUT``: ``connect_timeout`` (seconds)
- ``PEDROLLM_READ_TIMEOUT``: ``read_timeout`` (seconds)
- ``PEDROLLM_MAX_RETRIES``: ``max_retries``
- ``PEDROLLM_RETRY_BUDGET``: ``retry_budget`` (seconds)
- ``PEDROLLM_CONFIG``: the config file to read (see above)

Fields of the old llama-cli configs (``llamacpp_path``, ``model_path``, ``threads``,
``n_gpu_layers``, ``enable_grammar``) still load, each with a ``DeprecationWarning``
saying what replaces it; :func:`migrate_config` rewrites such a file.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigError

if TYPE_CHECKING:
    from .config_migrate import Migration, migrate_config, write_migrated

BACKEND_TYPES: tuple[str, ...] = ("llamacpp", "ollama", "vllm", "lmstudio", "openai")

DEFAULT_SERVER_URLS: dict[str, str] = {
    "llamacpp": "http://localhost:8081",
    "ollama": "http://localhost:11434",
    "vllm": "http://localhost:8000",
    "lmstudio": "http://localhost:1234",
}

CONFIG_FILENAME = ".pedrocli.json"
CONFIG_PATH_ENV = "PEDROLLM_CONFIG"

#: Share of the context window a run may fill when ``usable_context`` is not set.
DEFAULT_USABLE_FRACTION = 0.75

REDACTED = "***"

ENV_VARS: dict[str, str] = {
    "PEDROLLM_BACKEND": "type",
    "PEDROLLM_SERVER_URL": "server_url",
    "PEDROLLM_MODEL": "model_name",
    "PEDROLLM_API_KEY": "api_key",
    "PEDROLLM_CONTEXT_SIZE": "context_size",
    "PEDROLLM_USABLE_CONTEXT": "usable_context",
    "PEDROLLM_TEMPERATURE": "temperature",
    "PEDROLLM_MAX_TOKENS": "max_tokens",
    "PEDROLLM_ENABLE_TOOLS": "enable_tools",
    "PEDROLLM_NATIVE_TOOLS": "native_tools",
    "PEDROLLM_TOOL_CALL_FORMAT": "tool_call_format",
    "PEDROLLM_CONNECT_TIMEOUT": "connect_timeout",
    "PEDROLLM_READ_TIMEOUT": "read_timeout",
    "PEDROLLM_MAX_RETRIES": "max_retries",
    "PEDROLLM_RETRY_BUDGET": "retry_budget",
}

#: The llama-cli era fields and what replaces each (the text of its DeprecationWarning).
LEGACY_FIELDS: dict[str, str] = {
    "llamacpp_path": (
        "pedrollm no longer runs a llama.cpp binary; start llama-server yourself and set "
        "model.server_url (default http://localhost:8081)"
    ),
    "model_path": (
        "the model file is loaded by the server: pass it to llama-server as -m PATH "
        "(and set model.model_name on servers that host several models)"
    ),
    "threads": "pass it to llama-server as -t N",
    "n_gpu_layers": "pass it to llama-server as -ngl N",
    "enable_grammar": "grammars are now per request (InferenceRequest.grammar)",
}

_MIGRATE_HINT = "`pedrollm config migrate FILE` rewrites the file and prints the server command"

_SECRET_KEY = re.compile(r"(api_?key|password|passwd|secret|token)", re.IGNORECASE)
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_FORMAT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_TRUE_TEXT = frozenset({"1", "true", "yes", "on"})
_FALSE_TEXT = frozenset({"0", "false", "no", "off"})


class _Invalid(Exception):
    """One field's value is wrong; the message reads after ``model.FIELD: ``."""


# ---------------------------------------------------------------------------
# Showing values in messages


def _show(value: Any, *, secret: bool = False) -> str:
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


def redact_url(url: str) -> str:
    """Replace the password of a URL's user-info with ``***``; other URLs unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:{REDACTED}@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc))


# Names people give the backends, keyed by the name reduced to lower-case letters.
_BACKEND_ALIASES = {
    "llama": "llamacpp",
    "llamaserver": "llamacpp",
    "llamacppserver": "llamacpp",
    "lms": "lmstudio",
    "openaicompatible": "openai",
}


def _suggest_backend(value: str) -> str:
    """Return `` (did you mean 'x'?)`` for a misspelt backend type, else ''."""
    reduced = re.sub(r"[^a-z]", "", value.lower())
    if reduced in BACKEND_TYPES:
        return f" (did you mean {reduced!r}?)"
    if reduced in _BACKEND_ALIASES:
        return f" (did you mean {_BACKEND_ALIASES[reduced]!r}?)"
    return _suggest(value, BACKEND_TYPES)


def _suggest(name: str, candidates: list[str] | tuple[str, ...]) -> str:
    """Return `` (did you mean 'x'?)`` for a close candidate, else an empty string."""
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------------------
# Field validators: each returns the normalised value or raises _Invalid.


def _check_type(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"must be a string naming the backend, got {_show(value)}")
    if value not in BACKEND_TYPES:
        raise _Invalid(
            f"unknown backend type {_show(value)}{_suggest_backend(value)}; "
            f"supported: {', '.join(BACKEND_TYPES)}"
        )
    return value


def _check_url(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"must be an http:// or https:// URL, got {_show(value)}")
    shown = _show(redact_url(value))
    if any(ch.isspace() for ch in value):
        raise _Invalid(f"must not contain spaces, got {shown}")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise _Invalid(f"is not a valid URL, got {shown}") from None
    if parts.scheme not in ("http", "https"):
        raise _Invalid(f"must start with http:// or https://, got {shown}")
    try:
        port = parts.port
    except ValueError:
        raise _Invalid(f"port must be a number from 1 to 65535, got {shown}") from None
    if not parts.hostname:
        raise _Invalid(f"must name a host, as in http://localhost:8081, got {shown}")
    if port is not None and not 1 <= port <= 65535:
        raise _Invalid(f"port must be a number from 1 to 65535, got {shown}")
    if parts.query or parts.fragment:
        raise _Invalid(f"must not have a query or fragment, got {shown}")
    return value


def _check_optional_name(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"must be a non-empty string, got {_show(value)}")
    return value


def _check_tool_call_format(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _FORMAT_NAME.fullmatch(value):
        raise _Invalid(f'must be a tool-call format name such as "hermes", got {_show(value)}')
    return value


def _check_api_key(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(f"must be a string, got {_show(value, secret=True)}")
    # An empty key in a template means "no key"; servers treat both alike.
    return value or None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_positive_int(value: Any, *, optional: bool = True) -> int | None:
    if value is None and optional:
        return None
    if not _is_int(value) or value <= 0:
        raise _Invalid(f"must be a positive integer, got {_show(value)}")
    return int(value)


def _check_count(value: Any) -> int:
    if not _is_int(value) or value < 0:
        raise _Invalid(f"must be a whole number >= 0, got {_show(value)}")
    return int(value)


def _check_seconds(value: Any, *, allow_zero: bool) -> float:
    ok = _is_number(value) and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        what = "a finite number of seconds >= 0" if allow_zero else "a finite number of seconds > 0"
        raise _Invalid(f"must be {what}, got {_show(value)}")
    return float(value)


def _check_temperature(value: Any) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise _Invalid(f"must be a finite number >= 0, got {_show(value)}")
    return float(value)


def _check_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"must be true or false, got {_show(value)}")
    return value


def _check_optional_bool(value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise _Invalid(f"must be true, false or null (ask the server), got {_show(value)}")
    return value


_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "type": _check_type,
    "server_url": _check_url,
    "model_name": _check_optional_name,
    "context_size": _check_positive_int,
    "usable_context": _check_positive_int,
    "temperature": _check_temperature,
    "max_tokens": _check_positive_int,
    "enable_tools": _check_bool,
    "native_tools": _check_optional_bool,
    "tool_call_format": _check_tool_call_format,
    "api_key": _check_api_key,
    "connect_timeout": lambda v: _check_seconds(v, allow_zero=False),
    "read_timeout": lambda v: _check_seconds(v, allow_zero=False),
    "max_retries": _check_count,
    "retry_budget": lambda v: _check_seconds(v, allow_zero=True),
}

_BOOL_FIELDS = frozenset({"enable_tools", "native_tools"})
_INT_FIELDS = frozenset({"context_size", "usable_context", "max_tokens", "max_retries"})
_FLOAT_FIELDS = frozenset({"temperature", "connect_timeout", "read_timeout", "retry_budget"})


def _parse_text(name: str, text: str) -> Any:
    """Turn an environment or command-line string into the field's JSON type."""
    stripped = text.strip()
    if name in _INT_FIELDS:
        if not _INT_TEXT.fullmatch(stripped):
            raise _Invalid(f"must be a whole number, got {_show(text)}")
        return int(stripped)
    if name in _FLOAT_FIELDS:
        if _INT_TEXT.fullmatch(stripped):
            return int(stripped)  # so a bad value is shown as typed: -1, not -1.0
        try:
            return float(stripped)
        except ValueError:
            raise _Invalid(f"must be a number, got {_show(text)}") from None
    if name in _BOOL_FIELDS:
        lowered = stripped.lower()
        if lowered in _TRUE_TEXT:
            return True
        if lowered in _FALSE_TEXT:
            return False
        raise _Invalid(f"must be true or false (or 1/0, yes/no, on/off), got {_show(text)}")
    return stripped if name != "api_key" else text


# ---------------------------------------------------------------------------
# Warnings


_OWN_MODULES = frozenset({__name__, __name__ + "_migrate"})


def _caller_stacklevel() -> int:
    """Return the stacklevel that points a warning at the first frame outside pedrollm.config."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_globals.get("__name__") in _OWN_MODULES:
        frame = frame.f_back
        level += 1
    return level


def _warn_legacy(source: str, name: str) -> None:
    warnings.warn(
        f"{source}: model.{name} is deprecated: {LEGACY_FIELDS[name]}; {_MIGRATE_HINT}",
        DeprecationWarning,
        stacklevel=_caller_stacklevel(),
    )


# ---------------------------------------------------------------------------
# The model section


@dataclass
class ModelConfig:
    """The ``model`` section: which server to talk to and how."""

    type: str = "llamacpp"
    server_url: str | None = None
    model_name: str | None = None
    context_size: int | None = None
    usable_context: int | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    enable_tools: bool = True
    native_tools: bool | None = None
    tool_call_format: str | None = None
    api_key: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 120.0
    max_retries: int = 3
    retry_budget: float = 30.0

    def __post_init__(self) -> None:
        # Direct construction gets the same checks (and int->float normalising) as a file.
        problems: list[str] = []
        for f in fields(self):
            try:
                setattr(self, f.name, _VALIDATORS[f.name](getattr(self, f.name)))
            except _Invalid as exc:
                problems.append(f"ModelConfig: model.{f.name}: {exc}")
        problems.extend(f"ModelConfig: {p}" for _, p in self._cross_field_problems())
        if problems:
            raise ConfigError("\n".join(problems))

    def _cross_field_problems(self) -> list[tuple[str, str]]:
        """Check the fields that must agree; each problem is (deciding field, message)."""
        problems = []
        if (
            self.usable_context is not None
            and self.context_size is not None
            and self.usable_context > self.context_size
        ):
            problems.append(
                (
                    "usable_context",
                    f"model.usable_context: must not exceed model.context_size "
                    f"({self.context_size}), got {self.usable_context}",
                )
            )
        if self.server_url is None and self.type not in DEFAULT_SERVER_URLS:
            problems.append(
                (
                    "type",
                    f"model.server_url: required for backend type {self.type!r} "
                    "(it has no default address)",
                )
            )
        return problems

    def resolved_server_url(self) -> str:
        """Return server_url, or the backend's default address, without a trailing slash."""
        url = self.server_url if self.server_url is not None else DEFAULT_SERVER_URLS[self.type]
        return url.rstrip("/")

    def usable_context_for(self, context_window: int) -> int:
        """Return how many tokens a run may fill in a window of ``context_window`` tokens."""
        if self.usable_context is not None:
            return min(self.usable_context, context_window)
        return int(context_window * DEFAULT_USABLE_FRACTION)

    def to_dict(self, redact: bool = True) -> dict[str, Any]:
        """Return the section as JSON data, leaving out unset fields; ``***`` for the key."""
        data: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if redact and f.name == "api_key":
                value = REDACTED
            elif redact and f.name == "server_url":
                value = redact_url(value)
            data[f.name] = value
        return data

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "api_key" and value is not None:
                parts.append(f"api_key={REDACTED!r}")
            elif f.name == "server_url" and value is not None:
                parts.append(f"server_url={redact_url(value)!r}")
            else:
                parts.append(f"{f.name}={value!r}")
        return f"ModelConfig({', '.join(parts)})"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<config>") -> ModelConfig:
        """Validate a ``model`` section; a ConfigError names source, field and bad value."""
        return _build_model(data, source, {})


_MODEL_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ModelConfig))


def _unknown_key_problem(where: str, key: str, candidates: list[str]) -> str:
    return f"{where}: unknown field {key!r}{_suggest(key, candidates)}"


def _build_model(
    data: Mapping[str, Any],
    source: str,
    layered: Mapping[str, tuple[Any, str]],
) -> ModelConfig:
    """Validate the file's section plus ``layered`` values (field -> (value, their source))."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: model: must be a JSON object, got {_show(data)}")
    problems: list[str] = []
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    candidates = list(_MODEL_FIELDS) + list(LEGACY_FIELDS)
    for key, value in data.items():
        if key in LEGACY_FIELDS:
            _warn_legacy(source, key)
        elif key in _MODEL_FIELDS:
            values[key] = value
            origin[key] = source
        else:
            problems.append(_unknown_key_problem(f"{source}: model", str(key), candidates))
    for key, (value, where) in layered.items():
        values[key] = value
        origin[key] = where
    checked: dict[str, Any] = {}
    for key, value in values.items():
        try:
            checked[key] = _VALIDATORS[key](value)
        except _Invalid as exc:
            problems.append(f"{origin[key]}: model.{key}: {exc}")
    if problems:
        raise ConfigError("\n".join(problems))
    model = ModelConfig.__new__(ModelConfig)
    for f in fields(ModelConfig):
        default = f.default
        setattr(model, f.name, checked.get(f.name, default))
    cross = model._cross_field_problems()
    if cross:
        # Name where the deciding value came from: the layer that set it, else the file.
        raise ConfigError("\n".join(f"{origin.get(name, source)}: {p}" for name, p in cross))
    return model


# ---------------------------------------------------------------------------
# The whole file


def _redact_tree(value: Any) -> Any:
    """Copy JSON data with the values of secret-looking keys replaced by ``***``."""
    if isinstance(value, Mapping):
        return {
            k: (
                REDACTED
                if isinstance(k, str) and _SECRET_KEY.search(k) and v is not None
                else _redact_tree(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact_tree(v) for v in value]
    return value


@dataclass(repr=False)
class Config:
    """A loaded config file: the ``model`` section and every other section untouched."""

    model: ModelConfig = field(default_factory=ModelConfig)
    path: Path | None = None
    other: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, redact: bool = True) -> dict[str, Any]:
        """Return the file's JSON data; ``redact=False`` for writing it back to disk.

        Redacting hides ``model.api_key`` and, in the other sections, the values of keys
        that look secret (password, token, secret, api key).
        """
        other = _redact_tree(self.other) if redact else copy.deepcopy(self.other)
        return {"model": self.model.to_dict(redact=redact), **other}

    def __repr__(self) -> str:
        # The other sections may hold database passwords: show only their names.
        return (
            f"Config(model={self.model!r}, path={self.path!r}, "
            f"other=<sections: {', '.join(map(str, self.other)) or 'none'}>)"
        )

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], source: str = "<config>", path: Path | None = None
    ) -> Config:
        """Validate a whole config document (``model`` plus other sections)."""
        return _build_config(data, source, path, {})


def _build_config(
    data: Any, source: str, path: Path | None, layered: Mapping[str, tuple[Any, str]]
) -> Config:
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{source}: the file must hold a JSON object "
            f'(with a "model" section), got {type(data).__name__}'
        )
    section = data.get("model", {})
    model = _build_model(section, source, layered)
    other = {k: copy.deepcopy(v) for k, v in data.items() if k != "model"}
    return Config(model=model, path=path, other=other)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object hook: a repeated key would silently drop the first value."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Invalid(f"duplicate key {key!r}")
        result[key] = value
    return result


def read_config_file(path: str | Path, source: str | None = None) -> Any:
    """Read a JSON config file; a ConfigError names the file (and line, column if invalid)."""
    label = source if source is not None else str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{label}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read: {exc.strerror or exc}") from None
    try:
        # utf-8-sig: editors on Windows save JSON with a byte-order mark.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{label}: not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{label}: line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}"
        ) from None
    except _Invalid as exc:
        raise ConfigError(f"{label}: {exc}") from None


def find_config_file(
    path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> tuple[Path, str] | None:
    """Return (path, label for messages) of the file load_config would read, or None."""
    environ = os.environ if env is None else env
    if path is not None:
        return Path(path), str(path)
    from_env = environ.get(CONFIG_PATH_ENV, "")
    if from_env:
        return Path(from_env), f"{from_env} (from {CONFIG_PATH_ENV})"
    here = Path.cwd() / CONFIG_FILENAME
    if here.is_file():
        return here, CONFIG_FILENAME
    home = Path.home() / CONFIG_FILENAME
    if home.is_file():
        return home, f"~/{CONFIG_FILENAME}"
    return None


def _layer_env(environ: Mapping[str, str]) -> tuple[dict[str, tuple[Any, str]], list[str]]:
    layered: dict[str, tuple[Any, str]] = {}
    problems: list[str] = []
    for var, name in ENV_VARS.items():
        text = environ.get(var, "")
        if not text:
            continue
        where = f"environment variable {var}"
        try:
            layered[name] = (_parse_text(name, text), where)
        except _Invalid as exc:
            problems.append(f"{where}: model.{name}: {exc}")
    return layered, problems


def _layer_overrides(
    overrides: Mapping[str, Any],
) -> tuple[dict[str, tuple[Any, str]], list[str]]:
    layered: dict[str, tuple[Any, str]] = {}
    problems: list[str] = []
    where = "command-line override"
    for name, value in overrides.items():
        # argparse leaves unused flags at None: they override nothing.
        if value is None:
            continue
        if name not in _MODEL_FIELDS:
            problems.append(_unknown_key_problem(where, str(name), list(_MODEL_FIELDS)))
            continue
        if isinstance(value, str) and (
            name in _INT_FIELDS or name in _FLOAT_FIELDS or name in _BOOL_FIELDS
        ):
            try:
                value = _parse_text(name, value)
            except _Invalid as exc:
                problems.append(f"{where}: model.{name}: {exc}")
                continue
        layered[name] = (value, where)
    return layered, problems


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Load the config file (or the defaults), then apply environment and ``overrides``."""
    environ = os.environ if env is None else env
    layered, problems = _layer_env(environ)
    from_flags, flag_problems = _layer_overrides(overrides or {})
    layered.update(from_flags)
    problems.extend(flag_problems)
    if problems:
        raise ConfigError("\n".join(problems))
    found = find_config_file(path, environ)
    if found is None:
        return _build_config({}, "defaults", None, layered)
    file_path, label = found
    data = read_config_file(file_path, label)
    return _build_config(data, label, file_path.resolve(), layered)


_MIGRATE_NAMES = frozenset({"Migration", "migrate_config", "write_migrated"})


def __getattr__(name: str) -> Any:
    """Serve the migration API from here too, importing it on first use.

    config_migrate builds on this module, so importing it eagerly here would be circular.
    """
    if name in _MIGRATE_NAMES:
        from . import config_migrate

        return getattr(config_migrate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BACKEND_TYPES",
    "CONFIG_FILENAME",
    "DEFAULT_SERVER_URLS",
    "ENV_VARS",
    "LEGACY_FIELDS",
    "Config",
    "Migration",
    "ModelConfig",
    "find_config_file",
    "load_config",
    "migrate_config",
    "read_config_file",
    "write_migrated",
]
