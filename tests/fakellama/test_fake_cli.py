"""`python -m fakellama serve`: prints its URL, answers, and stops cleanly on SIGTERM/Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import requests


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_the_url_and_stops_cleanly(stop_signal: int) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "fakellama", "serve", "--port", "0", "--ctx-size", "1024"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("fakellama listening on http://127.0.0.1:")
        url = line.split()[-1]
        props = requests.get(url + "/props", timeout=10).json()
        assert props["default_generation_settings"]["n_ctx"] == 1024
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "fakellama stopped" in out


def test_bad_fixture_dir_exits_with_a_message(tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fakellama", "serve", "--fixtures", "/no/such/dir"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "/no/such/dir: not a fixture directory" in result.stderr


@pytest.mark.parametrize("quiet", [False, True])
def test_serve_logs_one_line_per_request_unless_quiet(quiet: bool) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "fakellama", "serve", "--port", "0", *(["--quiet"] * quiet)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        ask = {"messages": [{"role": "user", "content": "Say hello."}]}
        requests.post(url + "/v1/chat/completions", json=ask, timeout=10)
        requests.post(url + "/v1/chat/completions", json={"messages": 1}, timeout=10)
        requests.get(url + "/health", timeout=10)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    lines = [line for line in err.splitlines() if line.startswith("fakellama: ")]
    if quiet:
        assert lines == []
    else:
        assert lines == ["fakellama: POST /v1/chat/completions 200 exact chat-hello",
                         "fakellama: POST /v1/chat/completions 400 validation",
                         "fakellama: GET /health 200 exact health"]


def test_serve_as_a_server_version_with_an_option() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "fakellama", "serve", "--port", "0", "--quiet",
         "--personality", "vllm@0.10", "--personality-option", "tool_parser="],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        version = requests.get(url + "/version", timeout=10).json()
        tools = requests.post(url + "/v1/chat/completions", timeout=10, json={
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]})
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert version == {"version": "0.10.0"}
    assert tools.status_code == 400 and tools.json()["object"] == "error"


@pytest.mark.parametrize(("args", "words"), [
    (["--personality", "vllm@0.9"], "emulates versions 0.10, 0.33"),
    (["--personality", "vllm", "--personality-option", "tool_parser"], "expected NAME=VALUE"),
    (["--personality", "ollama", "--api-key", "k"], "cannot require an API key"),
])
def test_a_bad_personality_exits_with_a_message(args: list[str], words: str) -> None:
    result = subprocess.run([sys.executable, "-m", "fakellama", "serve", "--port", "0", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and words in result.stderr
