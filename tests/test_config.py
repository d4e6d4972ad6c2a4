"""The config file: validation messages, defaults, discovery, environment, legacy fields."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pedrollm
from pedrollm.config import (
    BACKEND_TYPES,
    DEFAULT_SERVER_URLS,
    ENV_VARS,
    Config,
    ModelConfig,
    load_config,
)
from pedrollm.errors import ConfigError

SRC = ".pedrocli.json"


def error_of(data: dict[str, Any], source: str = SRC) -> str:
    """Return the ConfigError message ModelConfig.from_dict raises for ``data``."""
    with pytest.raises(ConfigError) as info:
        ModelConfig.from_dict(data, source)
    return str(info.value)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty working directory with an empty home, so no real config is found."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    return tmp_path


def write(path: Path, data: Any) -> Path:
    """Write ``data`` as a JSON file and return its path."""
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------
# Defaults


def test_defaults_are_a_local_llama_server() -> None:
    model = ModelConfig()
    assert model.type == "llamacpp"
    assert model.resolved_server_url() == "http://localhost:8081"
    assert (model.connect_timeout, model.read_timeout) == (5.0, 600.0)
    assert (model.max_retries, model.retry_budget) == (3, 30.0)
    assert model.context_size is None and model.usable_context is None
    assert model.enable_tools is True and model.tool_call_format is None
    assert model.native_tools is None


@pytest.mark.parametrize(
    ("backend", "url"),
    [
        ("llamacpp", "http://localhost:8081"),
        ("ollama", "http://localhost:11434"),
        ("vllm", "http://localhost:8000"),
        ("lmstudio", "http://localhost:1234"),
    ],
)
def test_each_backend_has_its_default_url(backend: str, url: str) -> None:
    assert ModelConfig.from_dict({"type": backend}).resolved_server_url() == url


def test_backend_types_and_default_urls_agree() -> None:
    assert BACKEND_TYPES == ("llamacpp", "ollama", "vllm", "lmstudio", "openai", "pool")
    assert set(DEFAULT_SERVER_URLS) == set(BACKEND_TYPES) - {"openai", "pool"}


def test_backend_facts_come_from_the_backend_classes() -> None:
    from pedrollm.backends import BACKENDS

    assert BACKEND_TYPES == tuple(BACKENDS)
    for name, backend in BACKENDS.items():
        assert DEFAULT_SERVER_URLS.get(name) == backend.default_url


def test_the_default_read_timeout_lets_a_cpu_server_finish_a_long_reply(isolated: Path) -> None:
    # Unstreamed, llama-server sends nothing until the reply is done: 2,000 tokens at
    # 4 tokens/s on a CPU is 500 s, past both the old 120 s and llama-cli's 300 s.
    seconds_needed = 2000 / 4
    default = load_config(env={}).model.read_timeout
    assert default >= seconds_needed
    assert default == 600.0


def test_explicit_server_url_wins_and_loses_its_trailing_slash() -> None:
    model = ModelConfig.from_dict({"type": "ollama", "server_url": "http://gpu-box:11434/"})
    assert model.resolved_server_url() == "http://gpu-box:11434"


def test_openai_with_server_url_loads() -> None:
    model = ModelConfig.from_dict(
        {"type": "openai", "server_url": "https://api.example.com/v1", "api_key": "k"}
    )
    assert model.resolved_server_url() == "https://api.example.com/v1"


def test_integer_seconds_and_temperature_become_floats() -> None:
    model = ModelConfig.from_dict({"read_timeout": 60, "temperature": 1, "retry_budget": 0})
    assert model.read_timeout == 60.0 and isinstance(model.read_timeout, float)
    assert isinstance(model.temperature, float)
    assert model.retry_budget == 0.0


def test_empty_api_key_means_no_key() -> None:
    assert ModelConfig.from_dict({"api_key": ""}).api_key is None


@pytest.mark.parametrize(
    ("usable", "window", "expected"),
    [(None, 8192, 6144), (None, 1000, 750), (4000, 8192, 4000), (10000, 8192, 8192)],
)
def test_usable_context_defaults_to_three_quarters_and_is_capped(
    usable: int | None, window: int, expected: int
) -> None:
    assert ModelConfig(usable_context=usable).usable_context_for(window) == expected


# ---------------------------------------------------------------------------
# Every validation error names the file, the field and the bad value


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"context_size": -5}, "model.context_size: must be a positive integer, got -5"),
        ({"context_size": 0}, "model.context_size: must be a positive integer, got 0"),
        ({"context_size": "4096"}, 'model.context_size: must be a positive integer, got "4096"'),
        ({"context_size": 4096.0}, "model.context_size: must be a positive integer, got 4096.0"),
        ({"context_size": True}, "model.context_size: must be a positive integer, got true"),
        ({"usable_context": -1}, "model.usable_context: must be a positive integer, got -1"),
        ({"max_tokens": 0}, "model.max_tokens: must be a positive integer, got 0"),
        ({"temperature": -0.5}, "model.temperature: must be a finite number >= 0, got -0.5"),
        ({"temperature": "hot"}, 'model.temperature: must be a finite number >= 0, got "hot"'),
        ({"temperature": math.nan}, "model.temperature: must be a finite number >= 0, got nan"),
        ({"enable_tools": "yes"}, 'model.enable_tools: must be true or false, got "yes"'),
        ({"enable_tools": 1}, "model.enable_tools: must be true or false, got 1"),
        (
            {"tool_call_format": ""},
            'model.tool_call_format: must be a tool-call format name such as "hermes", got ""',
        ),
        (
            {"tool_call_format": 3},
            'model.tool_call_format: must be a tool-call format name such as "hermes", got 3',
        ),
        ({"model_name": ""}, 'model.model_name: must be a non-empty string, got ""'),
        ({"model_name": ["a"]}, 'model.model_name: must be a non-empty string, got ["a"]'),
        (
            {"connect_timeout": 0},
            "model.connect_timeout: must be a finite number of seconds > 0, got 0",
        ),
        (
            {"read_timeout": -1},
            "model.read_timeout: must be a finite number of seconds > 0, got -1",
        ),
        (
            {"read_timeout": math.inf},
            "model.read_timeout: must be a finite number of seconds > 0, got inf",
        ),
        (
            {"read_timeout": None},
            "model.read_timeout: must be a finite number of seconds > 0, got null",
        ),
        ({"max_retries": -1}, "model.max_retries: must be a whole number >= 0, got -1"),
        ({"max_retries": 2.5}, "model.max_retries: must be a whole number >= 0, got 2.5"),
        (
            {"retry_budget": -3},
            "model.retry_budget: must be a finite number of seconds >= 0, got -3",
        ),
        ({"type": 7}, "model.type: must be a string naming the backend, got 7"),
        (
            {"server_url": "localhost:8081"},
            'model.server_url: must start with http:// or https://, got "localhost:8081"',
        ),
        (
            {"server_url": "ftp://localhost:8081"},
            'model.server_url: must start with http:// or https://, got "ftp://localhost:8081"',
        ),
        (
            {"server_url": "http://localhost:0"},
            'model.server_url: port must be a number from 1 to 65535, got "http://localhost:0"',
        ),
        (
            {"server_url": "http://localhost:65536"},
            'model.server_url: port must be a number from 1 to 65535, got "http://localhost:65536"',
        ),
        (
            {"server_url": "http://localhost:port"},
            'model.server_url: port must be a number from 1 to 65535, got "http://localhost:port"',
        ),
        (
            {"server_url": "http://:8081"},
            'model.server_url: must name a host, as in http://localhost:8081, got "http://:8081"',
        ),
        (
            {"server_url": "http://local host:8081"},
            'model.server_url: must not contain spaces, got "http://local host:8081"',
        ),
        (
            {"server_url": "http://localhost:8081/?x=1"},
            'model.server_url: must not have a query or fragment, got "http://localhost:8081/?x=1"',
        ),
        ({"server_url": ""}, 'model.server_url: must be an http:// or https:// URL, got ""'),
        ({"server_url": 8081}, "model.server_url: must be an http:// or https:// URL, got 8081"),
        (
            {"type": "openai"},
            "model.server_url: required for backend type 'openai' (it has no default address)",
        ),
        (
            {"context_size": 4096, "usable_context": 5000},
            "model.usable_context: must not exceed model.context_size (4096), got 5000",
        ),
    ],
)
def test_validation_error_names_file_field_and_value(data: dict[str, Any], message: str) -> None:
    assert error_of(data) == f"{SRC}: {message}"


@pytest.mark.parametrize(
    ("bad", "suggestion"),
    [
        ("llama.cpp", "llamacpp"),
        ("LlamaCpp", "llamacpp"),
        ("llama-server", "llamacpp"),
        ("olama", "ollama"),
        ("lm-studio", "lmstudio"),
        ("vllmm", "vllm"),
    ],
)
def test_unknown_backend_type_suggests_and_lists_supported(bad: str, suggestion: str) -> None:
    assert error_of({"type": bad}) == (
        f"{SRC}: model.type: unknown backend type {json.dumps(bad)} "
        f"(did you mean {suggestion!r}?); supported: llamacpp, ollama, vllm, lmstudio, openai, pool"
    )


def test_unknown_backend_type_without_a_close_name_just_lists_supported() -> None:
    assert error_of({"type": "tgi"}) == (
        f'{SRC}: model.type: unknown backend type "tgi"; '
        "supported: llamacpp, ollama, vllm, lmstudio, openai, pool"
    )


def test_unknown_field_is_named_with_did_you_mean() -> None:
    assert error_of({"contex_size": 4096}) == (
        f"{SRC}: model: unknown field 'contex_size' (did you mean 'context_size'?)"
    )


def test_unknown_field_without_a_close_name() -> None:
    assert error_of({"colour": "blue"}) == f"{SRC}: model: unknown field 'colour'"


def test_every_problem_is_reported_at_once() -> None:
    message = error_of({"context_size": -5, "max_retries": -1, "temprature": 0.1})
    assert message.splitlines() == [
        f"{SRC}: model: unknown field 'temprature' (did you mean 'temperature'?)",
        f"{SRC}: model.context_size: must be a positive integer, got -5",
        f"{SRC}: model.max_retries: must be a whole number >= 0, got -1",
    ]


def test_model_section_must_be_an_object() -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_dict({"model": ["llamacpp"]}, SRC)
    assert str(info.value) == f'{SRC}: model: must be a JSON object, got ["llamacpp"]'


def test_file_must_hold_an_object() -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_dict([1, 2], SRC)  # type: ignore[arg-type]
    assert str(info.value) == (
        f'{SRC}: the file must hold a JSON object (with a "model" section), got list'
    )


def test_long_bad_values_are_shortened() -> None:
    message = error_of({"tool_call_format": "!" + "x" * 200})
    assert message.startswith(f"{SRC}: model.tool_call_format: must be a tool-call format")
    assert 'got "!xxxxxxxx' in message and message.endswith("...")
    assert len(message) < 200


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ConfigError) as info:
        ModelConfig(type="llama.cpp")
    assert str(info.value).startswith("ModelConfig: model.type: unknown backend type")


# ---------------------------------------------------------------------------
# Secrets


def test_api_key_is_redacted_in_repr_and_str() -> None:
    model = ModelConfig.from_dict({"type": "vllm", "api_key": "sk-very-secret"})
    config = Config(model=model, other={"database": {"password": "hunter2"}})
    for text in (repr(model), str(model), repr(config), str(config)):
        assert "sk-very-secret" not in text
        assert "hunter2" not in text
    assert "api_key='***'" in repr(model)
    assert "other=<sections: database>" in repr(config)


def test_api_key_never_appears_in_an_error_message() -> None:
    message = error_of({"api_key": ["sk-very-secret"]})
    assert message == f"{SRC}: model.api_key: must be a string, got list"


def test_url_password_is_redacted_in_repr_and_errors() -> None:
    model = ModelConfig(server_url="http://user:s3cret@box:8081")
    assert "s3cret" not in repr(model)
    assert "http://user:***@box:8081" in repr(model)
    message = error_of({"server_url": "http://user:s3cret@box:0"})
    assert "s3cret" not in message and "user:***@box:0" in message


def test_to_dict_redacts_by_default_and_keeps_the_key_for_writing() -> None:
    model = ModelConfig.from_dict({"type": "vllm", "api_key": "sk-x", "context_size": 4096})
    config = Config(model=model, other={"database": {"path": "db", "token": "t0k"}})
    shown = config.to_dict()
    assert shown["model"]["api_key"] == "***"
    assert shown["database"] == {"path": "db", "token": "***"}
    written = config.to_dict(redact=False)
    assert written["model"]["api_key"] == "sk-x"
    assert written["database"] == {"path": "db", "token": "t0k"}
    assert "server_url" not in written["model"]  # unset fields are left out
    assert ModelConfig.from_dict(written["model"]) == model


def test_to_dict_does_not_share_the_other_sections() -> None:
    config = Config(other={"project": {"tags": ["a"]}})
    config.to_dict(redact=False)["project"]["tags"].append("b")
    assert config.other == {"project": {"tags": ["a"]}}


# ---------------------------------------------------------------------------
# Loading files


def test_no_file_gives_the_defaults(isolated: Path) -> None:
    config = load_config(env={})
    assert config.path is None and config.other == {}
    assert config.model == ModelConfig()


def test_cwd_file_wins_over_home_file(isolated: Path) -> None:
    write(isolated / "home" / SRC, {"model": {"type": "ollama"}})
    write(isolated / "work" / SRC, {"model": {"type": "vllm"}})
    config = load_config(env={})
    assert config.model.type == "vllm"
    assert config.path == (isolated / "work" / SRC).resolve()


def test_home_file_is_used_when_cwd_has_none(isolated: Path) -> None:
    write(isolated / "home" / SRC, {"model": {"type": "ollama"}})
    config = load_config(env={})
    assert config.model.type == "ollama"
    assert config.path == (isolated / "home" / SRC).resolve()


def test_home_file_errors_are_labelled_with_tilde(isolated: Path) -> None:
    write(isolated / "home" / SRC, {"model": {"context_size": -5}})
    with pytest.raises(ConfigError) as info:
        load_config(env={})
    assert str(info.value) == (
        "~/.pedrocli.json: model.context_size: must be a positive integer, got -5"
    )


def test_explicit_path_wins_over_discovery(isolated: Path) -> None:
    write(isolated / "work" / SRC, {"model": {"type": "vllm"}})
    other = write(isolated / "mine.json", {"model": {"type": "lmstudio"}})
    assert load_config(other, env={}).model.type == "lmstudio"


def test_pedrollm_config_env_names_the_file(isolated: Path) -> None:
    chosen = write(isolated / "chosen.json", {"model": {"context_size": 0}})
    with pytest.raises(ConfigError) as info:
        load_config(env={"PEDROLLM_CONFIG": str(chosen)})
    assert str(info.value) == (
        f"{chosen} (from PEDROLLM_CONFIG): model.context_size: must be a positive integer, got 0"
    )


def test_other_sections_are_kept_untouched(isolated: Path) -> None:
    sections = {
        "project": {"name": "x", "nested": {"list": [1, 2, {"k": None}]}},
        "database": {"path": "~/.pedrocli/jobs.db"},
    }
    path = write(isolated / "c.json", {"model": {"type": "ollama"}, **sections})
    config = load_config(path, env={})
    assert config.other == sections
    assert config.to_dict(redact=False) == {"model": {**config.model.to_dict(False)}, **sections}


def test_a_file_without_model_section_uses_the_defaults(isolated: Path) -> None:
    path = write(isolated / "c.json", {"project": {"name": "x"}})
    config = load_config(path, env={})
    assert config.model == ModelConfig()
    assert config.other == {"project": {"name": "x"}}


@pytest.mark.parametrize(
    ("text", "where", "bracket"),
    [
        ('{\n  "model": {\n    "type": "ollama",\n  }\n}\n', "line 3, column 21", "}"),
        ('{"model": {"threads": 8,}}', "line 1, column 24", "}"),
        ('{"model": {"type": "vllm"},\n}', "line 1, column 27", "}"),
        ('{"project": {"tags": ["a", "b",  ]}}', "line 1, column 31", "]"),
    ],
)
def test_trailing_comma_is_named_at_the_comma_on_every_python(
    isolated: Path, text: str, where: str, bracket: str
) -> None:
    # Python 3.13's json points at the comma, older ones at the bracket after it with
    # "Expecting property name": the message is the same on every version.
    path = isolated / "broken.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value) == f"{path}: {where}: not valid JSON: trailing comma before {bracket!r}"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{\n  "model": {\n    "type" "ollama"\n  }\n}\n', "line 3, column 12"),
        ('{"model": {"type": ollama}}', "line 1, column 20"),
        ('{"model": {"context_size": ,}}', "line 1, column 28"),
        ('{"model": {}}\n{}', "line 2, column 1"),
    ],
)
def test_invalid_json_names_file_line_column_and_what_is_wrong(
    isolated: Path, text: str, where: str
) -> None:
    path = isolated / "broken.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    # What json says is wrong is its own wording, which Python versions may change.
    assert re.fullmatch(rf"{re.escape(f'{path}: {where}: not valid JSON: ')}\S.*", str(info.value))


def test_empty_file_is_invalid_json(isolated: Path) -> None:
    path = isolated / "empty.json"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"empty\.json: line 1, column 1: not valid JSON"):
        load_config(path, env={})


def test_duplicate_keys_are_refused(isolated: Path) -> None:
    path = isolated / "dup.json"
    path.write_text('{"model": {"context_size": 1, "context_size": 2}}', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value) == f"{path}: duplicate key 'context_size'"


def test_missing_explicit_file_is_an_error(isolated: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(isolated / "nope.json", env={})
    assert str(info.value) == f"{isolated / 'nope.json'}: no such file"


def test_a_directory_is_not_a_config_file(isolated: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory, not a config file"):
        load_config(isolated / "work", env={})


def test_non_utf8_file_is_an_error(isolated: Path) -> None:
    path = isolated / "latin1.json"
    path.write_bytes(b'{"model": {"model_name": "caf\xe9"}}')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value) == f"{path}: not UTF-8 text (byte 29)"


def test_a_byte_order_mark_is_accepted(isolated: Path) -> None:
    path = isolated / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"model": {"type": "ollama"}}).encode())
    assert load_config(path, env={}).model.type == "ollama"


# ---------------------------------------------------------------------------
# Environment and command-line overrides


@pytest.mark.parametrize(
    ("var", "text", "field", "value"),
    [
        ("PEDROLLM_BACKEND", "ollama", "type", "ollama"),
        ("PEDROLLM_SERVER_URL", "http://box:9000", "server_url", "http://box:9000"),
        ("PEDROLLM_MODEL", "qwen2.5:7b", "model_name", "qwen2.5:7b"),
        ("PEDROLLM_API_KEY", "sk-env", "api_key", "sk-env"),
        ("PEDROLLM_CONTEXT_SIZE", "16384", "context_size", 16384),
        ("PEDROLLM_USABLE_CONTEXT", "12000", "usable_context", 12000),
        ("PEDROLLM_TEMPERATURE", "0.7", "temperature", 0.7),
        ("PEDROLLM_MAX_TOKENS", "512", "max_tokens", 512),
        ("PEDROLLM_ENABLE_TOOLS", "yes", "enable_tools", True),
        ("PEDROLLM_ENABLE_TOOLS", "0", "enable_tools", False),
        ("PEDROLLM_TOOL_CALL_FORMAT", "mistral", "tool_call_format", "mistral"),
        ("PEDROLLM_CONNECT_TIMEOUT", "2.5", "connect_timeout", 2.5),
        ("PEDROLLM_READ_TIMEOUT", "600", "read_timeout", 600.0),
        ("PEDROLLM_MAX_RETRIES", "0", "max_retries", 0),
        ("PEDROLLM_RETRY_BUDGET", "10", "retry_budget", 10.0),
    ],
)
def test_env_var_overrides_the_file(
    isolated: Path, var: str, text: str, field: str, value: Any
) -> None:
    write(isolated / "work" / SRC, {"model": {"type": "vllm", "enable_tools": True}})
    config = load_config(env={var: text})
    assert getattr(config.model, field) == value
    assert ENV_VARS[var] == field


def test_the_docs_tables_are_the_ones_generated_from_the_schema() -> None:
    from pedrollm.config_schema import fields_markdown

    page = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    begin = "<!-- generated by pedrollm.config_schema.fields_markdown(); "
    start = page.index("-->\n", page.index(begin)) + len("-->\n")
    end = page.index("<!-- end of generated tables -->")
    # On a difference, paste fields_markdown()'s output between the two markers.
    assert page[start:end] == fields_markdown()
    for var in ENV_VARS:
        assert f"`{var}`" in page[start:end]


def test_every_env_var_is_documented_in_the_module_docstring() -> None:
    import pedrollm.config as module

    assert module.__doc__ is not None
    for var in [*ENV_VARS, "PEDROLLM_CONFIG"]:
        assert f"``{var}``" in module.__doc__


def test_env_leaves_unnamed_fields_from_the_file(isolated: Path) -> None:
    write(isolated / "work" / SRC, {"model": {"type": "vllm", "context_size": 8192}})
    config = load_config(env={"PEDROLLM_MODEL": "m"})
    assert (config.model.type, config.model.context_size, config.model.model_name) == (
        "vllm",
        8192,
        "m",
    )


def test_empty_env_var_counts_as_unset(isolated: Path) -> None:
    write(isolated / "work" / SRC, {"model": {"server_url": "http://box:1"}})
    assert load_config(env={"PEDROLLM_SERVER_URL": ""}).model.server_url == "http://box:1"


def test_env_backend_switch_picks_that_backends_default_url(isolated: Path) -> None:
    config = load_config(env={"PEDROLLM_BACKEND": "lmstudio"})
    assert config.model.resolved_server_url() == "http://localhost:1234"


@pytest.mark.parametrize(
    ("var", "text", "message"),
    [
        ("PEDROLLM_CONTEXT_SIZE", "lots", 'model.context_size: must be a whole number, got "lots"'),
        ("PEDROLLM_CONTEXT_SIZE", "-5", "model.context_size: must be a positive integer, got -5"),
        (
            "PEDROLLM_READ_TIMEOUT",
            "-1",
            "model.read_timeout: must be a finite number of seconds > 0, got -1",
        ),
        (
            "PEDROLLM_READ_TIMEOUT",
            "inf",
            "model.read_timeout: must be a finite number of seconds > 0, got inf",
        ),
        ("PEDROLLM_READ_TIMEOUT", "soon", 'model.read_timeout: must be a number, got "soon"'),
        (
            "PEDROLLM_ENABLE_TOOLS",
            "maybe",
            'model.enable_tools: must be true or false (or 1/0, yes/no, on/off), got "maybe"',
        ),
        (
            "PEDROLLM_SERVER_URL",
            "box:8081",
            'model.server_url: must start with http:// or https://, got "box:8081"',
        ),
        (
            "PEDROLLM_BACKEND",
            "openai",
            "model.server_url: required for backend type 'openai' (it has no default address)",
        ),
    ],
)
def test_bad_env_value_names_the_variable(
    isolated: Path, var: str, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={var: text})
    assert str(info.value) == f"environment variable {var}: {message}"


def test_cross_field_error_names_the_layer_that_set_the_value(isolated: Path) -> None:
    write(isolated / "work" / SRC, {"model": {"context_size": 4096}})
    with pytest.raises(ConfigError) as info:
        load_config(env={"PEDROLLM_USABLE_CONTEXT": "5000"})
    assert str(info.value) == (
        "environment variable PEDROLLM_USABLE_CONTEXT: model.usable_context: "
        "must not exceed model.context_size (4096), got 5000"
    )


def test_env_api_key_never_shows_in_errors(isolated: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={"PEDROLLM_API_KEY": "sk-env-secret", "PEDROLLM_MAX_RETRIES": "x"})
    assert "sk-env-secret" not in str(info.value)


def test_overrides_win_over_env_and_file(isolated: Path) -> None:
    write(isolated / "work" / SRC, {"model": {"server_url": "http://file:1"}})
    config = load_config(
        env={"PEDROLLM_SERVER_URL": "http://env:2"},
        overrides={"server_url": "http://flag:3"},
    )
    assert config.model.server_url == "http://flag:3"


def test_none_overrides_are_flags_not_given(isolated: Path) -> None:
    config = load_config(
        env={"PEDROLLM_MODEL": "from-env"}, overrides={"model_name": None, "context_size": None}
    )
    assert config.model.model_name == "from-env"
    assert config.model.context_size is None


def test_string_overrides_are_parsed_like_env(isolated: Path) -> None:
    config = load_config(env={}, overrides={"context_size": "2048", "enable_tools": "true"})
    assert (config.model.context_size, config.model.enable_tools) == (2048, True)


def test_bad_override_names_the_command_line(isolated: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={}, overrides={"read_timeout": 0, "servr_url": "http://x:1"})
    assert str(info.value).splitlines() == [
        "command-line override: unknown field 'servr_url' (did you mean 'server_url'?)",
    ]
    with pytest.raises(ConfigError) as info:
        load_config(env={}, overrides={"read_timeout": 0})
    assert str(info.value) == (
        "command-line override: model.read_timeout: must be a finite number of seconds > 0, got 0"
    )


def test_reads_os_environ_when_env_is_not_given(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEDROLLM_BACKEND", "vllm")
    assert load_config().model.type == "vllm"


# ---------------------------------------------------------------------------
# Legacy llama-cli fields


LEGACY_MESSAGES = {
    "llamacpp_path": "start llama-server yourself and set model.server_url",
    "model_path": "pass it to llama-server as -m PATH",
    "threads": "pass it to llama-server as -t N",
    "n_gpu_layers": "pass it to llama-server as -ngl N",
    "enable_grammar": "grammars are now per request (InferenceRequest.grammar)",
}


def test_each_legacy_field_warns_with_its_replacement(isolated: Path) -> None:
    path = write(
        isolated / "old.json",
        {
            "model": {
                "type": "llamacpp",
                "llamacpp_path": "/opt/llama.cpp/build/bin/llama-cli",
                "model_path": "/models/q.gguf",
                "threads": 8,
                "n_gpu_layers": 99,
                "enable_grammar": True,
                "context_size": 8192,
            }
        },
    )
    with pytest.warns(DeprecationWarning) as record:
        config = load_config(path, env={})
    messages = [str(w.message) for w in record]
    assert len(messages) == len(LEGACY_MESSAGES)
    for (name, replacement), message in zip(LEGACY_MESSAGES.items(), messages, strict=True):
        assert message.startswith(f"{path}: model.{name} is deprecated: ")
        assert replacement in message
        assert "pedrollm config migrate" in message
    assert config.model.resolved_server_url() == "http://localhost:8081"
    assert config.model.context_size == 8192
    assert "llamacpp_path" not in config.to_dict(redact=False)["model"]


def test_legacy_warning_points_at_the_caller(isolated: Path) -> None:
    path = write(isolated / "old.json", {"model": {"threads": 4}})
    with pytest.warns(DeprecationWarning) as record:
        load_config(path, env={})
    assert record[0].filename == __file__


def run_script(tmp_path: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a user's script file with Python's default warning filters."""
    script = tmp_path / "user_script.py"
    script.write_text(code, encoding="utf-8")
    environ = {
        k: v for k, v in os.environ.items()
        if not k.startswith("PEDROLLM_") and k != "PYTHONWARNINGS"
    }
    # The pedrollm under test, even where PYTHONPATH is relative to another directory.
    sources = str(Path(pedrollm.__file__).resolve().parents[1])
    environ["PYTHONPATH"] = os.pathsep.join([sources, environ.get("PYTHONPATH", "")])
    environ.update(env, HOME=str(tmp_path))
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=60, check=True)


