"""The config schema: every ``model`` field declared once, and the one way to build it.

Each field of :class:`ModelConfig` carries, next to its type and default, its
validator, its environment variable and its documentation (the field's metadata,
made with :func:`setting`). Everything else is derived from that one declaration:
:data:`ENV_VARS`, how a variable's text is read, the field list in ``pedrollm.config``'s
docstring and the table in docs/configuration.md (:func:`fields_markdown`).

Every way in (a file, the environment, command-line overrides, a dict, direct
construction) reaches :meth:`ModelConfig.__post_init__`, the one validation; the
loaders only add where each value came from, so that an error names its source.

The validators are in :mod:`pedrollm.config_checks`; facts about the backends (their
type names, their default addresses) are read from the backend classes there.
"""

from __future__ import annotations

import copy
import json
import re
import sys
import types
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from .backend import USABLE_CONTEXT_FRACTION
from .config_checks import (
    BACKEND_TYPES,
    DEFAULT_SERVER_URLS,
    POOL_TYPE,
    InvalidValue,
    check_api_key,
    check_backend_type,
    check_bool,
    check_count,
    check_format_name,
    check_gpu_layers,
    check_name,
    check_path,
    check_positive_int,
    check_seconds,
    check_seconds_or_zero,
    check_server_list,
    check_strategy,
    check_temperature,
    check_tool_mode,
    check_tristate,
    check_url,
    show_value,
    suggest,
)
from .errors import ConfigError
from .redaction import REDACTED, redact_url, redact_with_paths

# ---------------------------------------------------------------------------
# The declaration


def setting(
    default: Any,
    check: Callable[[Any], Any],
    doc: str,
    *,
    env: str | None = None,
    secret: bool = False,
    redact: Callable[[Any], Any] | None = None,
) -> Any:
    """Declare a ``model`` field: its default, validator, environment variable and doc.

    ``secret`` fields show as ``***`` everywhere and are read from the environment
    verbatim; ``redact`` gives the shown form of a value that may hold a secret.
    """
    meta = {"check": check, "doc": doc, "env": env, "secret": secret, "redact": redact}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class FieldSpec:
    """One ``model`` field as the schema knows it, derived from its declaration."""

    name: str
    kind: type  # str, int, float, bool (how environment or flag text is read) or list
    optional: bool  # null is allowed (the field is unset)
    default: Any
    check: Callable[[Any], Any]
    doc: str
    env: str | None
    secret: bool
    redact: Callable[[Any], Any] | None

    def validate(self, value: Any) -> Any:
        """Return the value normalised, or raise InvalidValue."""
        if value is None and self.optional:
            return None
        return self.check(value)

    def shown(self, value: Any) -> Any:
        """The value as reprs, redacted dicts and ``config show`` display it."""
        if value is None:
            return None
        if self.secret:
            return REDACTED
        return self.redact(value) if self.redact is not None else value

    def from_text(self, text: str) -> Any:
        """Turn an environment or command-line string into the field's JSON type."""
        stripped = text.strip()
        if self.kind is list:
            raise InvalidValue("is a list of sections: set it in the config file")
        if self.kind is int:
            if not re.fullmatch(r"[+-]?[0-9]+", stripped):
                raise InvalidValue(f"must be a whole number, got {show_value(text)}")
            return int(stripped)
        if self.kind is float:
            if re.fullmatch(r"[+-]?[0-9]+", stripped):
                return int(stripped)  # so a bad value is shown as typed: -1, not -1.0
            try:
                return float(stripped)
            except ValueError:
                raise InvalidValue(f"must be a number, got {show_value(text)}") from None
        if self.kind is bool:
            lowered = stripped.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise InvalidValue(
                f"must be true or false (or 1/0, yes/no, on/off), got {show_value(text)}"
            )
        # A secret is taken as given: stripping could change a key.
        return text if self.secret else stripped


