"""Finding and reading the config file, and loading it with the environment and flags.

Where :func:`load_config` looks, first match wins (files are never merged):

1. the ``path`` argument;
2. the file named by ``PEDROLLM_CONFIG``;
3. ``.pedrocli.json`` in the working directory;
4. ``.pedrocli.json`` in the home directory;
5. no file: the defaults (a llama-server at http://localhost:8081).

Environment variables override the file, and ``overrides`` (command-line flags) override
both.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .config_schema import Config, build_config, layers_from_env, layers_from_overrides
from .errors import ConfigError

CONFIG_FILENAME = ".pedrocli.json"
CONFIG_PATH_ENV = "PEDROLLM_CONFIG"


class _DuplicateKey(ValueError):
    """A JSON object repeats a key."""


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object hook: a repeated key would silently drop the first value."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(f"duplicate key {key!r}")
        result[key] = value
    return result


def _json_problem(text: str, exc: json.JSONDecodeError) -> str:
    """Say where and what is wrong, the same on every Python version.

    The commonest mistake, a trailing comma before ``}`` or ``]``, is reported at the comma
    (Python 3.13 reports it there; older versions point at the bracket and say a
    property name was expected); other errors keep json's own position and words.
    """
    pos = exc.pos
    comma = pos if text[pos:pos + 1] == "," else len(text[:pos].rstrip()) - 1
    if comma > 0 and text[comma] == ",":
        before = text[:comma].rstrip()[-1:]
        after = text[comma + 1:].lstrip()[:1]
        # A comma right after "[", "{", ":" or "," is a missing value, not a trailing comma.
        if after in ("}", "]") and before not in ("", "[", "{", ":", ","):
            line = text.count("\n", 0, comma) + 1
            column = comma - text.rfind("\n", 0, comma)
            return f"line {line}, column {column}: not valid JSON: trailing comma before '{after}'"
    return f"line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}"


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
        raise ConfigError(f"{label}: {_json_problem(text, exc)}") from None
    except _DuplicateKey as exc:
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


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Load the config file (or the defaults), then apply environment and ``overrides``."""
    environ = os.environ if env is None else env
    layers, problems = layers_from_env(environ)
    from_flags, flag_problems = layers_from_overrides(overrides or {})
    layers.update(from_flags)
    problems.extend(flag_problems)
    if problems:
        raise ConfigError("\n".join(problems))
    found = find_config_file(path, environ)
    if found is None:
        return build_config({}, "defaults", None, layers)
    file_path, label = found
    data = read_config_file(file_path, label)
    return build_config(data, label, file_path.resolve(), layers)


__all__ = [
    "CONFIG_FILENAME",
    "CONFIG_PATH_ENV",
    "find_config_file",
    "load_config",
    "read_config_file",
]
