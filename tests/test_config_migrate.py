"""Migrating llama-cli era configs: the new file, the llama-server command, the notes."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

import pedrollm
from pedrollm.config import Config, Migration, load_config, migrate_config, write_migrated
from pedrollm.errors import ConfigError

OLD: dict[str, Any] = {
    "model": {
        "type": "llamacpp",
        "llamacpp_path": "/opt/llama.cpp/build/bin/llama-cli",
        "model_path": "/models/qwen2.5-coder-7b-q4_k_m.gguf",
        "context_size": 32768,
        "usable_context": 24576,
        "n_gpu_layers": -1,
        "threads": 8,
        "temperature": 0.2,
        "enable_tools": True,
        "enable_grammar": True,
        "api_key": "sk-old-secret",
    },
    "project": {"name": "p", "workdir": "."},
    "database": {"path": "~/.pedrocli/jobs.db"},
}


def test_full_legacy_config_migrates_to_server_form() -> None:
    migration = migrate_config(OLD, "old.json")
    assert migration.config == {
        "model": {
            "type": "llamacpp",
            "server_url": "http://localhost:8081",
            "context_size": 32768,
            "usable_context": 24576,
            "temperature": 0.2,
            "enable_tools": True,
            "api_key": "sk-old-secret",
        },
        "project": {"name": "p", "workdir": "."},
        "database": {"path": "~/.pedrocli/jobs.db"},
    }
    assert migration.server_command == [
        "/opt/llama.cpp/build/bin/llama-server",
        "-m",
        "/models/qwen2.5-coder-7b-q4_k_m.gguf",
        "--port",
        "8081",
        "--ctx-size",
        "32768",
        "-t",
        "8",
        "-ngl",
        "-1",
        "--jinja",
    ]
    assert migration.notes == [
        "llamacpp_path: replaced by server_url http://localhost:8081; start "
        "/opt/llama.cpp/build/bin/llama-server (the command below) instead of running "
        "/opt/llama.cpp/build/bin/llama-cli",
        "model_path: moved to the server command line (-m /models/qwen2.5-coder-7b-q4_k_m.gguf)",
        "threads: moved to the server command line (-t 8)",
        "n_gpu_layers: moved to the server command line (-ngl -1)",
        "enable_grammar: grammars are now per request (InferenceRequest.grammar)",
        "enable_tools: llama-server needs --jinja for tool calls (added)",
    ]
    assert migration.changed
    assert migration.legacy_fields == [
        "llamacpp_path",
        "model_path",
        "threads",
        "n_gpu_layers",
        "enable_grammar",
    ]


def test_migration_keeps_key_order_and_does_not_touch_the_old_mapping() -> None:
    before = json.loads(json.dumps(OLD))
    migration = migrate_config(OLD)
    assert OLD == before
    assert list(migration.config) == ["model", "project", "database"]
    assert list(migration.config["model"])[:2] == ["type", "server_url"]


def test_command_line_is_shell_quoted() -> None:
    old = {"model": {"llamacpp_path": "/My Apps/llama-cli", "model_path": "/m/a b.gguf"}}
    assert migrate_config(old).command_line == (
        "'/My Apps/llama-server' -m '/m/a b.gguf' --port 8081 --jinja"
    )


def test_migrated_config_loads_without_warnings_and_matches_the_server() -> None:
    migration = migrate_config(OLD)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = Config.from_dict(migration.config)
    port = migration.server_command[migration.server_command.index("--port") + 1]
    assert config.model.resolved_server_url() == f"http://localhost:{port}"


def test_repr_of_a_migration_hides_the_api_key() -> None:
    assert "sk-old-secret" not in repr(migrate_config(OLD))


def test_existing_server_url_sets_port_and_host() -> None:
    old = {"model": {"server_url": "http://10.0.0.5:9090", "threads": 4}}
    migration = migrate_config(old)
    assert migration.config["model"]["server_url"] == "http://10.0.0.5:9090"
    assert migration.server_command == [
        "llama-server",
        "-m",
        "MODEL.gguf",
        "--port",
        "9090",
        "--host",
        "10.0.0.5",
        "-t",
        "4",
        "--jinja",
    ]


def test_missing_type_becomes_llamacpp_and_model_path_gets_a_placeholder() -> None:
    migration = migrate_config({"model": {"threads": 4}})
    assert migration.config == {
        "model": {"type": "llamacpp", "server_url": "http://localhost:8081"}
    }
    assert migration.server_command == [
        "llama-server",
        "-m",
        "MODEL.gguf",
        "--port",
        "8081",
        "-t",
        "4",
        "--jinja",
    ]
    assert migration.notes == [
        "threads: moved to the server command line (-t 4)",
        "model_path: not set; replace MODEL.gguf in the server command with your model file",
        "enable_tools: not set, so tools are on; llama-server needs --jinja for tool calls "
        "(added)",
    ]


@pytest.mark.parametrize(
    ("llamacpp_path", "binary"),
    [
        ("/opt/llama.cpp/build/bin/llama-cli", "/opt/llama.cpp/build/bin/llama-server"),
        ("/opt/llama.cpp/main", "/opt/llama.cpp/llama-server"),
        ("llama-cli", "llama-server"),
        ("C:/llama/llama-cli.exe", "C:/llama/llama-server.exe"),
    ],
)
def test_server_binary_sits_beside_the_old_binary(llamacpp_path: str, binary: str) -> None:
    migration = migrate_config({"model": {"llamacpp_path": llamacpp_path}})
    assert migration.server_command[0] == binary


def test_llamacpp_path_naming_a_directory_finds_the_server_in_it(tmp_path: Path) -> None:
    migration = migrate_config({"model": {"llamacpp_path": str(tmp_path)}})
    assert migration.server_command[0] == str(tmp_path / "llama-server")


def test_without_tools_there_is_no_jinja_flag() -> None:
    migration = migrate_config({"model": {"model_path": "/m.gguf", "enable_tools": False}})
    assert "--jinja" not in migration.server_command


def test_tools_on_by_default_still_get_the_jinja_flag() -> None:
    # No enable_tools in the old file: the migrated config enables tools (the default),
    # so the server must render the chat template to take them.
    migration = migrate_config({"model": {"model_path": "/m.gguf"}})
    assert Config.from_dict(migration.config).model.enable_tools is True
    assert migration.server_command[-1] == "--jinja"


def test_a_tilde_in_paths_is_expanded_so_the_pasted_command_finds_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    old = {"model": {"llamacpp_path": "~/llama.cpp/bin/llama-cli", "model_path": "~/m/q.gguf"}}
    migration = migrate_config(old)
    assert migration.server_command[:3] == [
        f"{tmp_path}/llama.cpp/bin/llama-server", "-m", f"{tmp_path}/m/q.gguf"
    ]
    assert "~" not in migration.command_line
    assert f"(-m {tmp_path}/m/q.gguf)" in migration.notes[1]


def test_legacy_fields_on_another_backend_are_dropped_without_a_command() -> None:
    migration = migrate_config({"model": {"type": "ollama", "threads": 4, "enable_grammar": False}})
    assert migration.config == {"model": {"type": "ollama", "server_url": "http://localhost:11434"}}
    assert migration.server_command == []
    assert migration.notes == [
        "threads: removed; backend 'ollama' sets this on its own server",
        "enable_grammar: grammars are now per request (InferenceRequest.grammar)",
    ]


def test_a_new_config_has_nothing_to_migrate() -> None:
    new = {"model": {"type": "ollama"}, "project": {"x": 1}}
    migration = migrate_config(new)
    assert not migration.changed
    assert migration.config == new
    assert migration.server_command == []
    assert migration.notes == [
        "nothing to migrate: no llama-cli fields "
        "(llamacpp_path, model_path, threads, n_gpu_layers, enable_grammar)"
    ]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"threads": 0}, "model.threads: must be a positive integer, got 0"),
        ({"threads": "8"}, 'model.threads: must be a positive integer, got "8"'),
        (
            {"n_gpu_layers": -2},
            "model.n_gpu_layers: must be a whole number >= -1 (-1: all), got -2",
        ),
        ({"model_path": ""}, 'model.model_path: must be a path, got ""'),
        ({"llamacpp_path": 3}, "model.llamacpp_path: must be a path, got 3"),
        ({"enable_grammar": "on"}, 'model.enable_grammar: must be true or false, got "on"'),
        (
            {"threads": 4, "context_size": -1},
            "model.context_size: must be a positive integer, got -1",
        ),
        (
            {"threads": 4, "type": "llama.cpp"},
            "model.type: unknown backend type \"llama.cpp\" (did you mean 'llamacpp'?); "
            "supported: llamacpp, ollama, vllm, lmstudio, openai, pool",
        ),
    ],
)
def test_bad_values_stop_the_migration_naming_file_and_field(
    model: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        migrate_config({"model": model}, "old.json")
    assert str(info.value) == f"old.json: {message}"


def test_model_section_must_be_an_object() -> None:
    with pytest.raises(ConfigError) as info:
        migrate_config({"model": "llamacpp"}, "old.json")
    assert str(info.value) == 'old.json: model: must be a JSON object, got "llamacpp"'


# ---------------------------------------------------------------------------
# Writing files


def write_old(path: Path, data: dict[str, Any] = OLD) -> bytes:
    """Write ``data`` as an indented JSON file and return its bytes."""
    text = json.dumps(data, indent=4).encode()
    path.write_bytes(text)
    return text


def test_in_place_migration_keeps_a_byte_exact_backup(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    original = write_old(old)
    migration = write_migrated(old)
    backup = tmp_path / "old.json.bak"
    assert migration.written_to == old and migration.backup_path == backup
    assert backup.read_bytes() == original
    assert json.loads(old.read_text()) == migration.config
    assert old.read_text().endswith("\n")


def test_in_place_migration_refuses_to_replace_an_existing_backup(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    original = write_old(old)
    (tmp_path / "old.json.bak").write_text("precious", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        write_migrated(old)
    assert str(info.value) == (
        f"{tmp_path / 'old.json.bak'}: a backup already exists; "
        "move it away or give a new file name"
    )
    assert old.read_bytes() == original
    assert (tmp_path / "old.json.bak").read_text() == "precious"


def test_migration_to_a_new_path_leaves_the_old_file_alone(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    original = write_old(old)
    new = tmp_path / "new.json"
    migration = write_migrated(old, new)
    assert migration.written_to == new and migration.backup_path is None
    assert old.read_bytes() == original
    assert not (tmp_path / "old.json.bak").exists()
    assert json.loads(new.read_text()) == migration.config


def test_migration_never_overwrites_an_existing_new_path(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    write_old(old)
    new = tmp_path / "new.json"
    new.write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        write_migrated(old, new)
    assert str(info.value) == f"{new}: already exists; not overwriting it"
    assert new.read_text() == "{}"


def test_new_path_equal_to_old_path_means_in_place_with_backup(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    write_old(old)
    migration = write_migrated(old, tmp_path / "." / "old.json")
    assert migration.backup_path == tmp_path / "old.json.bak"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_written_files_keep_the_old_files_private_permissions(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    write_old(old)
    old.chmod(0o600)
    new = tmp_path / "new.json"
    write_migrated(old, new)
    write_migrated(old)
    for path in (new, old, tmp_path / "old.json.bak"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_in_place_migration_keeps_a_shared_files_permissions(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    write_old(old)
    old.chmod(0o644)
    write_migrated(old)
    assert stat.S_IMODE(old.stat().st_mode) == 0o644


def test_nothing_to_migrate_writes_nothing(tmp_path: Path) -> None:
    old = tmp_path / "new-style.json"
    original = write_old(old, {"model": {"type": "vllm"}})
    migration = write_migrated(old)
    assert migration.written_to is None
    assert old.read_bytes() == original
    assert list(tmp_path.iterdir()) == [old]


def test_invalid_old_file_is_reported_with_position(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    old.write_text('{"model": {"threads": 8,}}', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        write_migrated(old)
    assert str(info.value) == (
        f"{old}: line 1, column 24: not valid JSON: trailing comma before '}}'"
    )
    assert list(tmp_path.iterdir()) == [old]


def test_migrated_file_loads_cleanly(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    write_old(old)
    write_migrated(old)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = load_config(old, env={})
    assert config.model.api_key == "sk-old-secret"
    assert config.other == {
        "project": {"name": "p", "workdir": "."},
        "database": {"path": "~/.pedrocli/jobs.db"},
    }


def test_cli_prints_a_server_command_that_works_pasted_into_a_shell(tmp_path: Path) -> None:
    model = tmp_path / "models" / "my model.gguf"
    model.parent.mkdir()
    model.write_bytes(b"GGUF")
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"model": {"model_path": "~/models/my model.gguf", "threads": 4}}))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PEDROLLM_")}
    sources = str(Path(pedrollm.__file__).resolve().parents[1])
    environ["PYTHONPATH"] = os.pathsep.join([sources, environ.get("PYTHONPATH", "")])
    environ["HOME"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "pedrollm", "config", "migrate", str(old), "--out", "new.json"],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60, check=True,
    )
    pasted = result.stdout.split("start the server with:\n")[1].strip()
    # What a POSIX shell would pass to llama-server for the pasted line.
    argv = shlex.split(pasted)
    assert argv[:3] == ["llama-server", "-m", str(model)]
    assert Path(argv[2]).is_file()
    assert argv[-1] == "--jinja"


def test_the_migration_guide_has_a_row_for_every_deprecated_field() -> None:
    from pedrollm.config_schema import LEGACY

    guide = Path(__file__).resolve().parents[1] / "docs" / "MIGRATION-LLAMA-SERVER.md"
    rows = [line for line in guide.read_text(encoding="utf-8").splitlines()
            if line.startswith("| `")]
    for name, legacy in LEGACY.items():
        row = next(r for r in rows if r.startswith(f"| `{name}` |"))
        if legacy.server_flag is not None:
            assert f"`{legacy.server_flag} " in row, row


def test_migration_api_is_served_from_both_modules() -> None:
    import pedrollm.config_migrate as config_migrate

    assert isinstance(migrate_config(OLD), Migration)
    assert migrate_config is config_migrate.migrate_config
    assert write_migrated is config_migrate.write_migrated


@pytest.mark.parametrize("module", ["pedrollm.config_migrate", "pedrollm.config"])
def test_either_module_can_be_imported_first(module: str) -> None:
    code = f"import {module}; from {module} import migrate_config, write_migrated, Migration"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
