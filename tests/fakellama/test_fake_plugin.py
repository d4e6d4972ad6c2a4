"""The pytest plugin, used from a test file exactly as a user's suite would use it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from fake_helpers import checkout_env

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


URLS = []


def test_first_of_two_changes_the_server(fake_llama_server):
    URLS.append(fake_llama_server.url)
    fake_llama_server.set_faults("status=500")
    fake_llama_server.add_fixture({
        "fakellama_fixture": 1, "name": "ping",
        "request": {"method": "POST", "path": "/tokenize", "body": {"content": "x"}},
        "response": {"status": 200, "headers": {}, "body": {"tokens": [7]}},
        "metadata": {"authored": "by hand"},
    })
    requests.get(fake_llama_server.url + "/health")


def test_second_of_two_finds_it_reset(fake_llama_server):
    URLS.append(fake_llama_server.url)
    assert URLS[0] == URLS[1]  # the same running server, not a new one per test
    assert fake_llama_server.requests == []
    assert requests.get(fake_llama_server.url + "/health").status_code == 200
    tokens = requests.post(fake_llama_server.url + "/tokenize", json={"content": "x"}).json()
    assert tokens == {"tokens": [120]}  # the added "ping" fixture is gone
'''

FAILING_APP = '''
import requests

from fakellama.app import FakeLlamaApp


def test_an_app_bug_fails_this_test(fake_llama_server, monkeypatch):
    def broken(self, *args):
        raise KeyError("the-app-bug")

    monkeypatch.setattr(FakeLlamaApp, "_handle", broken)
    assert requests.get(fake_llama_server.url + "/health").status_code == 500


def test_the_next_test_is_unaffected(fake_llama_server):
    assert requests.get(fake_llama_server.url + "/health").status_code == 200
'''


def _run_user_suite(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    """Run a user's test file in a fresh pytest that imports this checkout's fakellama."""
    (tmp_path / "test_user_suite.py").write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user_suite.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=checkout_env(),
    )


def test_the_fixture_works_from_a_users_test_file(tmp_path: Path) -> None:
    result = _run_user_suite(tmp_path, USER_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout


def test_an_exception_in_the_fake_fails_the_test_whose_request_raised_it(
        tmp_path: Path) -> None:
    result = _run_user_suite(tmp_path, FAILING_APP)
    assert "1 failed, 1 passed" in result.stdout, result.stdout + result.stderr
    assert "FAILED test_user_suite.py::test_an_app_bug_fails_this_test" in result.stdout
    assert "KeyError: 'the-app-bug'" in result.stdout
    assert "while answering GET /health" in result.stdout