def test_new_backend_shows_the_deprecation_at_the_users_line(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        "from pedrollm import new_backend\n"
        "new_backend({'llamacpp_path': '/x', 'threads': 4})\n",
    )
    lines = [line for line in result.stderr.splitlines() if "DeprecationWarning" in line]
    assert [line.split(": model.")[1].split(" ")[0] for line in lines] == [
        "llamacpp_path", "threads"
    ]
    for line in lines:
        assert line.startswith(f"{tmp_path / 'user_script.py'}:2: DeprecationWarning: ")


def test_a_legacy_file_named_by_pedrollm_config_shows_its_deprecation(tmp_path: Path) -> None:
    legacy = write(tmp_path / "legacy.json", {"model": {"n_gpu_layers": 99}})
    result = run_script(
        tmp_path,
        "from pedrollm import new_backend\nnew_backend()\n",
        PEDROLLM_CONFIG=str(legacy),
    )
    assert result.stderr.startswith(
        f"{tmp_path / 'user_script.py'}:2: DeprecationWarning: "
        f"{legacy} (from PEDROLLM_CONFIG): model.n_gpu_layers is deprecated: "
        "pass it to llama-server as -ngl N"
    )


def test_legacy_fields_do_not_break_loading_even_with_odd_values() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = ModelConfig.from_dict({"threads": "all", "n_gpu_layers": None})
    assert model == ModelConfig()


