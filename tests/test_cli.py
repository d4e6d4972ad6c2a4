"""The pedrollm command, run as a subprocess against the fake llama-server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from fakellama.server import FakeServer

from .sse import completion, tool_call

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
    body = "\n".join(line for line in out.stdout.splitlines() if not line.startswith("#"))
    shown = json.loads(body)
    assert shown["project"] == {"name": "x"} and shown["model"]["api_key"] != SECRET
    assert "# redacted: model.api_key" in out.stdout


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


# -- demo: which server, and JSON only ----------------------------------------------


@pytest.fixture
def fake(fake_llama_server: FakeServer) -> FakeServer:
    """The plugin's fake, under a short name (reset before each test)."""
    return fake_llama_server


def chat_count(fake: FakeServer) -> int:
    return sum(1 for r in fake.requests if r.path == "/v1/chat/completions")


def test_demo_runs_against_a_server_url_given_before_the_command(tmp_path: Path) -> None:
    with FakeServer() as mine:
        out = run("--server-url", mine.url, "demo", cwd=tmp_path)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "bundled fixtures" not in out.stdout + out.stderr
        assert "model answers:" in out.stdout
        assert chat_count(mine) == 2  # the tool call, then the answer: on this server


def test_demo_against_an_unreachable_url_fails_fast_in_one_line(tmp_path: Path) -> None:
    for args in (("--server-url", "http://127.0.0.1:1", "demo"),
                 ("demo", "--server-url", "http://127.0.0.1:1")):
        started = time.monotonic()
        out = run(*args, cwd=tmp_path)
        assert out.returncode == 1
        assert time.monotonic() - started < 10
        assert out.stderr.startswith("pedrollm: error: could not reach http://127.0.0.1:1")
        assert "Traceback" not in out.stderr and "model answers" not in out.stdout


def test_demo_json_prints_only_json_on_stdout(fake: FakeServer, tmp_path: Path) -> None:
    for args in (("demo", "--json"), ("--server-url", fake.url, "demo", "--json")):
        out = run(*args, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
        assert data["stopped_reason"] == "complete"
        assert data["final_text"]


def repeating_llama_server(server: HTTPServer) -> None:
    """A llama-server look-alike whose model asks for the same call on every turn."""
    server.expect_request("/health").respond_with_json({"status": "ok"})
    server.expect_request("/props").respond_with_json(
        {"default_generation_settings": {"n_ctx": 4096}, "model_path": "m.gguf"})
    server.expect_request("/v1/chat/completions", method="POST").respond_with_json(
        completion(None, tool_calls=[tool_call("get_weather", {"city": "Paris"})],
                   finish_reason="tool_calls"))


def test_demo_stops_a_model_repeating_one_call_with_a_clear_reason(
        httpserver: HTTPServer, tmp_path: Path) -> None:
    repeating_llama_server(httpserver)
    out = run("--server-url", httpserver.url_for("/"), "demo", cwd=tmp_path)
    assert out.returncode == 1
    assert ('!! repeated_call: stopped: the model asked for get_weather({"city": "Paris"}) '
            "again after it had run 2 times") in out.stdout
    assert out.stdout.rstrip().endswith("done in 3 turns (repeated_call)")


# -- info: what was seen, and nothing else -------------------------------------------


def test_info_on_an_unreachable_server_fails_fast_and_claims_nothing(tmp_path: Path) -> None:
    started = time.monotonic()
    out = run("--server-url", "http://127.0.0.1:1", "info", cwd=tmp_path)
    assert time.monotonic() - started < 5
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.splitlines()[0] == (
        "pedrollm: error: could not reach http://127.0.0.1:1/health: connection refused")


def info_rows(stdout: str) -> dict[str, str]:
    return dict((k, v.strip()) for k, v in
                (line.split(":", 1) for line in stdout.splitlines()))


def test_info_says_native_tools_yes_only_after_a_request_with_tools_succeeded(
        fake: FakeServer, tmp_path: Path) -> None:
    before = chat_count(fake)
    probed = info_rows(run("--server-url", fake.url, "info", cwd=tmp_path).stdout)
    assert probed["native tools"] == "yes (a request with tools was accepted)"
    asked = [r.body for r in fake.requests if r.path == "/v1/chat/completions"][before:]
    assert len(asked) == 1 and asked[0]["max_tokens"] == 1 and asked[0]["tools"]
    unprobed = info_rows(run("--server-url", fake.url, "info", "--no-probe",
                             cwd=tmp_path).stdout)
    assert unprobed["native tools"] == "unknown (not probed: --no-probe)"
    assert chat_count(fake) == before + 1


def test_info_says_no_for_a_llama_server_without_jinja(httpserver: HTTPServer,
                                                        tmp_path: Path) -> None:
    # /props describes the template (tools supported) whether or not --jinja is on;
    # only the refusal of a request with tools shows it is off.
    httpserver.expect_request("/health").respond_with_json({"status": "ok"})
    httpserver.expect_request("/props").respond_with_json(
        {"default_generation_settings": {"n_ctx": 4096}, "model_path": "m.gguf",
         "chat_template_caps": {"supports_tools": True, "supports_tool_calls": True}})

    def chat(request: Request) -> Response:
        if "tools" in json.loads(request.get_data()):
            return Response(json.dumps({"error": {
                "code": 500, "message": "tools param requires --jinja flag",
                "type": "server_error"}}), status=500, content_type="application/json")
        return Response(json.dumps(completion("OK")), content_type="application/json")

    httpserver.expect_request("/v1/chat/completions").respond_with_handler(chat)
    out = run("--server-url", httpserver.url_for("/"), "info", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert info_rows(out.stdout)["native tools"].startswith(
        "no (the server refused a request with tools")


def test_info_and_models_name_the_model_alike(fake: FakeServer, tmp_path: Path) -> None:
    info = info_rows(run("--server-url", fake.url, "info", "--no-probe", cwd=tmp_path).stdout)
    models = run("--server-url", fake.url, "models", cwd=tmp_path).stdout
    assert info["model"] == models.split("\t")[0].strip() == "scripted-tiny.gguf"


def test_contract_runs_the_suite_from_the_package_and_writes_its_report(
        fake: FakeServer, tmp_path: Path) -> None:
    out = run("--server-url", fake.url, "--backend", "llamacpp", "contract", "--report-dir",
              str(tmp_path / "rep"), "--", "-k", "c01 or c03 or c17", cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "3 passed" in out.stdout
    report = json.loads((tmp_path / "rep" / "conformance-llamacpp-127-0-0-1.json").read_text())
    assert {r["clause"]: r["outcome"] for r in report["results"]} == {
        "C01": "pass", "C03": "pass", "C17": "pass"}
