"""Every llama-server route and every error body the fake gives."""

from __future__ import annotations

import json

import pytest
import requests
from fake_helpers import WEATHER_TOOL, bundled

from fakellama.server import FakeServer

ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.mark.parametrize("path", ["/health", "/v1/health"])
def test_health_says_ok(fake_llama_server: FakeServer, path: str) -> None:
    reply = requests.get(fake_llama_server.url + path)
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok"}
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize("path", ["/v1/models", "/models"])
def test_models_lists_the_model_with_meta(fake_llama_server: FakeServer, path: str) -> None:
    data = requests.get(fake_llama_server.url + path).json()
    assert data["object"] == "list"
    assert data["data"][0]["id"] == "scripted-tiny.gguf"
    assert "n_ctx_train" in data["data"][0]["meta"]


def test_props_reports_context_template_and_build(fake_llama_server: FakeServer) -> None:
    props = requests.get(fake_llama_server.url + "/props").json()
    recorded = bundled("props")["response"]["body"]
    assert props["default_generation_settings"]["n_ctx"] == (
        recorded["default_generation_settings"]["n_ctx"])
    assert props["total_slots"] == recorded["total_slots"]
    assert "chat_template" in props and "build_info" in props
    assert props["chat_template_caps"]["supports_tool_calls"] is True


def test_props_follow_an_explicit_ctx_size() -> None:
    with FakeServer(ctx_size=512) as server:
        props = requests.get(server.url + "/props").json()
    assert props["default_generation_settings"]["n_ctx"] == 512


def test_metrics_is_501_unless_enabled(fake_llama_server: FakeServer) -> None:
    reply = requests.get(fake_llama_server.url + "/metrics")
    assert reply.status_code == 501
    assert reply.json()["error"]["type"] == "not_supported_error"
    with FakeServer(metrics=True) as server:
        enabled = requests.get(server.url + "/metrics")
    assert enabled.status_code == 200
    assert "llamacpp:prompt_tokens_total" in enabled.text


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/chat/completions"])
def test_chat_returns_the_recorded_tool_call(fake_llama_server: FakeServer, path: str) -> None:
    body = {"messages": ASK, "tools": [WEATHER_TOOL]}
    reply = requests.post(fake_llama_server.url + path, json=body)
    assert reply.status_code == 200
    data = reply.json()
    assert data["id"].startswith("chatcmpl-")
    assert data["object"] == "chat.completion"
    assert "system_fingerprint" in data and "timings" in data
    call = data["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}


def test_chat_after_the_tool_result_answers_in_text(fake_llama_server: FakeServer) -> None:
    messages = bundled("chat-weather-answer")["request"]["body"]["messages"]
    reply = requests.post(fake_llama_server.url + "/v1/chat/completions",
                          json={"messages": messages, "tools": [WEATHER_TOOL]})
    message = reply.json()["choices"][0]["message"]
    assert "Paris" in message["content"]
    assert reply.json()["choices"][0]["finish_reason"] == "stop"


def test_completion_endpoints_replay_fixtures() -> None:
    fixture = {
        "fakellama_fixture": 1, "name": "complete-once",
        "request": {"method": "POST", "path": "/completion", "body": {"prompt": "Once"}},
        "response": {"status": 200, "headers": {}, "body": {"content": " upon a time",
                                                              "stop": True}},
        "metadata": {"authored": "by hand"},
    }
    with FakeServer(strict=True) as server:
        server.add_fixture(fixture)
        for path in ("/completion", "/completions"):
            reply = requests.post(server.url + path, json={"prompt": "Once"})
            assert reply.json()["content"] == " upon a time"
        streamed = requests.post(server.url + "/completion",
                                 json={"prompt": "Once", "stream": True}).text
    contents = [json.loads(line[6:])["content"] for line in streamed.split("\n\n") if line]
    assert "".join(contents) == " upon a time"


def test_tokenize_and_detokenize_round_trip(fake_llama_server: FakeServer) -> None:
    tokens = requests.post(fake_llama_server.url + "/tokenize", json={"content": "héllo"}).json()[
        "tokens"
    ]
    assert all(isinstance(t, int) for t in tokens)
    text = requests.post(fake_llama_server.url + "/detokenize", json={"tokens": tokens}).json()[
        "content"
    ]
    assert text == "héllo"
    pieces = requests.post(fake_llama_server.url + "/tokenize",
                           json={"content": "ab", "with_pieces": True}).json()["tokens"]
    assert pieces == [{"id": 97, "piece": "a"}, {"id": 98, "piece": "b"}]


def test_apply_template_renders_the_conversation(fake_llama_server: FakeServer) -> None:
    prompt = requests.post(
        fake_llama_server.url + "/apply-template", json={"messages": ASK}
    ).json()["prompt"]
    assert "What is the weather in Paris?" in prompt
    assert prompt.endswith("assistant\n")


def test_unknown_path_is_llama_servers_404(fake_llama_server: FakeServer) -> None:
    reply = requests.get(fake_llama_server.url + "/no/such/route")
    assert reply.status_code == 404
    assert reply.content == (b'{"error":{"message":"File Not Found",'
                             b'"type":"not_found_error","code":404}}')


def test_malformed_json_is_invalid_request(fake_llama_server: FakeServer) -> None:
    reply = requests.post(fake_llama_server.url + "/v1/chat/completions", data="{not json",
                          headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "invalid_request_error"
    assert reply.json()["error"]["code"] == 400


# What the pinned llama-server answers each of these (status, type, message).
WRONG_TYPES = [
    ({"messages": "hello"}, 400, "invalid_request_error", "Expected 'messages' to be an array"),
    ({"messages": [1, 2]}, 400, "invalid_request_error",
     "All non-assistant messages must contain 'content'"),
    ({}, 400, "invalid_request_error", "'messages' is required"),
    ({"messages": ASK, "tools": "get_weather"}, 500, "server_error",
     "Failed to parse tools: Expected 'tools' to be an array, got \"get_weather\"; "
     "tools = \"get_weather\""),
    ({"messages": ASK, "stream": "yes"}, 400, "invalid_request_error",
     "Field 'stream': [json.exception.type_error.302] type must be boolean, but is string"),
    ([1, 2, 3], 400, "invalid_request_error", "'messages' is required"),
]


@pytest.mark.parametrize(("body", "status", "kind", "message"), WRONG_TYPES)
def test_wrong_types_get_llama_servers_own_error(fake_llama_server: FakeServer, body: object,
                                                 status: int, kind: str, message: str) -> None:
    reply = requests.post(fake_llama_server.url + "/v1/chat/completions", json=body)
    assert (reply.status_code, reply.headers["X-Fakellama-Match"]) == (status, "validation")
    assert reply.json()["error"] == {"code": status, "message": message, "type": kind}
    assert reply.headers["Connection"] == "close"


def test_prompt_longer_than_context_is_exceed_context_size() -> None:
    with FakeServer(ctx_size=64) as server:
        reply = requests.post(server.url + "/v1/chat/completions",
                              json={"messages": [{"role": "user", "content": "x" * 200}]})
    error = reply.json()["error"]
    assert reply.status_code == 400
    assert error["type"] == "exceed_context_size_error"
    assert error["n_ctx"] == 64
    assert error["n_prompt_tokens"] > 200
    assert f"({error['n_prompt_tokens']} tokens)" in error["message"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"X-Api-Key": "wrong"}])