class _FieldProblems(ConfigError):
    """ModelConfig's validation failed; ``problems`` holds (field, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("\n".join(f"ModelConfig: {text}" for _, text in problems))
        self.problems = problems


@dataclass(repr=False)
class ModelConfig:
    """The ``model`` section: which server to talk to and how."""

    type: str = setting(
        "llamacpp", check_backend_type, env="PEDROLLM_BACKEND",
        doc="the kind of server: one of the backend types below",
    )
    server_url: str | None = setting(
        None, check_url, env="PEDROLLM_SERVER_URL", redact=redact_url,
        doc="the server's address; unset: the backend's default address (below)",
    )
    model_name: str | None = setting(
        None, check_name, env="PEDROLLM_MODEL",
        doc="the model to ask for, on servers that host several; unset: the server's own",
    )
    context_size: int | None = setting(
        None, check_positive_int, env="PEDROLLM_CONTEXT_SIZE",
        doc="the context window in tokens; unset: asked from the server",
    )
    usable_context: int | None = setting(
        None, check_positive_int, env="PEDROLLM_USABLE_CONTEXT",
        doc=(
            "tokens a run may fill, at most `context_size`; "
            f"unset: {USABLE_CONTEXT_FRACTION:.0%} of the context window"
        ),
    )
    temperature: float | None = setting(
        None, check_temperature, env="PEDROLLM_TEMPERATURE",
        doc="sampling temperature for requests that set none; unset: the server's default",
    )
    max_tokens: int | None = setting(
        None, check_positive_int, env="PEDROLLM_MAX_TOKENS",
        doc="most tokens to generate for requests that set none; unset: the server's default",
    )
    enable_tools: bool = setting(
        True, check_bool, env="PEDROLLM_ENABLE_TOOLS",
        doc="use tool calling (llama-server needs `--jinja` for it)",
    )
    native_tools: bool | None = setting(
        None, check_tristate, env="PEDROLLM_NATIVE_TOOLS",
        doc=(
            "unset: ask the server; true: the server returns tool calls; false: tools go "
            "into the system prompt and calls are parsed from the text"
        ),
    )
    tool_mode: str = setting(
        "auto", check_tool_mode, env="PEDROLLM_TOOL_MODE",
        doc=(
            "how tools reach the server: `native`, `constrained` (the reply held to a tool "
            "call or an answer by a JSON schema), `prompt` (described in the prompt only); "
            "`auto`: native where the server returns tool calls, else constrained"
        ),
    )
    tool_call_format: str | None = setting(
        None, check_format_name, env="PEDROLLM_TOOL_CALL_FORMAT",
        doc=(
            "the model's tool-call text format (`hermes`, `mistral`, ...); "
            "unset: detected from the model, else `hermes`"
        ),
    )
    api_key: str | None = setting(
        None, check_api_key, env="PEDROLLM_API_KEY", secret=True,
        doc="sent as `Authorization: Bearer`; never shown in reprs, logs or errors",
    )
    connect_timeout: float = setting(
        5.0, check_seconds, env="PEDROLLM_CONNECT_TIMEOUT",
        doc="seconds to wait for a connection",
    )
    read_timeout: float = setting(
        600.0, check_seconds, env="PEDROLLM_READ_TIMEOUT",
        doc=(
            "seconds to wait for the server to send anything; without streaming that is "
            "the whole reply (see below)"
        ),
    )
    deadline: float | None = setting(
        None, check_seconds, env="PEDROLLM_DEADLINE",
        doc="most seconds one request may take, retries and streaming included; unset: none",
    )
    max_response_bytes: int = setting(
        64 * 1024 * 1024, check_positive_int, env="PEDROLLM_MAX_RESPONSE_BYTES",
        doc="largest reply, or stream event, in bytes after decompression",
    )
    max_retries: int = setting(
        3, check_count, env="PEDROLLM_MAX_RETRIES",
        doc="retries of a refused connection, a loading model (503) or a 429",
    )
    retry_budget: float = setting(
        30.0, check_seconds_or_zero, env="PEDROLLM_RETRY_BUDGET",
        doc="most seconds all retries of one request may wait",
    )
    servers: list[dict[str, Any]] | None = setting(
        None, check_server_list, redact=lambda value: _shown_servers(value),
        doc=(
            "type `pool` only: the servers, each a `model` section of its own "
            "(fields set beside `servers` apply to every server that does not set them)"
        ),
    )
    strategy: str = setting(
        "least_busy", check_strategy,
        doc=(
            "type `pool` only: `least_busy` (most free slots, else fewest requests in "
            "flight), `round_robin`, or `first` (the first ready server in the list)"
        ),
    )
    sticky: bool = setting(
        False, check_bool,
        doc=(
            "type `pool` only: send every turn of a conversation to the same server, so "
            "its prompt cache is reused"
        ),
    )

    def __post_init__(self) -> None:
        # The one validation: files, the environment, flags, dicts and direct
        # construction all arrive here.
        problems: list[tuple[str, str]] = []
        for spec in MODEL_FIELDS.values():
            try:
                setattr(self, spec.name, spec.validate(getattr(self, spec.name)))
            except InvalidValue as exc:
                problems.append((spec.name, f"model.{spec.name}: {exc}"))
        if not problems:
            problems = self._cross_field_problems()
        if problems:
            raise _FieldProblems(problems)

    def _cross_field_problems(self) -> list[tuple[str, str]]:
        """Check the fields that must agree; each problem is (deciding field, message)."""
        problems = []
        if (
            self.usable_context is not None
            and self.context_size is not None
            and self.usable_context > self.context_size
        ):
            problems.append((
                "usable_context",
                f"model.usable_context: must not exceed model.context_size "
                f"({self.context_size}), got {self.usable_context}",
            ))
        if self.type == POOL_TYPE:
            problems.extend(self._pool_problems())
        else:
            problems.extend(
                (name, f"model.{name}: only for type {POOL_TYPE!r} (a pool of servers), "
                       f"not {self.type!r}")
                for name in _POOL_FIELDS
                if getattr(self, name) != MODEL_FIELDS[name].default
            )
        if (self.server_url is None and self.type not in DEFAULT_SERVER_URLS
                and self.type != POOL_TYPE):
            problems.append((
                "type",
                f"model.server_url: required for backend type {self.type!r} "
                "(it has no default address)",
            ))
        return problems

    def _pool_problems(self) -> list[tuple[str, str]]:
        """Check a pool: its own fields, then each server as a section of its own."""
        if self.servers is None:
            return [("servers", 'model.servers: required for type "pool": a list of server '
                                'sections such as [{"type": "llamacpp", "server_url": '
                                '"http://host:8081"}, ...]')]
        problems = []
        if self.server_url is not None:
            problems.append(("server_url", "model.server_url: a pool has no address of its own; "
                                           "give each server's in model.servers"))
        try:
            self.pool_servers()
        except _FieldProblems as exc:
            problems.extend(exc.problems)
        return problems

    def pool_servers(self) -> list[ModelConfig]:
        """Return a pool's servers as sections of their own, the pool's settings filled in.

        A field set beside ``servers`` (other than the pool's own: type, server_url,
        servers, strategy, sticky, max_retries, retry_budget) applies to every server
        that does not set it. A server retries nothing unless it sets ``max_retries``:
        the pool moves the request to another server instead.
        """
        inherited = {
            name: getattr(self, name) for name, spec in MODEL_FIELDS.items()
            if name not in _POOL_OWN and getattr(self, name) != spec.default
        }
        members: list[ModelConfig] = []
        problems: list[tuple[str, str]] = []
        for index, item in enumerate(self.servers or []):
            where = f"model.servers[{index}]"
            unknown = [key for key in item if key not in MODEL_FIELDS]
            nested = [key for key in item if key in _POOL_FIELDS]
            if unknown or nested:
                problems.extend(
                    ("servers", f"{where}: unknown field {key!r}"
                                f"{suggest(str(key), list(MODEL_FIELDS))}") for key in unknown)
                problems.extend(
                    ("servers", f"{where}.{key}: a pool's own field; set it beside "
                                "model.servers, not in a server") for key in nested)
                continue
            if item.get("type") == POOL_TYPE:
                problems.append(("servers", f"{where}.type: a server in a pool cannot be "
                                            "a pool itself"))
                continue
            values = {"max_retries": 0, **inherited, **item}
            try:
                members.append(ModelConfig(**values))
            except _FieldProblems as exc:
                problems.extend(
                    ("servers", re.sub(r"\bmodel\.", f"{where}.", text))
                    for _, text in exc.problems
                )
        if not problems:
            problems = _disagreements(members)
        if problems:
            raise _FieldProblems(problems)
        return members

    def resolved_server_url(self) -> str:
        """Return server_url, or the backend's default address, without a trailing slash."""
        if self.type == POOL_TYPE:
            return ", ".join(member.resolved_server_url() for member in self.pool_servers())
        url = self.server_url if self.server_url is not None else DEFAULT_SERVER_URLS[self.type]
        return url.rstrip("/")

    def usable_context_for(self, context_window: int) -> int:
        """Return how many tokens a run may fill in a window of ``context_window`` tokens."""
        if self.usable_context is not None:
            return min(self.usable_context, context_window)
        return int(context_window * USABLE_CONTEXT_FRACTION)

    def to_dict(self, redact: bool = True) -> dict[str, Any]:
        """Return the section as JSON data, leaving out unset fields; ``***`` for the key."""
        data: dict[str, Any] = {}
        for spec in MODEL_FIELDS.values():
            if spec.name in _POOL_FIELDS and self.type != POOL_TYPE:
                continue  # a pool's fields mean nothing elsewhere; files stay as they were
            value = getattr(self, spec.name)
            if value is not None:
                data[spec.name] = spec.shown(value) if redact else copy.deepcopy(value)
        return data

    def __repr__(self) -> str:
        parts = (
            f"{spec.name}={spec.shown(getattr(self, spec.name))!r}"
            for spec in MODEL_FIELDS.values()
        )
        return f"ModelConfig({', '.join(parts)})"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<config>") -> ModelConfig:
        """Validate a ``model`` section; a ConfigError names source, field and bad value."""
        return build_model(data, source)