def test_a_new_config_loads_without_warnings(isolated: Path) -> None:
    path = write(isolated / "new.json", {"model": {"type": "llamacpp", "context_size": 8192}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_config(path, env={})


# ---------------------------------------------------------------------------
# Properties


# What an HTTP header can carry: visible Latin-1, no spaces or control characters.
HEADER_SAFE_KEYS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF,
                                         blacklist_characters="\x7f\x85\xa0",
                                         blacklist_categories=["Cc"]), min_size=1)

valid_models = st.fixed_dictionaries(
    # openai needs a server_url, a pool its servers (round-tripped in test_pool.py).
    {"type": st.sampled_from([t for t in BACKEND_TYPES if t not in ("openai", "pool")])},
    optional={
        "model_name": st.text(min_size=1).filter(str.strip),
        "context_size": st.integers(1, 2**31),
        "temperature": st.floats(0, 2),
        "max_tokens": st.integers(1, 2**20),
        "enable_tools": st.booleans(),
        "api_key": HEADER_SAFE_KEYS,
        "read_timeout": st.floats(0.001, 1e6),
        "connect_timeout": st.floats(0.001, 1e3),
        "max_retries": st.integers(0, 100),
        "retry_budget": st.floats(0, 1e4),
        "server_url": st.builds(
            "http://{}:{}".format,
            st.sampled_from(["localhost", "127.0.0.1", "gpu-box"]),
            st.integers(1, 65535),
        ),
    },
)


