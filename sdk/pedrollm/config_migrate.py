"""Rewriting llama-cli era config files into the llama-server form.

The old configs named a llama.cpp binary and the settings it was started with
(``llamacpp_path``, ``model_path``, ``threads``, ``n_gpu_layers``); pedrollm talks to a
running server instead, so those settings move to the server's command line and the
file gets a ``server_url``. ``enable_grammar`` has no file equivalent any more: a
grammar is now given per request.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import urlsplit

from .backends import LlamaCppBackend
from .config_checks import DEFAULT_SERVER_URLS, InvalidValue, check_path, show_value
from .config_files import read_config_file
from .config_schema import LEGACY, LEGACY_FIELDS, MODEL_FIELDS, Config
from .errors import ConfigError
from .redaction import redact_tree

SERVER_BINARY = "llama-server"
# The backend whose server the old llama-cli settings move to.
LLAMA_SERVER_BACKEND = LlamaCppBackend.name
MODEL_PLACEHOLDER = "MODEL.gguf"

# Hosts llama-server listens on without a --host flag (its default is 127.0.0.1).
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1"})


@dataclass(repr=False)
class Migration:
    """A migrated config: the new JSON form, the server command to run, one note per change."""

    config: dict[str, Any]
    server_command: list[str]
    notes: list[str]
    legacy_fields: list[str] = field(default_factory=list)
    written_to: Path | None = None
    backup_path: Path | None = None

    @property
    def changed(self) -> bool:
        """Whether the old config had any llama-cli field to migrate."""
        return bool(self.legacy_fields)

    @property
    def command_line(self) -> str:
        """Return the server command as one shell-quoted line ('' when there is none)."""
        return shlex.join(self.server_command)

    def to_json(self) -> str:
        """Return the new config file's text (with the real api_key: it is for the file)."""
        return json.dumps(self.config, indent=2, ensure_ascii=False) + "\n"

    def __repr__(self) -> str:
        return (
            f"Migration(config={redact_tree(self.config)!r}, "
            f"server_command={self.server_command!r}, notes={self.notes!r}, "
            f"written_to={self.written_to!r}, backup_path={self.backup_path!r})"
        )


def _server_binary(llamacpp_path: str | None) -> str:
    """Return llama-server's path: beside the old llama-cli binary, or on PATH."""
    if llamacpp_path is None:
        return SERVER_BINARY
    old = PurePath(llamacpp_path)
    # Some configs pointed at the build directory rather than the binary.
    directory = old if Path(llamacpp_path).is_dir() else old.parent
    suffix = ".exe" if old.suffix.lower() == ".exe" else ""
    if str(directory) in ("", "."):
        return SERVER_BINARY + suffix
    return str(directory / (SERVER_BINARY + suffix))


def _check_legacy(model: Mapping[str, Any], source: str) -> list[str]:
    """Return the problems in the legacy fields' values (migration needs them right)."""
    problems = []
    for name, legacy in LEGACY.items():
        if name in model:
            try:
                legacy.check(model[name])
            except InvalidValue as exc:
                problems.append(f"{source}: model.{name}: {exc}")
    return problems


def _new_model_section(model: Mapping[str, Any], backend: Any) -> dict[str, Any]:
    """Return the model section without legacy fields, with type and server_url first."""
    new: dict[str, Any] = {"type": backend}
    if "server_url" not in model and isinstance(backend, str) and backend in DEFAULT_SERVER_URLS:
        new["server_url"] = DEFAULT_SERVER_URLS[backend]
    for key, value in model.items():
        if key not in LEGACY_FIELDS:
            new[key] = value
    return new


def _server_values(model: Mapping[str, Any]) -> dict[str, str]:
    """The legacy values that go on the server's command line, as they will be typed.

    A path starting with ``~`` is expanded here: quoted for the shell it would stay a
    literal ``~`` and llama-server would not find the file.
    """
    values = {}
    for name, legacy in LEGACY.items():
        if name in model and (legacy.server_flag is not None or name == "llamacpp_path"):
            value = str(model[name])
            is_path = legacy.check is check_path  # llamacpp_path, model_path
            values[name] = os.path.expanduser(value) if is_path else value
    return values


