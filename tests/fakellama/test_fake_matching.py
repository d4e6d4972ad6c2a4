"""Matching: the fallback order, and strict mode's refusal naming the closest fixtures."""

from __future__ import annotations

from typing import Any

import requests
from fake_helpers import WEATHER_TOOL, bundled

from fakellama.server import FakeServer

URL = "/v1/chat/completions"


def _post(server: FakeServer, body: dict[str, Any]) -> requests.Response:
    return requests.post(server.url + URL, json=body)


def test_volatile_fields_do_not_prevent_an_exact_match(fake_llama_server: FakeServer) -> None:
    body = dict(bundled("chat-hello")["request"]["body"], seed=123, user="me",
                stream_options={"include_usage": False})
    reply = _post(fake_llama_server, body)
    assert reply.headers["X-Fakellama-Match"] == "exact"
    assert reply.headers["X-Fakellama-Fixture"] == "chat-hello"


def test_tool_call_ids_in_history_are_volatile(fake_llama_server: FakeServer) -> None:
    body = bundled("chat-weather-answer")["request"]["body"]
    body["messages"][1]["tool_calls"][0]["id"] = "another-id"
    body["messages"][2]["tool_call_id"] = "another-id"
    assert _post(fake_llama_server, body).headers["X-Fakellama-Match"] == "exact"


def test_sampling_parameters_fall_back_to_the_sampling_level(fake_llama_server: FakeServer) -> None:
    body = dict(bundled("chat-hello")["request"]["body"], temperature=0.2, max_tokens=9,
                model="another")
    reply = _post(fake_llama_server, body)
    assert reply.headers["X-Fakellama-Match"] == "sampling"
    assert reply.headers["X-Fakellama-Fixture"] == "chat-hello"


def test_tool_schema_changes_fall_back_to_the_conversation_level(
    fake_llama_server: FakeServer,
) -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    body = {"messages": [{"role": "user", "content": "What is  the weather in Paris?"}],
            "tools": [tool]}
    reply = _post(fake_llama_server, body)
    assert reply.headers["X-Fakellama-Match"] == "conversation"
    assert reply.headers["X-Fakellama-Fixture"] == "chat-weather-tool-call"


def test_an_unmatched_request_gets_a_labelled_synthesized_reply_not_another_fixture(
    fake_llama_server: FakeServer,
) -> None:
    body = {"messages": [{"role": "user", "content": "Weather in Paris, please"}],
            "tools": [WEATHER_TOOL]}
    reply = _post(fake_llama_server, body)
    assert reply.headers["X-Fakellama-Match"] == "synthesized"
    assert "X-Fakellama-Fixture" not in reply.headers
    message = reply.json()["choices"][0]["message"]
    assert "tool_calls" not in message  # tool_choice "auto": no recorded call is borrowed
    assert message["content"] == "fakellama: Weather in Paris, please"


def test_a_changed_tool_result_history_is_not_answered_from_the_recorded_one(
    fake_llama_server: FakeServer,
) -> None:
    history = bundled("chat-weather-answer")["request"]["body"]["messages"]
    history[0]["content"] = "How is the weather over in Paris today?"
    reply = _post(fake_llama_server, {"messages": history, "tools": [WEATHER_TOOL]})
    assert reply.headers["X-Fakellama-Match"] == "synthesized"
    assert reply.json()["choices"][0]["message"]["content"] == (
        "fakellama: How is the weather over in Paris today?")


def test_strict_mode_refuses_and_names_the_closest_fixtures() -> None:
    with FakeServer(strict=True) as server:
        reply = _post(server, {"messages": [{"role": "user", "content": "Say hello!"}]})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "closest: 'chat-hello' differs in: " in error["message"]
    assert "messages[0].content" in error["message"]


def test_strict_mode_still_answers_built_in_routes() -> None:
    with FakeServer(strict=True) as server:
        assert requests.post(server.url + "/tokenize", json={"content": "a"}).status_code == 200


def test_a_fixture_added_at_run_time_is_matched(fake_llama_server: FakeServer) -> None:
    fixture = bundled("chat-hello")
    fixture["name"] = "chat-bonjour"
    fixture["request"]["body"]["messages"][0]["content"] = "Dis bonjour."
    fixture["response"]["body"]["choices"][0]["message"]["content"] = "Bonjour !"
    fake_llama_server.add_fixture(fixture)
    body = {"messages": [{"role": "user", "content": "Dis bonjour."}]}
    assert _post(fake_llama_server, body).json()["choices"][0]["message"]["content"] == "Bonjour !"