@given(valid_models)
def test_valid_sections_round_trip_through_to_dict(data: dict[str, Any]) -> None:
    model = ModelConfig.from_dict(data)
    assert ModelConfig.from_dict(model.to_dict(redact=False)) == model


@given(HEADER_SAFE_KEYS)
def test_api_key_never_appears_in_repr(key: str) -> None:
    secret = f"sk-{key}-end"
    model = ModelConfig(api_key=secret)
    assert secret not in repr(model)
    assert secret not in repr(Config(model=model))
    assert secret not in json.dumps(model.to_dict())


@given(HEADER_SAFE_KEYS, st.sampled_from(["\n", "\x00", " ", "\u20ac", "\x7f"]), HEADER_SAFE_KEYS)
def test_a_key_a_header_cannot_carry_is_refused_without_showing_it(
        head: str, bad: str, tail: str) -> None:
    key = f"sk-{head}{bad}{tail}"
    with pytest.raises(ConfigError, match="model.api_key") as info:
        ModelConfig(api_key=key)
    assert key not in str(info.value) and key not in repr(info.value)


def test_a_key_with_a_trailing_newline_is_kept_without_it() -> None:
    assert ModelConfig.from_dict({"api_key": "sk-abc\n"}).api_key == "sk-abc"


@given(st.integers(max_value=0))
def test_non_positive_context_sizes_are_always_refused_naming_the_value(n: int) -> None:
    assert error_of({"context_size": n}) == (
        f"{SRC}: model.context_size: must be a positive integer, got {n}"
    )