# The pool's fields: refused on any other type and inside a pool's servers.
_POOL_FIELDS = ("servers", "strategy", "sticky")
# Fields a pool's servers never take from the pool (see ModelConfig.pool_servers).
_POOL_OWN = frozenset({"type", "server_url", *_POOL_FIELDS, "max_retries", "retry_budget"})


def _disagreements(members: list[ModelConfig]) -> list[tuple[str, str]]:
    """Where a pool's servers disagree on what must be one model family's.

    The text format of tool calls is the model family's; tools on for some servers and
    off for others would make a request with tools fail on some servers only.
    """
    problems = []
    for name in ("tool_call_format", "enable_tools"):
        first: tuple[int, Any] | None = None
        for index, member in enumerate(members):
            value = getattr(member, name)
            if value is None:
                continue
            if first is None:
                first = (index, value)
            elif value != first[1]:
                problems.append((
                    "servers",
                    f"model.servers[{index}].{name}: {json.dumps(value)} but "
                    f"model.servers[{first[0]}].{name} is {json.dumps(first[1])}; a pool's "
                    "servers serve one model family: set it once, beside model.servers",
                ))
    return problems


def _shown_servers(servers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A pool's servers as shown: each one's API key and URL password hidden."""
    shown = []
    for item in servers:
        entry = dict(item)
        for name in ("api_key", "server_url"):
            if isinstance(entry.get(name), str):
                entry[name] = MODEL_FIELDS[name].shown(entry[name])
        shown.append(entry)
    return shown


def _field_spec(f: Field[Any], hint: Any) -> FieldSpec:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = isinstance(hint, types.UnionType) and len(args) < len(typing.get_args(hint))
    kind = args[0] if optional else hint
    kind = typing.get_origin(kind) or kind
    if kind not in (str, int, float, bool, list):
        raise TypeError(f"ModelConfig.{f.name}: no text form for {hint!r}")
    return FieldSpec(name=f.name, kind=kind, optional=optional, default=f.default, **f.metadata)


_HINTS = typing.get_type_hints(ModelConfig)

#: Every ``model`` field, in declaration order.
MODEL_FIELDS: dict[str, FieldSpec] = {
    f.name: _field_spec(f, _HINTS[f.name]) for f in fields(ModelConfig)
}

#: Environment variable -> the field it sets.
ENV_VARS: dict[str, str] = {spec.env: name for name, spec in MODEL_FIELDS.items() if spec.env}


# ---------------------------------------------------------------------------
# Legacy llama-cli fields


@dataclass(frozen=True)
class LegacyField:
    """A llama-cli era field: what replaces it, and where it goes on llama-server."""

    replacement: str  # the text of its DeprecationWarning
    check: Callable[[Any], Any]  # its value must be right to be migrated
    server_flag: str | None = None  # the llama-server flag that takes its value


LEGACY: dict[str, LegacyField] = {
    "llamacpp_path": LegacyField(
        "pedrollm no longer runs a llama.cpp binary; start llama-server yourself and set "
        "model.server_url (default http://localhost:8081)",
        check_path,
    ),
    "model_path": LegacyField(
        "the model file is loaded by the server: pass it to llama-server as -m PATH "
        "(and set model.model_name on servers that host several models)",
        check_path,
        "-m",
    ),
    "threads": LegacyField("pass it to llama-server as -t N", check_positive_int, "-t"),
    "n_gpu_layers": LegacyField("pass it to llama-server as -ngl N", check_gpu_layers, "-ngl"),
    "enable_grammar": LegacyField(
        "grammars are now per request (InferenceRequest.grammar)", check_bool
    ),
}

#: The llama-cli era fields and what replaces each (the text of its DeprecationWarning).
LEGACY_FIELDS: dict[str, str] = {name: legacy.replacement for name, legacy in LEGACY.items()}

_MIGRATE_HINT = "`pedrollm config migrate FILE` rewrites the file and prints the server command"


def _user_stacklevel() -> int:
    """Return the stacklevel of the first frame outside pedrollm, seen from the caller.

    A warning attributed to the user's code is shown by Python's default filters (a
    script's ``__main__``, pytest); one attributed to pedrollm's own modules, however
    many of them lie between (``new_backend``, ``load_config``), is hidden.
    """
    package = __name__.partition(".")[0]
    # Frame 0 is this function, 1 the warning's caller (stacklevel 1), 2 its caller.
    frame = sys._getframe(2)
    level = 2
    while frame.f_back is not None and (
        frame.f_globals.get("__name__", "").partition(".")[0] == package
    ):
        frame = frame.f_back
        level += 1
    return level


def _warn_legacy(source: str, name: str) -> None:
    warnings.warn(
        f"{source}: model.{name} is deprecated: {LEGACY_FIELDS[name]}; {_MIGRATE_HINT}",
        DeprecationWarning,
        stacklevel=_user_stacklevel(),
    )


# ---------------------------------------------------------------------------
# Building: sources in, one validation, errors naming where each value came from

#: Field name -> (value, where it came from), for the layers over the file.
Layers = dict[str, tuple[Any, str]]


def _unknown_field(where: str, key: str, candidates: list[str]) -> str:
    return f"{where}: unknown field {key!r}{suggest(key, candidates)}"


def build_model(
    data: Mapping[str, Any], source: str, layers: Mapping[str, tuple[Any, str]] | None = None
) -> ModelConfig:
    """Validate a ``model`` section with ``layers`` over it; errors name each value's source."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: model: must be a JSON object, got {show_value(data)}")
    problems: list[str] = []
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key, value in data.items():
        if key in LEGACY:
            _warn_legacy(source, key)
        elif key in MODEL_FIELDS:
            values[key] = value
        else:
            problems.append(
                _unknown_field(f"{source}: model", str(key), [*MODEL_FIELDS, *LEGACY])
            )
    for key, (value, where) in (layers or {}).items():
        values[key] = value
        origin[key] = where
    try:
        model = ModelConfig(**values)
    except _FieldProblems as exc:
        # Name where the deciding value came from: the layer that set it, else the file.
        problems.extend(f"{origin.get(name, source)}: {text}" for name, text in exc.problems)
    if problems:
        raise ConfigError("\n".join(problems))
    return model


def build_config(
    data: Any,
    source: str,
    path: Path | None = None,
    layers: Mapping[str, tuple[Any, str]] | None = None,
) -> Config:
    """Validate a whole config document, with ``layers`` over its ``model`` section."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{source}: the file must hold a JSON object "
            f'(with a "model" section), got {type(data).__name__}'
        )
    model = build_model(data.get("model", {}), source, layers)
    other = {k: copy.deepcopy(v) for k, v in data.items() if k != "model"}
    return Config(model=model, path=path, other=other)


def layers_from_env(environ: Mapping[str, str]) -> tuple[Layers, list[str]]:
    """Read the ``PEDROLLM_*`` variables; an empty one counts as unset."""
    layers: Layers = {}
    problems: list[str] = []
    for var, name in ENV_VARS.items():
        text = environ.get(var, "")
        if not text:
            continue
        where = f"environment variable {var}"
        try:
            layers[name] = (MODEL_FIELDS[name].from_text(text), where)
        except InvalidValue as exc:
            problems.append(f"{where}: model.{name}: {exc}")
    return layers, problems


def layers_from_overrides(overrides: Mapping[str, Any]) -> tuple[Layers, list[str]]:
    """Read command-line overrides (field name -> value or its text; None: not given)."""
    layers: Layers = {}
    problems: list[str] = []
    where = "command-line override"
    for name, value in overrides.items():
        # argparse leaves unused flags at None: they override nothing.
        if value is None:
            continue
        spec = MODEL_FIELDS.get(name)
        if spec is None:
            problems.append(_unknown_field(where, str(name), list(MODEL_FIELDS)))
            continue
        if isinstance(value, str) and spec.kind is not str:
            try:
                value = spec.from_text(value)
            except InvalidValue as exc:
                problems.append(f"{where}: model.{name}: {exc}")
                continue
        layers[name] = (value, where)
    return layers, problems


# ---------------------------------------------------------------------------
# The whole file


@dataclass(repr=False)
class Config:
    """A loaded config file: the ``model`` section and every other section untouched."""

    model: ModelConfig = field(default_factory=ModelConfig)
    path: Path | None = None
    other: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, redact: bool = True) -> dict[str, Any]:
        """Return the file's JSON data; ``redact=False`` for writing it back to disk.

        Redacting hides ``model.api_key``, a password in ``model.server_url`` and, in
        the other sections, every secret :func:`~pedrollm.redaction.redact_with_paths`
        finds (by key name and by the shape of the value).
        """
        return self.redacted()[0] if redact else {
            "model": self.model.to_dict(redact=False), **copy.deepcopy(self.other)}

    def redacted(self) -> tuple[dict[str, Any], list[str]]:
        """The file's JSON data with secrets hidden, and the paths of what was hidden."""
        model = self.model.to_dict(redact=True)
        raw = self.model.to_dict(redact=False)
        hidden = [f"model.{name}" for name in model if model[name] != raw[name]]
        other, paths = redact_with_paths(self.other)
        return {"model": model, **other}, hidden + paths

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
        return build_config(data, source, path)


# ---------------------------------------------------------------------------
# Documentation, generated from the declaration


_KIND_NAMES = {str: "string", int: "integer", float: "number", bool: "true/false",
               list: "list of objects"}


def _default_text(spec: FieldSpec) -> str:
    return "unset" if spec.default is None else f"`{json.dumps(spec.default)}`"


def fields_markdown() -> str:
    """Return docs/configuration.md's tables: the fields, then the backend types."""
    lines = [
        "| field (`model.`) | type | default | environment variable | meaning |",
        "|---|---|---|---|---|",
    ]
    for spec in MODEL_FIELDS.values():
        kind = _KIND_NAMES[spec.kind] + (" or null" if spec.optional else "")
        env = f"`{spec.env}`" if spec.env else ""
        lines.append(
            f"| `{spec.name}` | {kind} | {_default_text(spec)} | {env} | {spec.doc} |"
        )
    lines += ["", "| `type` | default `server_url` |", "|---|---|"]
    for name in BACKEND_TYPES:
        url = DEFAULT_SERVER_URLS.get(name)
        where = (f"`{url}`" if url else "none: set `servers`" if name == POOL_TYPE
                 else "none: set `server_url`")
        lines.append(f"| `{name}` | {where} |")
    return "\n".join(lines) + "\n"


def env_vars_text() -> str:
    """Return the environment variables as a reStructuredText list, for a docstring."""
    return "".join(
        f"- ``{var}``: ``{name}``\n" for var, name in ENV_VARS.items()
    )


__all__ = [
    "ENV_VARS",
    "LEGACY",
    "LEGACY_FIELDS",
    "MODEL_FIELDS",
    "Config",
    "FieldSpec",
    "LegacyField",
    "Layers",
    "ModelConfig",
    "build_config",
    "build_model",
    "env_vars_text",
    "fields_markdown",
    "layers_from_env",
    "layers_from_overrides",
    "setting",
]