def test_api_key_refuses_missing_or_wrong_keys(headers: dict[str, str]) -> None:
    with FakeServer(api_key="sekrit") as server:
        reply = requests.post(server.url + "/v1/chat/completions",
                              json={"messages": ASK}, headers=headers)
    assert reply.status_code == 401
    assert reply.content == (b'{"error":{"message":"Invalid API Key",'
                             b'"type":"authentication_error","code":401}}')


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer sekrit"},
                                     {"X-Api-Key": "sekrit"}])
def test_api_key_accepts_bearer_or_x_api_key(headers: dict[str, str]) -> None:
    with FakeServer(api_key="sekrit") as server:
        reply = requests.post(server.url + "/v1/chat/completions",
                              json={"messages": ASK, "tools": [WEATHER_TOOL]}, headers=headers)
        health = requests.get(server.url + "/health")
    assert reply.status_code == 200
    assert health.status_code == 200


def test_requests_are_visible_to_the_test(fake_llama_server: FakeServer) -> None:
    fake_llama_server.app.clear_requests()
    requests.post(fake_llama_server.url + "/tokenize", json={"content": "hi"})
    seen = fake_llama_server.requests[-1]
    assert (seen.method, seen.path, seen.body, seen.status) == ("POST", "/tokenize",
                                                                {"content": "hi"}, 200)


def test_server_header_says_llama_cpp(fake_llama_server: FakeServer) -> None:
    assert requests.get(fake_llama_server.url + "/health").headers["Server"] == "llama.cpp"


def test_concurrent_requests_each_get_their_own_answer() -> None:
    from concurrent.futures import ThreadPoolExecutor

    hello = bundled("chat-hello")["request"]["body"]
    weather = {"messages": ASK, "tools": [WEATHER_TOOL]}

    def ask(i: int) -> tuple[int, str]:
        body = hello if i % 2 else weather
        data = requests.post(server.url + "/v1/chat/completions", json=body).json()
        return i, data["choices"][0]["finish_reason"]

    with FakeServer(strict=True) as server, ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(ask, range(64)))
        received = len(server.requests)
    assert all(reason == ("stop" if i % 2 else "tool_calls") for i, reason in results)
    assert received == 64
