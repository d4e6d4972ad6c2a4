"""The pytest plugin, used from a test file exactly as a user's suite would use it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

USER_TESTS = '''
import pytest
import requests


def test_url_and_bundled_tool_call(fake_llama_server):
    body = {"messages": [{"role": "user", "content": "What is the weather in Paris?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather"}}]}
    reply = requests.post(fake_llama_server.url + "/v1/chat/completions", json=body)
    call = reply.json()["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert fake_llama_server.requests[-1].body == body


def test_add_fixture(fake_llama_server):
    fake_llama_server.add_fixture({
        "fakellama_fixture": 1, "name": "ping",
        "request": {"method": "POST", "path": "/v1/chat/completions",
                    "body": {"messages": [{"role": "user", "content": "ping"}]}},
        "response": {"status": 200, "headers": {}, "body": {"object": "chat.completion",
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": "pong"}}]}},
        "metadata": {"authored": "by hand"},
    })
    body = {"messages": [{"role": "user", "content": "ping"}]}
    reply = requests.post(fake_llama_server.url + "/v1/chat/completions", json=body)
    assert reply.json()["choices"][0]["message"]["content"] == "pong"


def test_set_faults(fake_llama_server):
    fake_llama_server.set_faults("status=429,retry_after=1")
    assert requests.get(fake_llama_server.url + "/health").status_code == 429


@pytest.mark.fake_llama(api_key="k", ctx_size=128)
def test_marker_options(fake_llama_server):
    assert requests.get(fake_llama_server.url + "/props").status_code == 401
    props = requests.get(fake_llama_server.url + "/props", headers={"X-Api-Key": "k"}).json()
    assert props["default_generation_settings"]["n_ctx"] == 128
'''


def test_the_fixture_works_from_a_users_test_file(tmp_path: Path) -> None:
    (tmp_path / "test_user_suite.py").write_text(textwrap.dedent(USER_TESTS))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user_suite.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
