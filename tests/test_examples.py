"""Every shipped config example loads; the legacy one warns and migrates."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from pedrollm.config import BACKEND_TYPES, load_config, migrate_config, read_config_file

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LEGACY = EXAMPLES / ".pedrocli-llamacpp-legacy.json.example"
CURRENT = sorted(p for p in EXAMPLES.glob(".pedrocli-*.json.example") if p != LEGACY)


def test_the_examples_are_all_there() -> None:
    names = {p.name for p in EXAMPLES.glob(".pedrocli-*.json.example")}
    assert names == {
        ".pedrocli-llamacpp-server.json.example",
        ".pedrocli-ollama.json.example",
        ".pedrocli-vllm.json.example",
        ".pedrocli-lmstudio.json.example",
        ".pedrocli-pool.json.example",
        ".pedrocli-llamacpp-legacy.json.example",
    }


@pytest.mark.parametrize("path", CURRENT, ids=lambda p: p.name)
def test_current_example_loads_without_warnings(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = load_config(path, env={})
    backend = path.name.removeprefix(".pedrocli-").split("-")[0].split(".")[0]
    assert config.model.type == backend and backend in BACKEND_TYPES
    assert config.other, "each example shows that other sections are kept"
    assert set(config.other) <= {"project", "database"}
    raw = read_config_file(path)
    assert config.to_dict(redact=False) == {
        "model": config.model.to_dict(False),
        **{k: v for k, v in raw.items() if k != "model"},
    }


def test_legacy_example_loads_with_deprecation_warnings() -> None:
    with pytest.warns(DeprecationWarning) as record:
        config = load_config(LEGACY, env={})
    warned = sorted(str(w.message).split("model.")[1].split(" ")[0] for w in record)
    assert warned == sorted(
        ["llamacpp_path", "model_path", "threads", "n_gpu_layers", "enable_grammar"]
    )
    assert config.model.resolved_server_url() == "http://localhost:8081"
    assert set(config.other) == {"project", "database"}


def test_legacy_example_migrates_to_the_server_example_form() -> None:
    old = json.loads(LEGACY.read_text(encoding="utf-8"))
    migration = migrate_config(old, str(LEGACY))
    assert migration.command_line == (
        "/opt/llama.cpp/build/bin/llama-server "
        "-m /models/qwen2.5-coder-7b-instruct-q4_k_m.gguf --port 8081 --ctx-size 32768 "
        "-t 8 -ngl -1 --jinja"
    )
    assert migration.config["model"] == {
        "type": "llamacpp",
        "server_url": "http://localhost:8081",
        "context_size": 32768,
        "usable_context": 24576,
        "temperature": 0.2,
        "enable_tools": True,
    }
    assert migration.config["project"] == old["project"]
    assert migration.config["database"] == old["database"]