def _command(values: Mapping[str, str], model: Mapping[str, Any], server_url: str,
             tools: bool) -> list[str]:
    """Build the llama-server command line that replaces the old binary's settings."""
    parts = urlsplit(server_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    command = [
        _server_binary(values.get("llamacpp_path")),
        "-m",
        values.get("model_path", MODEL_PLACEHOLDER),
        "--port",
        str(port),
    ]
    if parts.hostname and parts.hostname not in _LOCAL_HOSTS:
        command += ["--host", parts.hostname]
    context_size = model.get("context_size")
    if isinstance(context_size, int) and not isinstance(context_size, bool):
        command += ["--ctx-size", str(context_size)]
    for name, legacy in LEGACY.items():
        if legacy.server_flag is not None and name != "model_path" and name in values:
            command += [legacy.server_flag, values[name]]
    if tools:
        # llama-server only accepts tools when it renders the model's Jinja chat template.
        command.append("--jinja")
    return command


def _notes(
    values: Mapping[str, str],
    model: Mapping[str, Any],
    backend: str,
    server_url: str | None,
    command: list[str],
) -> list[str]:
    notes = []
    on_server = backend == LLAMA_SERVER_BACKEND
    if "llamacpp_path" in model:
        notes.append(
            f"llamacpp_path: replaced by server_url {server_url}; start {command[0]} "
            f"(the command below) instead of running {values['llamacpp_path']}"
            if on_server
            else f"llamacpp_path: removed; backend {backend!r} runs its own server"
        )
    for name, legacy in LEGACY.items():
        if legacy.server_flag is None or name not in model:
            continue
        notes.append(
            f"{name}: moved to the server command line ({legacy.server_flag} {values[name]})"
            if on_server
            else f"{name}: removed; backend {backend!r} sets this on its own server"
        )
    if "enable_grammar" in model:
        notes.append(f"enable_grammar: {LEGACY_FIELDS['enable_grammar']}")
    if on_server and "model_path" not in model:
        notes.append(
            f"model_path: not set; replace {MODEL_PLACEHOLDER} in the server command "
            "with your model file"
        )
    if on_server and "--jinja" in command:
        unset = "" if "enable_tools" in model else "not set, so tools are on; "
        notes.append(f"enable_tools: {unset}llama-server needs --jinja for tool calls (added)")
    return notes


def migrate_config(old: Mapping[str, Any], source: str = "<config>") -> Migration:
    """Turn an old llama-cli config into the server form, its server command and notes."""
    if not isinstance(old, Mapping):
        raise ConfigError(f"{source}: the file must hold a JSON object, got {type(old).__name__}")
    model = old.get("model", {})
    if not isinstance(model, Mapping):
        raise ConfigError(f"{source}: model: must be a JSON object, got {show_value(model)}")
    legacy = [name for name in LEGACY_FIELDS if name in model]
    if not legacy:
        Config.from_dict(old, source)
        return Migration(
            config=dict(old),
            server_command=[],
            notes=[f"nothing to migrate: no llama-cli fields ({', '.join(LEGACY_FIELDS)})"],
        )
    problems = _check_legacy(model, source)
    if problems:
        raise ConfigError("\n".join(problems))
    backend = model.get("type", MODEL_FIELDS["type"].default)
    new_model = _new_model_section(model, backend)
    # Validate the result now, so a migration never writes a file that will not load.
    loaded = Config.from_dict({"model": new_model}, source).model
    values = _server_values(model)
    server_url = loaded.resolved_server_url() if backend == LLAMA_SERVER_BACKEND else None
    command = (
        _command(values, model, server_url, loaded.enable_tools)
        if server_url is not None
        else []
    )
    # Keep the top-level sections in their original order, model where it was.
    config = {key: (new_model if key == "model" else value) for key, value in old.items()}
    return Migration(
        config=config,
        server_command=command,
        notes=_notes(values, model, backend, server_url, command),
        legacy_fields=legacy,
    )


def _write_exclusive(path: Path, data: bytes, mode_from: Path) -> None:
    """Create ``path`` with ``data``; refuse if it exists. Keeps ``mode_from``'s permissions."""
    try:
        with open(path, "xb") as out:
            out.write(data)
    except FileExistsError:
        raise ConfigError(f"{path}: already exists; not overwriting it") from None
    # An old config may hold an api_key and be private (0600): the copy stays private.
    shutil.copymode(mode_from, path)


def _replace_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` so a crash leaves either the old or the new file, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_migrated(old_path: str | Path, new_path: str | Path | None = None) -> Migration:
    """Migrate a config file: to ``new_path`` (never overwritten), else in place with a backup.

    In place, the old file is first copied to ``OLD.json.bak``; an existing backup is
    never replaced, so the command refuses instead. A file with nothing to migrate is
    left alone (``written_to`` is None).
    """
    old = Path(old_path)
    migration = migrate_config(read_config_file(old), str(old))
    if not migration.changed:
        return migration
    text = migration.to_json().encode("utf-8")
    target = Path(new_path) if new_path is not None else old
    if target.exists() and target.resolve() == old.resolve():
        backup = old.with_name(old.name + ".bak")
        if backup.exists():
            raise ConfigError(
                f"{backup}: a backup already exists; move it away or give a new file name"
            )
        _write_exclusive(backup, old.read_bytes(), old)
        _replace_atomically(old, text)
        return dataclasses.replace(migration, written_to=old, backup_path=backup)
    _write_exclusive(target, text, old)
    return dataclasses.replace(migration, written_to=target)
