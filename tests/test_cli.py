"""The pedrollm command, run as a subprocess against the fake llama-server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fakellama.server import FakeServer

SECRET = "sk-cli-secret-42"
ROOT = Path(__file__).resolve().parents[1]
# The subprocess runs in a temporary directory: an absolute path makes it import this
# checkout's pedrollm and fakellama, not whichever copy is installed.
CHECKOUT_PATH = os.pathsep.join(str(ROOT / part) for part in ("sdk", "fakeserver", "."))


def run(*args: str, cwd: Path, env: dict[str, str] | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pedrollm ARGS`` with no config file and no PEDROLLM_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PEDROLLM_")}
    clean["HOME"] = str(cwd)
    clean["PYTHONPATH"] = CHECKOUT_PATH
    clean.update(env or {})
    return subprocess.run([sys.executable, "-m", "pedrollm", *args], cwd=cwd, env=clean,
                          input=stdin, capture_output=True, text=True, timeout=120)


def test_health_ok_and_unreachable(fake_llama_server: FakeServer, tmp_path: Path) -> None:
    ok = run("--server-url", fake_llama_server.url, "health", cwd=tmp_path)
    assert ok.returncode == 0 and ok.stdout.startswith("ok:")
    down = run("--server-url", "http://127.0.0.1:9", "health", cwd=tmp_path)
    assert down.returncode == 1 and down.stdout.startswith("unreachable:")


def test_models_and_info(fake_llama_server: FakeServer, tmp_path: Path) -> None:
    models = run("--server-url", fake_llama_server.url, "models", cwd=tmp_path)
    assert models.returncode == 0 and models.stdout.strip()
    info = run("--server-url", fake_llama_server.url, "info", cwd=tmp_path)
    assert info.returncode == 0
    assert "backend:" in info.stdout and "llamacpp" in info.stdout
    assert "context window:" in info.stdout and "version:" in info.stdout


def test_chat_streams_and_json(fake_llama_server: FakeServer, tmp_path: Path) -> None:
    streamed = run("--server-url", fake_llama_server.url, "chat", "Say hello", cwd=tmp_path)
    assert streamed.returncode == 0 and streamed.stdout.strip()
    as_json = run(
        "--server-url", fake_llama_server.url, "chat", "Say hello", "--json", cwd=tmp_path
    )
    data = json.loads(as_json.stdout)
    assert data["text"] == streamed.stdout.strip()
    assert data["next_action"] == "COMPLETE"


def test_chat_repl_reads_lines_until_eof(fake_llama_server: FakeServer, tmp_path: Path) -> None:
    out = run("--server-url", fake_llama_server.url, "chat", "--no-stream", cwd=tmp_path,
              stdin="Say hello\n\n/exit\n")
    assert out.returncode == 0 and out.stdout.strip()


def test_server_down_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    out = run("--server-url", "http://127.0.0.1:9", "chat", "hi", "--no-stream", cwd=tmp_path,
              env={"PEDROLLM_MAX_RETRIES": "0"})
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("pedrollm: error: could not reach http://127.0.0.1:9")
    assert "hint: is the server running?" in out.stderr
    verbose = run("--verbose", "--server-url", "http://127.0.0.1:9", "chat", "hi",
                  "--no-stream", cwd=tmp_path, env={"PEDROLLM_MAX_RETRIES": "0"})
    assert "Traceback" in verbose.stderr


def test_bad_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / ".pedrocli.json").write_text('{"model": {"context_size": -5}}')
    out = run("health", cwd=tmp_path)
    assert out.returncode == 2
    assert "model.context_size" in out.stderr and "-5" in out.stderr


def test_config_show_redacts_the_key(tmp_path: Path) -> None:
    (tmp_path / ".pedrocli.json").write_text(json.dumps(
        {"model": {"type": "llamacpp", "api_key": SECRET}, "project": {"name": "x"}}))
    out = run("config", "show", cwd=tmp_path)
    assert out.returncode == 0
    assert SECRET not in out.stdout and SECRET not in out.stderr
    shown = json.loads(out.stdout.split("\n", 1)[1])
    assert shown["project"] == {"name": "x"} and shown["model"]["api_key"] != SECRET


def test_config_migrate_writes_new_form_and_prints_server_command(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"model": {
        "type": "llamacpp", "llamacpp_path": "/opt/llama/llama-cli",
        "model_path": "/models/qwen.gguf", "threads": 8, "n_gpu_layers": 20,
        "context_size": 4096, "enable_tools": True}}))
    out = run("config", "migrate", str(old), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    new = json.loads(old.read_text())["model"]
    assert new["server_url"] == "http://localhost:8081"
    assert not {"llamacpp_path", "model_path", "threads", "n_gpu_layers"} & set(new)
    assert (tmp_path / "old.json.bak").exists()
    assert "/opt/llama/llama-server -m /models/qwen.gguf" in out.stdout
    assert "-t 8" in out.stdout and "-ngl 20" in out.stdout


def test_demo_runs_the_agent_round_trip_on_the_bundled_fake(tmp_path: Path) -> None:
    out = run("demo", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "model calls get_weather" in out.stdout
    assert "tool get_weather returned" in out.stdout
    assert "model answers:" in out.stdout
